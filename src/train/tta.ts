// Test-time augmentation: the paper's 10-crop (four corners + centre, and their mirrors) averages the ten views'
// PROBABILITIES per image; 'center' uses the single centre crop (view 4 of the ten, the same box of the same resize).
import type { Tta } from './config.ts';
import { CENTER_VIEW, TEN_CROP_VIEWS } from './features.ts';

/** Which of the ten test views a TTA mode averages. */
export function ttaViews(tta: Tta): number[] {
  return tta === 'center' ? [CENTER_VIEW] : Array.from({ length: TEN_CROP_VIEWS }, (_, k) => k);
}

/**
 * Per image, the mean over the views `pick` of its probability rows. `probs` is [images * views, classes], image i
 * owning rows i*views .. i*views+views-1 (the loader's and the feature cache's layout).
 */
export function averageViews(probs: Float32Array, images: number, views: number, classes: number, pick: readonly number[]): Float64Array[] {
  if (probs.length !== images * views * classes) throw new Error(`averageViews: ${probs.length} values, expected ${images} x ${views} x ${classes}`);
  if (pick.some((k) => k < 0 || k >= views)) throw new Error(`averageViews: view index out of 0..${views - 1}`);
  const out: Float64Array[] = [];
  for (let i = 0; i < images; i++) {
    const row = new Float64Array(classes);
    for (const k of pick) {
      const at = (i * views + k) * classes;
      for (let c = 0; c < classes; c++) row[c] += probs[at + c];
    }
    for (let c = 0; c < classes; c++) row[c] /= pick.length;
    out.push(row);
  }
  return out;
}
