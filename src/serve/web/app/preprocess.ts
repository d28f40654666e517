/**
 * In-browser preprocessing, the same steps as the server's (src/image): flatten alpha onto the background, resize
 * the shorter side, cut the centre crop (or the ten crops), channels in model order minus the mean, NCHW.
 * The crop geometry and the tensor writer are the server's own functions (bundled), so only the resize differs:
 * the canvas' high-quality filter instead of sharp's lanczos3.
 */
import { centerBox, shorterSideSize, tenCropBoxes, type CropBox } from '../../../image/crops.ts';
import type { RgbImage } from '../../../image/decode.ts';
import { viewLength, writeView, type Preprocessing } from '../../../image/preprocess.ts';

/** Test-time views: the centre crop, or the ten crops of the paper (corners + centre, and their mirrors). */
import type { Tta } from '../../../image/tta.ts';
export type { Tta };
export { meanOverViews } from '../../../image/tta.ts';

/** Canvas pixels (RGBA, alpha already composited onto an opaque background) to packed RGB. */
export function rgbaToRgb(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): RgbImage {
  if (rgba.length !== width * height * 4)
    throw new Error(`expected ${width * height * 4} RGBA bytes, got ${rgba.length}`);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    data[i] = rgba[j];
    data[i + 1] = rgba[j + 1];
    data[i + 2] = rgba[j + 2];
  }
  return { data, width, height };
}

export function cropBoxes(tta: Tta, width: number, height: number, size: number): CropBox[] {
  return tta === '10crop' ? tenCropBoxes(width, height, size) : [centerBox(width, height, size)];
}

/** The network input for one resized image: [views, 3, size, size]. */
export function viewsTensor(img: RgbImage, prep: Preprocessing, tta: Tta): { data: Float32Array; views: number } {
  const boxes = cropBoxes(tta, img.width, img.height, prep.size);
  const n = viewLength(prep);
  const data = new Float32Array(boxes.length * n);
  boxes.forEach((box, k) => writeView(img, box, prep, data, k * n));
  return { data, views: boxes.length };
}

/**
 * Decodes `file` (EXIF orientation applied by the browser), flattens transparency onto prep.alphaBackground and
 * resizes the shorter side to prep.resizeShorter with the canvas' high-quality smoothing. Browser only.
 */
export async function decodeResized(file: Blob, prep: Preprocessing): Promise<RgbImage> {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  try {
    const { width, height } = shorterSideSize(bitmap.width, bitmap.height, prep.resizeShorter);
    // OffscreenCanvas where there is one (all current browsers); a detached <canvas> otherwise.
    const canvas =
      typeof OffscreenCanvas === 'function'
        ? new OffscreenCanvas(width, height)
        : Object.assign(document.createElement('canvas'), { width, height });
    const ctx = canvas.getContext('2d', { willReadFrequently: true }) as
      | CanvasRenderingContext2D
      | OffscreenCanvasRenderingContext2D
      | null;
    if (!ctx) throw new Error('this browser has no 2D canvas');
    const [r, g, b] = prep.alphaBackground;
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, width, height);
    return rgbaToRgb(ctx.getImageData(0, 0, width, height).data, width, height);
  } finally {
    bitmap.close();
  }
}
