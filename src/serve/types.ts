// The library's types (what loadModel returns and predict takes and gives), apart from api.ts so that predictor.ts,
// which api.ts imports, can use them without importing api.ts back.
import type { Preprocessing } from '../image/index.ts';
import type { ModelLabels, ModelManifest } from '../models/modelFile.ts';
import type { ModelCalibration } from '../models/calibration.ts';
import type { NetworkSpec } from '../models/network.ts';
import type { Explanation } from './explain.ts';
import type { Tta } from './defaults.ts';

/** One label and its probability (lesion: independent sigmoid; location: softmax share). */
export interface LabelScore {
  label: string;
  p: number;
  /**
   * Lesions only: whether the label is predicted present, p >= `threshold`, the model's decision threshold for it
   * (chosen on its validation part by max F1; 0.5 for a model trained without calibration).
   */
  present?: boolean;
  threshold?: number;
}

export interface PredictOptions {
  /** Default 'center'. */
  tta?: Tta;
  /** Keep only the `top` most probable labels of each list (default: all). */
  top?: number;
  /** Name used in error messages when the image is given as bytes. */
  name?: string;
  /** Pixel limit for this image, overriding the one given to loadModel. */
  maxPixels?: number;
  /** Also return every label's Grad-CAM map (on the centre view, whatever `tta`): Prediction.explanation. */
  explain?: boolean;
  /**
   * The photo's known body site, one of `labels.location`. A fusion model (`takesSite`) gives it to its lesion head
   * (as the explanation's scores); without it the model uses its own predicted location. A model that does not take
   * a site ignores it and says so in Prediction.site. A name the model does not know is a DermtlError listing its
   * locations.
   */
  location?: string;
}

/** What became of the body site (Prediction.site). */
export interface SiteUse {
  /** The location given, or null. */
  given: string | null;
  /** Whether the lesion head received it (a fusion model given a site). */
  used: boolean;
  /** Why not, in words (set when used is false). */
  note?: string;
}

export interface Prediction {
  /** Lesion morphology labels, most probable first ([] when the model has no lesion head). */
  lesions: LabelScore[];
  /** Body locations, most probable first ([] when the model has no location head). */
  location: LabelScore[];
  timing: { decodeMs: number; inferenceMs: number; totalMs: number };
  tta: Tta;
  /** With `explain: true`: the Grad-CAM maps of every label (serve/explain.ts). */
  explanation?: Explanation;
  /** Present for a model that takes a body site, and whenever a location was given. */
  site?: SiteUse;
}

export interface LoadModelOptions {
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /** Refuse images with more pixels than this, before decoding them (default: decodeImage's 50 megapixels). */
  maxPixels?: number;
}

/** A loaded dermtl model. Call dispose() when done (frees the onnxruntime session). */
export interface DermtlModel {
  /** The model folder. */
  readonly dir: string;
  /**
   * Path of model.onnx (self-contained: labels and preprocessing in its metadata); null for a folder that stores
   * only the heads of a frozen-trunk model (heads.onnx, the trunk by reference; `dermtl export` writes the file).
   */
  readonly onnxPath: string | null;
  /** model.onnx's bytes, the whole network (e.g. for onnxruntime-web in a browser); rebuilt for a heads-only folder. */
  readonly onnx: Uint8Array;
  readonly labels: ModelLabels;
  readonly preprocessing: Preprocessing;
  /** The training run's evaluation results (metrics.json, any JSON). */
  readonly metrics: unknown;
  readonly network: NetworkSpec;
  /** Whether the model takes the photo's body site (a fusion model: PredictOptions.location). */
  readonly takesSite: boolean;
  /** calibration.json: the temperatures folded into the model and the lesion thresholds; null for an uncalibrated model. */
  readonly calibration: ModelCalibration | null;
  readonly manifest: ModelManifest;
  /** Model folder format version (dermtl.json). */
  readonly formatVersion: number;
  /** explain.onnx's bytes: every label's Grad-CAM map from model.onnx's conv5_x output (models/cam.ts). */
  explainOnnx(): Promise<Uint8Array>;
  /** Predicts one image given as a file path or its bytes (JPEG, PNG, WebP, ...). Input problems are DermtlErrors. */
  predict(image: string | Uint8Array, opts?: PredictOptions): Promise<Prediction>;
  /** Waits for running predictions, then frees the session; predict() fails afterwards. */
  dispose(): Promise<void>;
}
