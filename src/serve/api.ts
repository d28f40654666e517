/**
 * The library API (tfjs-models style): `const model = await loadModel(dir); await model.predict(image)`.
 * Small on purpose: one loader, one predict, the label lists and the model's own records.
 */
import { basename, dirname } from 'node:path';
import { stat } from 'node:fs/promises';
import { loadModel as loadModelFolder, MODEL_FILES } from '../models/modelFile.ts';
import { HEADS_FILE } from '../models/trunkReference.ts';
import { createPredictor } from './predictor.ts';
import type { DermtlModel, LoadModelOptions } from './types.ts';

export { TTA_MODES, type Tta } from './defaults.ts';
export type { Explanation, LabelMap } from './explain.ts';
export type { DermtlModel, LabelScore, LoadModelOptions, Prediction, PredictOptions, SiteUse } from './types.ts';

/** Loads a model folder written by dermtl (or given by its model.onnx inside that folder). */
export async function loadModel(path: string, opts: LoadModelOptions = {}): Promise<DermtlModel> {
  const isFile = await stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
  // A model.onnx (or heads.onnx) path stands for its folder: labels.json, metrics.json etc. live beside it.
  const dir = isFile && (basename(path) === MODEL_FILES.onnx || basename(path) === HEADS_FILE) ? dirname(path) : path;
  const loaded = await loadModelFolder(dir, { threads: opts.threads });
  return createPredictor(loaded, { maxPixels: opts.maxPixels });
}
