// `dermtl eval RUN`: scores the test part (fold k's test images, or the whole manifest) with a trained run (or an
// ensemble run), writes scores.csv (scores.ts format) and metrics.json (evaluationJson), returns the evaluation.
//
// Engines: a frozen-trunk run scores from the feature cache (trunk features of the ten test views, then the trained
// heads), the same numbers as running RUN/model/model.onnx on the images up to fp32 rounding; `fullModel` (and every
// finetune run) runs model.onnx on the decoded views instead.
//
// Calibration: a model trained with calibration (models/calibration.ts) outputs calibrated probabilities; from the
// same logits (times the folded temperatures) its scores BEFORE calibration are recovered, and metrics.json
// reports the ECE / Brier / reliability bins of both (`beforeCalibration`), plus sensitivity and specificity at the
// model's lesion thresholds.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadManifest, manifestHash } from '../data/manifest.ts';
import { loadFolds, selectFold } from '../data/splits.ts';
import type { Manifest, Sample } from '../data/types.ts';
import {
  foldTemperatures,
  lesionTemperatures,
  lesionThresholds,
  locationTemperature,
  type ModelCalibration,
} from '../models/calibration.ts';
import { loadModel } from '../models/modelFile.ts';
import { stderrProgress } from '../util/progress.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import type { Tta } from '../train/config.ts';
import { viewLogits, type HeadLogits } from '../train/viewLogits.ts';
import { readFinishedRun, runFile, storedConfig, type RunInfo, type RunLabels } from '../train/run.ts';
import { SPLIT_FILE, type ProgressFactory } from '../train/trainTask.ts';
import { ensembleMax } from './ensemble.ts';
import { evaluate, evaluationJson, formatEvaluation, type Evaluation } from '../metrics/metrics.ts';
import { keepHeads, writeScores, type ScoreTable } from '../metrics/scores.ts';
import { viewAveragedProbs, type ViewLogits } from '../metrics/temperature.ts';
import { ttaViews } from '../train/tta.ts';

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
  /**
   * A fusion model's lesion head takes the body location: 'given' feeds each image's site from the manifest (the
   * default), 'unknown' none (the model then uses its own predicted location). Other models ignore it.
   */
  site?: SiteMode;
}

export type SiteMode = 'given' | 'unknown';

export interface EvaluateResult {
  samples: Sample[];
  table: ScoreTable;
  evaluation: Evaluation;
  /** The uncalibrated scores and their evaluation, for a model with a calibration record (else null). */
  uncalibrated: ScoreTable | null;
  beforeCalibration: Evaluation | null;
  tta: Tta;
  scoresFile: string;
  metricsFile: string;
  lines: string[];
}

export async function evaluateRun(runDir: string, opts: EvaluateOptions): Promise<EvaluateResult> {
  const dir = resolve(runDir);
  const info = await readFinishedRun(dir);
  if ((opts.folds === undefined) !== (opts.fold === undefined))
    throw new DermtlError(
      "--folds and --fold go together: give both (evaluate fold k's test images) or neither (the whole manifest)",
    );
  const manifest = await loadManifest(opts.manifest);
  checkManifestLabels(manifest, info.labels, dir);
  const samples =
    opts.folds !== undefined ? selectFold(await loadFolds(opts.folds, manifest), opts.fold!).test : manifest.samples;
  const tta = opts.tta ?? (info.kind === 'model' ? storedConfig(dir, info).eval.tta : '10crop');
  const progress: ProgressFactory =
    (opts.progress ?? true) ? (label) => stderrProgress(label) : () => Object.assign(() => {}, { stop: () => {} });
  const site = opts.site ?? 'given';
  const scored = await predictRun(dir, info, samples, {
    tta,
    fullModel: opts.fullModel ?? false,
    threads: opts.threads,
    progress,
    site,
  });
  const { table } = scored;
  const thresholds = lesionThresholds(scored.calibration, info.labels.lesion);
  const evaluation = evaluate(samples, table, { thresholds });
  const beforeCalibration = scored.uncalibrated ? evaluate(samples, scored.uncalibrated) : null;
  const out = resolve(opts.out ?? dir);
  const scoresFile = join(out, 'scores.csv');
  const metricsFile = join(out, 'metrics.json');
  await writeScores(scoresFile, table);
  if (scored.uncalibrated) await writeScores(join(out, UNCALIBRATED_SCORES), scored.uncalibrated);
  const doc = {
    run: dir,
    kind: info.kind,
    members: info.members,
    manifest: manifest.file,
    manifestHash: manifestHash(manifest),
    folds: opts.folds !== undefined ? { file: resolve(opts.folds), fold: opts.fold } : null,
    tta,
    engine: engineOf(info, opts.fullModel ?? false),
    site: scored.fusion ? site : null,
    ...evaluationJson(evaluation),
    thresholdSource: scored.calibration?.thresholds
      ? 'the model (chosen on its validation part)'
      : 'default 0.5 (the model has no thresholds)',
    temperatures: scored.calibration ? temperaturesOf(scored.calibration, info.labels) : null,
    beforeCalibration: beforeCalibration ? { calibration: evaluationJson(beforeCalibration).calibration } : null,
  };
  await writeFileAtomic(metricsFile, `${JSON.stringify(doc, null, 2)}\n`);
  const what =
    opts.folds !== undefined ? `the test part of fold ${opts.fold} (${opts.folds})` : `every image of ${opts.manifest}`;
  const siteNote = scored.fusion
    ? `; body site ${site === 'given' ? 'given to the lesion head' : "unknown (the model's predicted location)"}`
    : '';
  const lines = [
    `evaluated ${samples.length} image(s): ${what}; tta ${tta}, ${doc.engine}${siteNote}`,
    ...formatEvaluation(evaluation),
    ...calibrationLines(evaluation, beforeCalibration),
    `wrote ${scoresFile}${scored.uncalibrated ? ` (and ${UNCALIBRATED_SCORES})` : ''} and ${metricsFile}`,
  ];
  for (const l of lines) (opts.log ?? console.log)(l);
  return {
    samples,
    table,
    evaluation,
    uncalibrated: scored.uncalibrated,
    beforeCalibration,
    tta,
    scoresFile,
    metricsFile,
    lines,
  };
}

/** Written next to scores.csv for a calibrated model: its scores before calibration (the study pools them). */
export const UNCALIBRATED_SCORES = 'scores-uncalibrated.csv';

function temperaturesOf(cal: ModelCalibration, labels: RunLabels): Record<string, unknown> {
  return {
    location: cal.location ? cal.location.temperature : null,
    lesion: cal.lesion
      ? Object.fromEntries(labels.lesion.map((l, c) => [l, lesionTemperatures(cal, labels.lesion)[c]]))
      : null,
    lesionMode: cal.lesion?.mode ?? null,
    fittedOn: cal.fittedOn,
  };
}

/** ECE and Brier before -> after calibration, per head. */
function calibrationLines(after: Evaluation, before: Evaluation | null): string[] {
  if (!before) return [];
  const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(4));
  const line = (
    head: string,
    b: Evaluation['lesion'] | Evaluation['location'],
    a: Evaluation['lesion'] | Evaluation['location'],
  ) =>
    b?.calibration && a?.calibration
      ? [
          `${head} before -> after calibration: ECE ${f(b.calibration.ece)} -> ${f(a.calibration.ece)}  Brier ${f(b.calibration.brier)} -> ${f(a.calibration.brier)}`,
        ]
      : [];
  return [...line('lesion', before.lesion, after.lesion), ...line('location', before.location, after.location)];
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
    if (notInModel.length)
      problems.push(`${kind} label(s) of the manifest the model has no output for: ${notInModel.join(', ')}`);
    if (notInManifest.length)
      problems.push(`${kind} label(s) of the model that no image of the manifest has: ${notInManifest.join(', ')}`);
  };
  compare('lesion', new Set(manifest.samples.flatMap((s) => s.lesions)));
  compare('location', new Set(manifest.samples.map((s) => s.location)));
  if (problems.length)
    throw errorList(
      `the labels of manifest ${manifest.file} differ from those of the model in ${dir} (refine the manifest the same way as the training manifest)`,
      problems,
    );
}

interface PredictOptions {
  tta: Tta;
  fullModel: boolean;
  threads?: number;
  progress: ProgressFactory;
  /** Fusion models: feed each image's site ('given', default) or none. */
  site?: SiteMode;
}

/** A run's scores as its model reports them, and (for a calibrated model) as it would without calibration. */
export interface RunScores {
  table: ScoreTable;
  uncalibrated: ScoreTable | null;
  /** The model's calibration record (an ensemble: none; its thresholds are the default). */
  calibration: ModelCalibration | null;
  /** A fusion model (or an ensemble with one) scored these. */
  fusion?: boolean;
}

/** Scores of `samples` by a finished run (a model, or the max over an ensemble's members). */
export async function predictRun(
  dir: string,
  info: RunInfo,
  samples: readonly Sample[],
  opts: PredictOptions,
): Promise<RunScores> {
  if (info.kind === 'ensemble') {
    const [a, b] = info.members ?? [];
    if (!a || !b) throw new DermtlError(`${runFile(dir, 'run')}: an ensemble needs two member runs`);
    // each member's scores of the ensemble's heads only (lesion-only + MTL: the lesion scores)
    const heads = (t: ScoreTable) =>
      keepHeads(t, { lesion: info.labels.lesion.length > 0, location: info.labels.location.length > 0 });
    const ta = await predictRun(a, await readFinishedRun(a), samples, opts);
    const tb = await predictRun(b, await readFinishedRun(b), samples, opts);
    const before =
      ta.uncalibrated || tb.uncalibrated
        ? ensembleMax(heads(ta.uncalibrated ?? ta.table), heads(tb.uncalibrated ?? tb.table), [a, b])
        : null;
    return {
      table: ensembleMax(heads(ta.table), heads(tb.table), [a, b]),
      uncalibrated: before,
      calibration: null,
      fusion: ta.fusion || tb.fusion,
    };
  }
  await checkNotTrainingImages(dir, info, samples);
  const model = await loadModel(runFile(dir, 'model'), { session: false });
  const engine = info.mode === 'frozen' && !opts.fullModel ? 'features' : 'model';
  const fusion = model.network.heads.fusion === true;
  const site =
    fusion && (opts.site ?? 'given') === 'given'
      ? samples.map((s) => model.labels.location.indexOf(s.location))
      : undefined;
  const scoreLogits = (params: ReadonlyMap<string, Float32Array>) =>
    viewLogits(model.network, params, samples, {
      engine,
      config: storedConfig(dir, info),
      prep: model.preprocessing,
      threads: opts.threads,
      progress: opts.progress,
      centerOnly: opts.tta === 'center',
      site,
    });
  const logits = await scoreLogits(model.params());
  const cal = model.calibration;
  // the folded logits are z / T: scores at temperature 1 are the model's, at 1 / T the uncalibrated ones
  const table = (z: HeadLogits, lesionT: number[], locationT: number): ScoreTable => ({
    images: samples.map((s) => s.image),
    lesionLabels: [...model.labels.lesion],
    locationLabels: [...model.labels.location],
    lesion: probs(z.lesion, 'sigmoid', lesionT, samples.length, opts.tta),
    location: probs(z.location, 'softmax', locationT, samples.length, opts.tta),
  });
  const ones = model.labels.lesion.map(() => 1);
  const lesionT = lesionTemperatures(cal, model.labels.lesion);
  const locationT = locationTemperature(cal);
  // ...except where a fusion model's lesion head read its own (calibrated) location distribution (a site unknown):
  // there the uncalibrated model is scored again, its temperatures unfolded
  const readsLocation = fusion && locationT !== 1 && (site === undefined || site.some((c) => c < 0));
  const before =
    cal && readsLocation
      ? await scoreLogits(
          foldTemperatures(model.params(), { lesion: lesionT.map((t) => 1 / t), location: 1 / locationT }),
        )
      : null;
  return {
    table: table(logits, ones, 1),
    uncalibrated: cal
      ? before
        ? table(before, ones, 1)
        : table(
            logits,
            lesionT.map((t) => 1 / t),
            1 / locationT,
          )
      : null,
    calibration: cal,
    fusion,
  };
}

function probs(
  z: ViewLogits | undefined,
  activation: 'sigmoid' | 'softmax',
  t: number | number[],
  images: number,
  tta: Tta,
): Float64Array[] {
  if (!z) return Array.from({ length: images }, () => new Float64Array(0));
  return viewAveragedProbs(z, z.views === 1 ? [0] : ttaViews(tta), activation, t);
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
    throw new DermtlError(
      `${leaked.length} of the ${samples.length} image(s) to evaluate were used to train ${dir} (e.g. ${leaked[0].image})${hint}`,
    );
  }
}
