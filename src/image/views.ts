/**
 * The views the network sees: one scale-jittered random crop for training, ten crops or the centre crop for
 * testing. Each image is decoded and resized once (sharp), then every crop is cut from the raw RGB buffer and
 * preprocessed in the same pass.
 */
import type { Rng } from '../util/rng.ts';
import { DermtlError } from '../util/errors.ts';
import { decodeImage, type ImageInput } from './decode.ts';
import {
  centerBox,
  drawJitterCrop,
  drawJitterScale,
  HE_SCALE_JITTER,
  tenCropBoxes,
  type CropBox,
  type ScaleJitterRange,
  type ViewParams,
} from './crops.ts';
import { CAFFE_PREPROCESSING, viewLength, writeView, type Preprocessing } from './preprocess.ts';

export type ViewMode = 'train' | 'tenCrop' | 'center';
export const VIEW_MODES: readonly ViewMode[] = ['train', 'tenCrop', 'center'];

export function viewsPerImage(mode: ViewMode): number {
  return mode === 'tenCrop' ? 10 : 1;
}

export interface ViewOptions {
  prep?: Preprocessing;
  /** Training shorter-side range (default He et al. [256, 480]). */
  jitter?: ScaleJitterRange;
  maxPixels?: number;
  /** Name for error messages when the input is a Buffer. */
  name?: string;
}

/** Preprocessed views of one image: `data` is [views, 3, size, size]; params[k] says where view k was cut. */
export interface Views {
  data: Float32Array;
  params: ViewParams[];
}

/**
 * Renders the views of `mode` for one image into `out` starting at `offset` (views x 3 x size x size floats).
 * `rng` is needed for 'train' only; the draws are scale, crop x, crop y, flip (see crops.scaleJitterParams).
 */
export async function renderViewsInto(
  input: ImageInput,
  mode: ViewMode,
  rng: Rng | null,
  opts: ViewOptions,
  out: Float32Array,
  offset: number,
): Promise<ViewParams[]> {
  const prep = opts.prep ?? CAFFE_PREPROCESSING;
  let shorter = prep.resizeShorter;
  if (mode === 'train') {
    if (!rng) throw new Error('scaleJitter needs an Rng');
    shorter = drawJitterScale(rng, opts.jitter ?? HE_SCALE_JITTER);
  }
  const img = await decodeImage(input, {
    shorterSide: shorter,
    kernel: prep.kernel,
    background: prep.alphaBackground,
    maxPixels: opts.maxPixels,
    name: opts.name,
  });
  const boxes = cropsFor(mode, img.width, img.height, prep.size, rng);
  const n = viewLength(prep);
  return boxes.map((box, k) => {
    writeView(img, box, prep, out, offset + k * n);
    return { ...box, width: img.width, height: img.height };
  });
}

function cropsFor(mode: ViewMode, width: number, height: number, size: number, rng: Rng | null): CropBox[] {
  switch (mode) {
    case 'train':
      return [drawJitterCrop(rng!, width, height, size)];
    case 'tenCrop':
      return tenCropBoxes(width, height, size);
    case 'center':
      return [centerBox(width, height, size)];
    default:
      throw new DermtlError(`unknown view mode '${mode as string}' (expected ${VIEW_MODES.join(', ')})`);
  }
}

export async function renderViews(
  input: ImageInput,
  mode: ViewMode,
  rng: Rng | null,
  opts: ViewOptions = {},
): Promise<Views> {
  const prep = opts.prep ?? CAFFE_PREPROCESSING;
  const data = new Float32Array(viewsPerImage(mode) * viewLength(prep));
  const params = await renderViewsInto(input, mode, rng, opts, data, 0);
  return { data, params };
}

/** Training view (He et al.): shorter side uniform in [256, 480], random 224 crop, random horizontal flip. */
export function scaleJitter(input: ImageInput, rng: Rng, opts: ViewOptions = {}): Promise<Views> {
  return renderViews(input, 'train', rng, opts);
}

/** Ten test views: shorter side 256, four corner crops + centre, and their mirrors. */
export function tenCrop(input: ImageInput, opts: ViewOptions = {}): Promise<Views> {
  return renderViews(input, 'tenCrop', null, opts);
}

/** Single test view: shorter side 256, centre 224 crop. */
export function centerCrop(input: ImageInput, opts: ViewOptions = {}): Promise<Views> {
  return renderViews(input, 'center', null, opts);
}
