// The image pipeline: decode (sharp) -> views (scaleJitter / tenCrop / centerCrop) -> Caffe preprocessing -> batches.
export { decodeImage, DEFAULT_MAX_PIXELS, type DecodeOptions, type ImageInput, type RgbImage } from './decode.ts';
export {
  centerBox,
  HE_SCALE_JITTER,
  scaleJitterParams,
  shorterSideSize,
  tenCropBoxes,
  type CropBox,
  type ScaleJitterRange,
  type ViewParams,
} from './crops.ts';
export { CAFFE_PREPROCESSING, viewLength, writeView, type Preprocessing } from './preprocess.ts';
export {
  centerCrop,
  renderViews,
  scaleJitter,
  tenCrop,
  VIEW_MODES,
  viewsPerImage,
  type ViewMode,
  type Views,
} from './views.ts';
export {
  batchOrder,
  ImageLoader,
  type Batch,
  type BatchOptions,
  type LoaderItem,
  type LoaderOptions,
} from './loader.ts';
