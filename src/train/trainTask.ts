// `dermtl train`: config -> manifest (+ fold) -> labels and the grouped validation split -> run folder -> frozen or
// finetune training (resumable) -> the final model folder RUN/model. See run.ts for the run folder.
import { withStopSignals } from '../util/signals.ts';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadManifest, manifestHash } from '../data/manifest.ts';
import { loadFolds, selectFold } from '../data/splits.ts';
import type { Manifest, Sample } from '../data/types.ts';
import { learnedTaskWeights, withoutTaskWeighting } from '../models/heads.ts';
import { saveModel } from '../models/modelFile.ts';
import { stderrProgress } from '../util/progress.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { loadTrunkWeights, type TrunkWeights } from './backbone.ts';
import { epochsOf, loadConfig, selectionMetric, resolveConfig, type TrainConfig } from './config.ts';
import { finetuneImages, trainFinetune } from './finetune.ts';
import { trainFrozen } from './frozen.ts';
import { trainPartial } from './partial.ts';
import { calibrate } from './calibrate.ts';
import {
  RUN_FORMAT,
  RUN_FILES,
  RUN_VERSION,
  pruneFinishedRun,
  readRunInfoIfAny,
  runFile,
  writeJson,
  writeRunInfo,
  type EpochRecord,
  type RunInfo,
  type RunLabels,
  type TaskWeightsRecord,
} from './run.ts';
import { checkTrainable, labelsFor, stepsPerEpoch, validationSplit } from './targets.ts';
import {
  preprocessingOf,
  SELECTED_FILE,
  specOf,
  SPLIT_FILE,
  type ModeResult,
  type ProgressFactory,
  type TrainContext,
  type TrainOptions,
  type TrainResult,
} from './trainContext.ts';
import { trainTuned } from './tuned.ts';

// The mode trainers' context and shared pieces live in trainContext.ts (the modes import them, and this file imports
// the modes); re-exported here, where callers have always found them.
export {
  loopOutcome,
  lossWeightsOf,
  multipliersOf,
  preprocessingOf,
  runFileOf,
  runTaskEpochs,
  SELECTED_FILE,
  siteRevealOf,
  specOf,
  SPLIT_FILE,
  taskWeightingOf,
  type ModeResult,
  type ProgressFactory,
  type TrainContext,
  type TrainOptions,
  type TrainResult,
} from './trainContext.ts';

export async function trainRun(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const overrides = { task: opts.task, mode: opts.mode, seed: opts.seed };
  const config = opts.configFile
    ? await loadConfig(opts.configFile, overrides)
    : resolveConfig(opts.config ?? {}, overrides, 'the config');
  if ((opts.folds === undefined) !== (opts.fold === undefined))
    throw new DermtlError(
      '--folds and --fold go together: give both (train on the other folds of F) or neither (train on the whole manifest)',
    );
  const manifest = await loadManifest(opts.manifest);
  const part = await trainingPart(manifest, opts.folds, opts.fold);
  const labels = labelsFor(config.task, manifest.samples);
  checkTrainable(config.task, labels, part.train, part.where);
  const split = validationSplit(part.train, config.validation.fraction, config.seed);
  checkTrainable(config.task, labels, split.train, `${part.where}, without its validation part`);

  const dir = resolve(opts.out);
  const info = await prepareRunFolder(dir, config, manifest, opts, labels, { ...split, test: part.test }, log);
  if (info.status === 'done') {
    log(`${dir}: this run has already finished; nothing to do (evaluate it with dermtl eval)`);
    return { dir, status: 'already done', info, history: [], step: 0, stepMs: null };
  }
  if (config.taskWeighting.kind === 'tuned') return trainTuned(dir, info, config, opts, trainRun);

  const prep = preprocessingOf(config);
  let weights: Promise<TrunkWeights> | null = null;
  const bars = opts.progress ?? true;
  const progress: ProgressFactory = bars
    ? (label) => stderrProgress(label)
    : () => Object.assign(() => {}, { stop: () => {} });
  const trainImages =
    config.mode === 'finetune' ? finetuneImages({ config, train: split.train }).length : split.train.length;
  const spe = stepsPerEpoch(trainImages, config.batchSize);
  const steps = epochsOf(config) * spe;
  const bar = progress(`training (${config.mode}, ${config.task})`);
  const timer = stepTimer(spe);
  const ctx: TrainContext = {
    config,
    runDir: dir,
    labels,
    train: split.train,
    validation: split.validation,
    spec: specOf(config, labels),
    prep,
    trunkWeights: () => (weights ??= loadTrunkWeights(config.trunk)),
    signal: opts.signal,
    onStep: (r) => {
      timer.tick(r.step);
      bar(r.step, steps);
      opts.onStep?.(r);
    },
    onEpoch: (e) => log(formatEpoch(e, epochsOf(config))),
    progress,
    log,
  };
  let r: ModeResult;
  try {
    r =
      config.mode === 'frozen'
        ? await trainFrozen(ctx)
        : config.finetune.trainable === 'all'
          ? await trainFinetune(ctx)
          : await trainPartial(ctx);
  } finally {
    bar.stop?.();
  }
  const timings = { ...info.timings };
  for (const [k, v] of Object.entries(r.timings)) timings[k] = (timings[k] ?? 0) + v;
  if (r.stopped) {
    await writeRunInfo(dir, { ...info, timings });
    log(
      `stopped at update ${r.step} of ${steps}; the checkpoint is saved. Continue with the same command and --resume.`,
    );
    return {
      dir,
      status: 'stopped',
      info,
      history: r.history,
      step: r.step,
      resumedFrom: r.resumedFrom,
      stepMs: timer.mean(),
    };
  }
  // Temperatures and lesion thresholds, fitted on the validation groups and folded into the heads (calibrate.ts).
  const tc = performance.now();
  const network = r.spec ?? ctx.spec;
  const engine = config.mode === 'frozen' ? 'features' : 'model';
  const taskWeights = taskWeightsRecord(config, r.params);
  const cal = await calibrate(
    { spec: network, params: withoutTaskWeighting(r.params), labels, validation: split.validation },
    {
      engine,
      config,
      prep,
      threads: config.runtime.threads ?? undefined,
      progress,
      // a fusion model is calibrated as it is mostly used: with the body site known
      site: network.heads.fusion ? split.validation.map((s) => labels.location.indexOf(s.location)) : undefined,
    },
  );
  for (const line of cal.lines) log(line);
  timings.calibrate_s = (performance.now() - tc) / 1000;
  const t0 = performance.now();
  const kept = r.selected ? r.history[r.selected.epoch - 1] : r.history.at(-1);
  const selection = r.selected
    ? { epoch: r.selected.epoch, metric: selectionMetric(config), score: r.selected.score }
    : null;
  // A frozen run's trunk is the untrained one: its model folder stores the heads and names the trunk (run.ts).
  await saveModel(
    runFile(dir, 'model'),
    {
      network,
      params: cal.params,
      labels,
      preprocessing: prep,
      config,
      calibration: cal.calibration,
      metrics: {
        validation: kept?.validation ?? null,
        epochs: r.history.length,
        selection,
        ...(taskWeights ? { taskWeights } : {}),
      },
    },
    { trunk: config.mode === 'frozen' ? 'reference' : 'embed' },
  );
  timings.save_s = (performance.now() - t0) / 1000;
  const done: RunInfo = {
    ...info,
    status: 'done',
    finishedAt: new Date().toISOString(),
    timings,
    backbone: r.backbone ?? info.backbone,
    selection,
    taskWeights,
  };
  await writeRunInfo(dir, done);
  await pruneFinishedRun(dir, [SELECTED_FILE]);
  const chosen = selection
    ? `; kept epoch ${selection.epoch}, best validation ${selection.metric} ${Math.abs(selection.score).toFixed(4)}`
    : '';
  log(`wrote ${runFile(dir, 'model')} (${r.step} updates, ${r.history.length} epochs${chosen})`);
  return {
    dir,
    status: 'done',
    info: done,
    history: r.history,
    step: r.step,
    resumedFrom: r.resumedFrom,
    stepMs: timer.mean(),
  };
}

/** Runs trainRun with SIGINT/SIGTERM turned into a clean stop (checkpoint, then exit); a second one exits at once. */
export function trainWithStopSignals(opts: TrainOptions): Promise<TrainResult> {
  return withStopSignals(
    () => 'finishing the current update and saving a checkpoint...',
    (signal) => trainRun({ ...opts, signal }),
  );
}

/** What an MTL run's task weights were (uncertainty: the learned ones, from the final params); null otherwise. */
function taskWeightsRecord(c: TrainConfig, params: ReadonlyMap<string, Float32Array>): TaskWeightsRecord | null {
  if (c.task !== 'mtl') return null;
  const learned = c.taskWeighting.kind === 'uncertainty' ? learnedTaskWeights(params) : null;
  return learned
    ? { kind: 'uncertainty', ...learned }
    : { kind: 'fixed', lesion: c.taskWeights.lesion, location: c.taskWeights.location };
}

interface Part {
  train: Sample[];
  test: Sample[];
  where: string;
  folds: { file: string; fold: number } | null;
}

async function trainingPart(manifest: Manifest, folds?: string, fold?: number): Promise<Part> {
  if (folds === undefined || fold === undefined)
    return { train: manifest.samples, test: [], where: manifest.file, folds: null };
  const f = selectFold(await loadFolds(folds, manifest), fold);
  return {
    train: f.train,
    test: f.test,
    where: `${manifest.file} without fold ${fold} of ${folds}`,
    folds: { file: resolve(folds), fold },
  };
}

async function prepareRunFolder(
  dir: string,
  config: TrainConfig,
  manifest: Manifest,
  opts: TrainOptions,
  labels: RunLabels,
  split: { train: Sample[]; validation: Sample[]; test: Sample[] },
  log: (l: string) => void,
): Promise<RunInfo> {
  const folds =
    opts.folds !== undefined && opts.fold !== undefined ? { file: resolve(opts.folds), fold: opts.fold } : null;
  const existing = await readRunInfoIfAny(dir);
  if (existing) {
    if (!opts.resume)
      throw new DermtlError(
        `${dir} already holds a run (status ${existing.status}); pass --resume to continue it, or choose another --out`,
      );
    checkSameRun(dir, existing, config, manifest, folds, labels);
    return existing;
  }
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length)
    throw new DermtlError(
      `${dir} is not empty and holds no dermtl run (${RUN_FILES.run} missing); refusing to write into it`,
    );
  if (opts.resume) log(`${dir}: no run to resume there; starting a new one`);
  const info: RunInfo = {
    format: RUN_FORMAT,
    version: RUN_VERSION,
    kind: 'model',
    status: 'training',
    createdAt: new Date().toISOString(),
    finishedAt: null,
    task: config.task,
    labels,
    manifest: { file: manifest.file, hash: manifestHash(manifest), images: manifest.samples.length },
    folds,
    mode: config.mode,
    seed: config.seed,
    config,
    split: { train: split.train.length, validation: split.validation.map((s) => s.image), test: split.test.length },
    backbone: null,
    members: null,
    timings: {},
  };
  await writeJson(runFile(dir, 'config'), config);
  // Which images trained the model (training and validation part): eval refuses to score them as test images.
  await writeJson(join(dir, SPLIT_FILE), {
    manifestDir: manifest.dir,
    train: split.train.map((s) => s.image),
    validation: split.validation.map((s) => s.image),
    test: split.test.map((s) => s.image),
  });
  await writeRunInfo(dir, info);
  return info;
}

function checkSameRun(
  dir: string,
  info: RunInfo,
  config: TrainConfig,
  manifest: Manifest,
  folds: RunInfo['folds'],
  labels: RunLabels,
): void {
  const problems: string[] = [];
  const before = JSON.stringify(info.config);
  if (before !== JSON.stringify(config))
    problems.push(
      `the resolved config differs from the run's ${RUN_FILES.config} (${diffKeys(info.config, config).join(', ')})`,
    );
  if (info.manifest.hash !== manifestHash(manifest))
    problems.push(`the manifest differs from the one the run was started with (${info.manifest.file})`);
  if (JSON.stringify(info.folds) !== JSON.stringify(folds))
    problems.push(
      `the fold differs: the run used ${info.folds ? `fold ${info.folds.fold} of ${info.folds.file}` : 'no folds'}`,
    );
  if (JSON.stringify(info.labels) !== JSON.stringify(labels)) problems.push('the label lists differ');
  if (problems.length) throw errorList(`cannot resume ${dir} with these arguments`, problems);
}

function diffKeys(a: unknown, b: unknown, at = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null)
    return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '(all)'];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) =>
    diffKeys((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k),
  );
}

function formatEpoch(e: EpochRecord, epochs: number): string {
  const f = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4));
  const v = e.validation;
  const val = v
    ? `  validation loss ${f(v.total)}${v.mapClass !== undefined ? `  mAP-class ${f(v.mapClass)}` : ''}${v.top1 !== undefined ? `  top-1 ${f(v.top1)}` : ''}`
    : '';
  return `epoch ${e.epoch}/${epochs}  train loss ${f(e.train.total)}${val}  lr ${e.lr}${e.lrReduced ? ' -> reduced' : ''}`;
}

/** Mean wall time between consecutive updates within an epoch (the first update and epoch ends excluded). */
function stepTimer(spe: number): { tick: (step: number) => void; mean: () => number | null } {
  let last = 0;
  let sum = 0;
  let count = 0;
  let first = true;
  return {
    tick(step) {
      const now = performance.now();
      if (!first && (step - 1) % spe !== 0) {
        sum += now - last;
        count++;
      }
      first = false;
      last = now;
    },
    mean: () => (count ? sum / count : null),
  };
}
