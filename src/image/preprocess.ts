/**
 * Turning a crop of a decoded RGB image into network input. The configuration is a plain object because model
 * files record it and a browser re-implements it: it must say everything needed to reproduce the numbers.
 */
import type { RgbImage } from './decode.ts';
import type { CropBox } from './crops.ts';

export interface Preprocessing {
  /** Side of the square network input (pixels). */
  size: number;
  /** Test-time resize: the shorter side becomes this before the centre / ten crops are cut. */
  resizeShorter: number;
  /** Resampling kernel of every resize (libvips/sharp name; lanczos3 is sharp's default, antialiased). */
  kernel: 'lanczos3';
  /** Colour (R,G,B, 0-255) that transparent pixels are flattened onto before anything else. */
  alphaBackground: [number, number, number];
  /** Order of the 3 input channels. */
  channelOrder: 'BGR' | 'RGB';
  /** Subtracted from the 0-255 pixel values, given in `channelOrder` order. */
  mean: [number, number, number];
  /** Divides after the mean is subtracted (in `channelOrder` order); null: no scaling. */
  std: [number, number, number] | null;
  /** Tensor layout: [N, 3, size, size]. */
  layout: 'NCHW';
}

/**
 * The Keras / Caffe ImageNet ResNet-50 convention ("caffe" mode of keras.applications.resnet50.preprocess_input):
 * RGB -> BGR, subtract the ImageNet mean [103.939, 116.779, 123.68] (B, G, R), no scaling.
 * Frozen (arrays too): copy it with a spread to make a variant.
 */
export const CAFFE_PREPROCESSING: Readonly<Preprocessing> = Object.freeze<Preprocessing>({
  size: 224,
  resizeShorter: 256,
  kernel: 'lanczos3',
  alphaBackground: Object.freeze([255, 255, 255]) as [number, number, number],
  channelOrder: 'BGR',
  mean: Object.freeze([103.939, 116.779, 123.68]) as [number, number, number],
  std: null,
  layout: 'NCHW',
});

/** Floats in one preprocessed view: 3 x size x size. */
export function viewLength(prep: Pick<Preprocessing, 'size'>): number {
  return 3 * prep.size * prep.size;
}

/**
 * Writes the crop `box` of `img` (mirrored left-right when box.flip) into `out` at `offset` as one CHW view:
 * out[offset + c*size*size + y*size + x] = (pixel[channelOrder[c]] - mean[c]) / std[c].
 */
export function writeView(img: RgbImage, box: CropBox, prep: Preprocessing, out: Float32Array, offset: number): void {
  const { size } = prep;
  if (box.size !== size) throw new Error(`crop size ${box.size} differs from the input size ${size}`);
  if (box.x < 0 || box.y < 0 || box.x + size > img.width || box.y + size > img.height) {
    throw new Error(`crop ${size}x${size} at (${box.x},${box.y}) falls outside a ${img.width}x${img.height} image`);
  }
  if (offset + viewLength(prep) > out.length) throw new Error('output buffer too small for the view');
  const plane = size * size;
  const src = prep.channelOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const { data, width } = img;
  for (let c = 0; c < 3; c++) {
    const s = src[c];
    const mean = prep.mean[c];
    const sd = prep.std ? prep.std[c] : 1;
    const base = offset + c * plane;
    for (let y = 0; y < size; y++) {
      const row = ((box.y + y) * width + box.x) * 3 + s;
      const o = base + y * size;
      if (box.flip) {
        for (let x = 0; x < size; x++) out[o + x] = (data[row + (size - 1 - x) * 3] - mean) / sd;
      } else {
        for (let x = 0; x < size; x++) out[o + x] = (data[row + x * 3] - mean) / sd;
      }
    }
  }
}
