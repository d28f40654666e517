// Test-time augmentation, shared by training (validation), evaluation, the server and the web page (no Node
// imports: the page's bundle includes it): the paper's 10-crop (four corners + centre, and their mirrors) averages
// the views' PROBABILITIES per image; 'center' uses the single centre crop.
export const TTAS = ['10crop', 'center'] as const;
export type Tta = (typeof TTAS)[number];

/**
 * Per image, the mean over the views `pick` of its probability rows. `probs` is [images * views, classes], image i
 * owning rows i*views .. i*views+views-1 (the loader's and the feature cache's layout). A mean of softmaxes still
 * sums to 1.
 */
export function averageViews(
  probs: ArrayLike<number>,
  images: number,
  views: number,
  classes: number,
  pick: readonly number[],
): Float64Array[] {
  if (probs.length !== images * views * classes)
    throw new Error(`averageViews: ${probs.length} values, expected ${images} x ${views} x ${classes}`);
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

/** One image's mean over all its `views` rows of [views, k] probabilities -> [k]. */
export function meanOverViews(probs: ArrayLike<number>, views: number): Float64Array {
  const k = probs.length / views;
  return averageViews(
    probs,
    1,
    views,
    k,
    Array.from({ length: views }, (_, v) => v),
  )[0];
}
