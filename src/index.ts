// dermtl as a library: load a trained model folder and predict images, or serve it over HTTP.
//   import { loadModel } from 'dermtl';
//   const model = await loadModel('demo/study/models/mtl/fold-0/model');
//   const { lesions, location } = await model.predict('lesion.jpg', { tta: '10crop', top: 3 });
//   await model.dispose();
export {
  loadModel,
  TTA_MODES,
  type DermtlModel,
  type Explanation,
  type LabelMap,
  type LabelScore,
  type LoadModelOptions,
  type Prediction,
  type PredictOptions,
  type SiteUse,
  type Tta,
} from './serve/api.ts';
export { createServer, SERVER_DEFAULTS, type ServerOptions } from './serve/server.ts';
export { DEFAULT_MODEL_PATH, defaultModelPath } from './serve/defaultModel.ts';
export type { ModelLabels } from './models/modelFile.ts';
export type { Preprocessing } from './image/index.ts';
export { DermtlError } from './util/errors.ts';
