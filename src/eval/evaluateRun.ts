// `dermtl eval RUN`: scores the test part (fold k's test images, or the whole manifest) with a trained run (or an
// ensemble run), writes scores.csv (scores.ts format) and metrics.json (evaluationJson), returns the evaluation.
//
// Engines: a frozen-trunk run scores from the feature cache (trunk features of the ten test views, then the trained
// heads), the same numbers as running RUN/model/model.onnx on the images up to fp32 rounding; `fullModel` (and every
// finetune run) runs model.onnx on the decoded views instead.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadManifest, manifestHash } from '../data/manifest.ts';
import { loadFolds, selectFold } from '../data/splits.ts';
import type { Manifest, Sample } from '../data/types.ts';
import { GraphSession } from '../graph/index.ts';
import { ImageLoader } from '../image/index.ts';
import { HEAD_TENSORS } from '../models/heads.ts';
import { loadModel, serializeInference, type LoadedModel } from '../models/modelFile.ts';
import { stderrProgress } from '../util/progress.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { concatFloat32 } from '../util/float32.ts';
import type { Tta } from '../train/config.ts';
import { TEN_CROP_VIEWS } from '../train/features.ts';
import { buildFeaturesNetwork, FEATURES_INPUT, featureCacheFor } from '../train/frozen.ts';
import { readFinishedRun, runFile, storedConfig, type RunInfo, type RunLabels } from '../train/run.ts';
import { preprocessingOf, SPLIT_FILE, type ProgressFactory } from '../train/trainTask.ts';
import { ensembleMax } from './ensemble.ts';
import { evaluate, evaluationJson, formatEvaluation, type Evaluation } from './metrics.ts';
import { writeScores, type ScoreTable } from './scores.ts';
import { averageViews, ttaViews } from './tta.ts';

export interface EvaluateOptions {
  manifest: string;
  folds?: string;
  fold?: number;
  /** Default: the run's config (eval.tta), else 10crop. */
  tta?: Tta;
  /** Folder for scores.csv and metrics.json (default: the run folder). */
  out?: string;
  /** Run model.onnx on the images even for a frozen-trunk run. */
  fullModel?: boolean;
  /** ORT threads (default: every core). */
  threads?: number;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface EvaluateResult {
  samples: Sample[];
  table: ScoreTable;
  evaluation: Evaluation;
  tta: Tta;
  scoresFile: string;
  metricsFile: string;
  lines: string[];
}

export async function evaluateRun(runDir: string, opts: EvaluateOptions): Promise<EvaluateResult> {
  const dir = resolve(runDir);
  const info = await readFinishedRun(dir);
  if ((opts.folds === undefined) !== (opts.fold === undefined)) throw new DermtlError('--folds and --fold go together: give both (evaluate fold k\'s test images) or neither (the whole manifest)');
  const manifest = await loadManifest(opts.manifest);
  checkManifestLabels(manifest, info.labels, dir);
  const samples = opts.folds !== undefined ? selectFold(await loadFolds(opts.folds, manifest), opts.fold!).test : manifest.samples;
  const tta = opts.tta ?? (info.kind === 'model' ? storedConfig(dir, info).eval.tta : '10crop');
  const progress: ProgressFactory = (opts.progress ?? true) ? (label) => stderrProgress(label) : () => Object.assign(() => {}, { stop: () => {} });
  const table = await predictRun(dir, info, samples, { tta, fullModel: opts.fullModel ?? false, threads: opts.threads, progress });
  const evaluation = evaluate(samples, table);
  const out = resolve(opts.out ?? dir);
  const scoresFile = join(out, 'scores.csv');
  const metricsFile = join(out, 'metrics.json');
  await writeScores(scoresFile, table);
  const doc = {
    run: dir, kind: info.kind, members: info.members, manifest: manifest.file, manifestHash: manifestHash(manifest),
    folds: opts.folds !== undefined ? { file: resolve(opts.folds), fold: opts.fold } : null, tta,
    engine: engineOf(info, opts.fullModel ?? false), ...evaluationJson(evaluation),
  };
  await writeFileAtomic(metricsFile, `${JSON.stringify(doc, null, 2)}\n`);
  const what = opts.folds !== undefined ? `the test part of fold ${opts.fold} (${opts.folds})` : `every image of ${opts.manifest}`;
  const lines = [`evaluated ${samples.length} image(s): ${what}; tta ${tta}, ${doc.engine}`, ...formatEvaluation(evaluation), `wrote ${scoresFile} and ${metricsFile}`];
  for (const l of lines) (opts.log ?? console.log)(l);
  return { samples, table, evaluation, tta, scoresFile, metricsFile, lines };
}

function engineOf(info: RunInfo, fullModel: boolean): string {
  if (info.kind === 'ensemble') return 'max-ensemble of the member runs';
  return info.mode === 'frozen' && !fullModel ? 'cached trunk features + trained heads' : 'model.onnx on the images';
}

/** The manifest must have exactly the model's label lists (for the heads it has); every difference is listed. */
export function checkManifestLabels(manifest: Manifest, labels: RunLabels, dir: string): void {
  const problems: string[] = [];
  const compare = (kind: 'lesion' | 'location', have: Set<string>) => {
    const model = new Set(labels[kind]);
    if (model.size === 0) return;
    const notInModel = [...have].filter((l) => !model.has(l)).sort();
    const notInManifest = [...model].filter((l) => !have.has(l)).sort();
    if (notInModel.length) problems.push(`${kind} label(s) of the manifest the model has no output for: ${notInModel.join(', ')}`);
    if (notInManifest.length) problems.push(`${kind} label(s) of the model that no image of the manifest has: ${notInManifest.join(', ')}`);
  };
  compare('lesion', new Set(manifest.samples.flatMap((s) => s.lesions)));
  compare('location', new Set(manifest.samples.map((s) => s.location)));
  if (problems.length) throw errorList(`the labels of manifest ${manifest.file} differ from those of the model in ${dir} (refine the manifest the same way as the training manifest)`, problems);
}

interface PredictOptions {
  tta: Tta;
  fullModel: boolean;
  threads?: number;
  progress: ProgressFactory;
}

/** Scores of `samples` by a finished run (a model, or the max over an ensemble's members). */
export async function predictRun(dir: string, info: RunInfo, samples: readonly Sample[], opts: PredictOptions): Promise<ScoreTable> {
  if (info.kind === 'ensemble') {
    const [a, b] = info.members ?? [];
    if (!a || !b) throw new DermtlError(`${runFile(dir, 'run')}: an ensemble needs two member runs`);
    const ta = await predictRun(a, await readFinishedRun(a), samples, opts);
    const tb = await predictRun(b, await readFinishedRun(b), samples, opts);
    return ensembleMax(ta, tb, [a, b]);
  }
  await checkNotTrainingImages(dir, info, samples);
  const modelDir = runFile(dir, 'model');
  if (info.mode === 'frozen' && !opts.fullModel) return predictFromFeatures(dir, info, samples, opts);
  const model = await loadModel(modelDir, { threads: opts.threads });
  try {
    return await predictWithModel(model, samples, opts);
  } finally {
    await model.release();
  }
}

/** Scoring a trained image as a test image would inflate every number: refuse (by absolute image path). */
async function checkNotTrainingImages(dir: string, info: RunInfo, samples: readonly Sample[]): Promise<void> {
  const file = join(dir, SPLIT_FILE);
  let split: { manifestDir: string; train: string[]; validation: string[] };
  try {
    split = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    throw new DermtlError(`${dir}: the run is incomplete (${SPLIT_FILE} is missing or damaged)`);
  }
  const used = new Set([...split.train, ...split.validation].map((i) => resolve(split.manifestDir, i)));
  const leaked = samples.filter((s) => used.has(s.path));
  if (leaked.length) {
    const hint = info.folds ? `; evaluate its own test part: --folds ${info.folds.file} --fold ${info.folds.fold}` : '';
    throw new DermtlError(`${leaked.length} of the ${samples.length} image(s) to evaluate were used to train ${dir} (e.g. ${leaked[0].image})${hint}`);
  }
}

function emptyRows(n: number): Float64Array[] {
  return Array.from({ length: n }, () => new Float64Array(0));
}

async function predictFromFeatures(dir: string, info: RunInfo, samples: readonly Sample[], opts: PredictOptions): Promise<ScoreTable> {
  const config = storedConfig(dir, info);
  const prep = preprocessingOf(config);
  const model = await loadModel(runFile(dir, 'model'), { session: false });
  const cache = featureCacheFor({ config: { ...config, runtime: { ...config.runtime, threads: opts.threads ?? config.runtime.threads } }, prep, progress: opts.progress });
  let features;
  try {
    features = await cache.features(samples, { kind: 'tenCrop' }, 'caching test views');
  } finally {
    await cache.close();
  }
  const net = buildFeaturesNetwork(model.network, features.dim, 1, 'inference', { values: model.params() });
  const session = await GraphSession.fromBytes(serializeInference(net.graph, { dynamicBatch: true }), { threads: opts.threads });
  try {
    const rows = samples.length * TEN_CROP_VIEWS;
    const out = await session.run({ [FEATURES_INPUT]: { data: features.data, dims: [rows, features.dim] } });
    return scoreTable(samples, model.labels, TEN_CROP_VIEWS, opts.tta, {
      lesion: out[HEAD_TENSORS.lesionProbs]?.data as Float32Array | undefined,
      location: out[HEAD_TENSORS.locationProbs]?.data as Float32Array | undefined,
    });
  } finally {
    await session.release();
  }
}

/** Images per model.onnx run (x10 views for 10-crop). */
const IMAGES_PER_RUN = 4;

async function predictWithModel(model: LoadedModel, samples: readonly Sample[], opts: PredictOptions): Promise<ScoreTable> {
  const mode = opts.tta === 'center' ? 'center' : 'tenCrop';
  const views = mode === 'center' ? 1 : TEN_CROP_VIEWS;
  const loader = new ImageLoader({ prep: model.preprocessing });
  const lesion: Float32Array[] = [];
  const location: Float32Array[] = [];
  const bar = opts.progress(`scoring ${samples.length} image(s) with ${model.dir}/model.onnx (${opts.tta})`);
  let done = 0;
  try {
    for await (const b of loader.batches(samples.map((s) => ({ path: s.path })), { mode, batchSize: IMAGES_PER_RUN, seed: 0 })) {
      const p = await model.predict(b.data, b.n * views);
      if (p.lesion) lesion.push(p.lesion);
      if (p.location) location.push(p.location);
      done += b.n;
      bar(done, samples.length);
    }
  } finally {
    bar.stop?.();
    await loader.close();
  }
  return scoreTable(samples, model.labels, views, mode === 'center' ? 'center-only' : opts.tta, {
    lesion: lesion.length ? concatFloat32(lesion) : undefined, location: location.length ? concatFloat32(location) : undefined,
  });
}

function scoreTable(samples: readonly Sample[], labels: RunLabels, views: number, tta: Tta | 'center-only',
  probs: { lesion?: Float32Array; location?: Float32Array }): ScoreTable {
  const pick = tta === 'center-only' ? [0] : ttaViews(tta);
  const rows = (p: Float32Array | undefined, k: number) => (k && p ? averageViews(p, samples.length, views, k, pick) : emptyRows(samples.length));
  return {
    images: samples.map((s) => s.image), lesionLabels: [...labels.lesion], locationLabels: [...labels.location],
    lesion: rows(probs.lesion, labels.lesion.length), location: rows(probs.location, labels.location.length),
  };
}
