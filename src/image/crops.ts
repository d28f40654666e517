/**
 * Pure crop geometry (He et al. 2016, as used by Liao & Luo): where each 224x224 view is cut from the resized
 * image. No pixels here, so tests can check exact coordinates.
 */
import type { Rng } from '../util/rng.ts';

/** A square crop of the resized image: top-left corner, side, and whether it is mirrored left-right. */
export interface CropBox {
  x: number;
  y: number;
  size: number;
  flip: boolean;
}

/** A crop together with the size of the resized image it was cut from (shorter side = the scale). */
export interface ViewParams extends CropBox {
  width: number;
  height: number;
}

/** Shorter-side range of the training scale augmentation (He et al.: [256, 480]). */
export interface ScaleJitterRange {
  min: number;
  max: number;
}

export const HE_SCALE_JITTER: ScaleJitterRange = { min: 256, max: 480 };

/**
 * Size of an image after resizing its shorter side to `shorter`; the longer side is rounded to the nearest
 * integer (Math.round, never below `shorter`). A square image becomes shorter x shorter.
 */
export function shorterSideSize(width: number, height: number, shorter: number): { width: number; height: number } {
  if (width <= height) return { width: shorter, height: Math.max(shorter, Math.round((height * shorter) / width)) };
  return { width: Math.max(shorter, Math.round((width * shorter) / height)), height: shorter };
}

/** The centre crop; when the margin is odd the extra pixel goes right/below: x = floor((W - size) / 2). */
export function centerBox(width: number, height: number, size: number): CropBox {
  checkFits(width, height, size);
  return { x: Math.floor((width - size) / 2), y: Math.floor((height - size) / 2), size, flip: false };
}

/**
 * The ten test views: top-left, top-right, bottom-left, bottom-right, centre, then the same five crops
 * mirrored left-right (view k + 5 is view k flipped; the crop boxes are identical).
 */
export function tenCropBoxes(width: number, height: number, size: number): CropBox[] {
  checkFits(width, height, size);
  const right = width - size;
  const bottom = height - size;
  const five: CropBox[] = [
    { x: 0, y: 0, size, flip: false },
    { x: right, y: 0, size, flip: false },
    { x: 0, y: bottom, size, flip: false },
    { x: right, y: bottom, size, flip: false },
    centerBox(width, height, size),
  ];
  return [...five, ...five.map((b) => ({ ...b, flip: true }))];
}

/** Training scale: a uniform integer shorter side in [min, max]. Drawn first, before the image is decoded. */
export function drawJitterScale(rng: Rng, range: ScaleJitterRange = HE_SCALE_JITTER): number {
  return rng.int(range.min, range.max);
}

/** Training crop of the resized image: uniform x, then uniform y, then a fair coin for the flip. */
export function drawJitterCrop(rng: Rng, width: number, height: number, size: number): CropBox {
  checkFits(width, height, size);
  const x = rng.int(0, width - size);
  const y = rng.int(0, height - size);
  return { x, y, size, flip: rng.bool() };
}

/**
 * The full scaleJitter draw for an image of (oriented) size width x height, in the order the pipeline draws it:
 * scale, crop x, crop y, flip. The pipeline must give exactly these parameters for the same Rng.
 */
export function scaleJitterParams(
  rng: Rng,
  width: number,
  height: number,
  size: number,
  range: ScaleJitterRange = HE_SCALE_JITTER,
): ViewParams {
  const resized = shorterSideSize(width, height, drawJitterScale(rng, range));
  return { ...drawJitterCrop(rng, resized.width, resized.height, size), ...resized };
}

function checkFits(width: number, height: number, size: number): void {
  if (width < size || height < size) throw new Error(`crop ${size}x${size} does not fit a ${width}x${height} image`);
}
