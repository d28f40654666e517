// `dermtl train`: config -> manifest (+ fold) -> labels and the grouped validation split -> run folder -> frozen or
// finetune training (resumable) -> the final model folder RUN/model. See run.ts for the run folder.
import { withStopSignals } from '../util/signals.ts';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Graph, Loss } from '../graph/index.ts';
import { runEpochs, selectionScore, type EpochLoopOptions, type EpochLoopResult, type ValidationResult } from './epochs.ts';
import { loadManifest, manifestHash } from '../data/manifest.ts';
import { loadFolds, selectFold } from '../data/splits.ts';
import type { Manifest, Sample } from '../data/types.ts';
import { CAFFE_PREPROCESSING, type Preprocessing } from '../image/index.ts';
import type { FoldedResNet50 } from '../models/foldBatchNorm.ts';
import { HEAD_PREFIX, learnedTaskWeights, withoutTaskWeighting, type TaskWeighting } from '../models/heads.ts';
import { saveModel } from '../models/modelFile.ts';
import type { NetworkSpec } from '../models/network.ts';
import { stderrProgress } from '../util/progress.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { loadTrunkWeights, TRUNK_DEPTH, type TrunkWeights } from './backbone.ts';
import { epochsOf, headsOptions, loadConfig, selectionMetric, resolveConfig, type TrainConfig, type TrainMode, type Task } from './config.ts';
import { finetuneImages, trainFinetune } from './finetune.ts';
import { trainFrozen } from './frozen.ts';
import { trainPartial } from './partial.ts';
import { calibrate } from './calibrate.ts';
import { RUN_FORMAT, RUN_FILES, RUN_VERSION, pruneFinishedRun, readRunInfoIfAny, runFile, writeJson, writeRunInfo, type EpochRecord, type RunInfo, type RunLabels, type TaskWeightsRecord } from './run.ts';
import type { Multipliers } from './optimizer.ts';
import type { StepResult } from './step.ts';
import { checkTrainable, labelsFor, stepsPerEpoch, validationSplit, type SiteReveal } from './targets.ts';
import { trainTuned } from './tuned.ts';

export interface TrainOptions {
  manifest: string;
  /** The run folder. */
  out: string;
  task?: Task;
  mode?: TrainMode;
  seed?: number;
  folds?: string;
  fold?: number;
  /** --config C.json */
  configFile?: string;
  /** A config object (tests, scripts); used when no configFile is given. */
  config?: unknown;
  /** Continue the run in `out` from its latest checkpoint. */
  resume?: boolean;
  /** Stops after the current update, checkpoints, and returns (status 'stopped'). */
  signal?: AbortSignal;
  onStep?: (r: StepResult) => void;
  /** Human-readable lines (default console.log). */
  log?: (line: string) => void;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
}

export type ProgressFactory = (label: string) => ((done: number, total: number) => void) & { stop?: () => void };

/** What a mode trainer gets. */
export interface TrainContext {
  config: TrainConfig;
  runDir: string;
  labels: RunLabels;
  train: Sample[];
  validation: Sample[];
  spec: NetworkSpec;
  prep: Preprocessing;
  /** The trunk's initial weights, loaded once on first use. */
  trunkWeights: () => Promise<TrunkWeights>;
  signal?: AbortSignal;
  onStep?: (r: StepResult) => void;
  onEpoch?: (e: EpochRecord) => void;
  progress: ProgressFactory;
  log: (line: string) => void;
}

/** What a mode trainer returns: every param of the full network when finished (heads only when stopped). */
export interface ModeResult {
  params: Map<string, Float32Array>;
  history: EpochRecord[];
  stopped: boolean;
  step: number;
  resumedFrom?: number;
  timings: Record<string, number>;
  backbone: { id: string; views: number; dim: number } | null;
  /** The epoch whose params were kept (selection.epoch 'best'); null: the last epoch's. */
  selected: { epoch: number; score: number } | null;
  /** The network `params` belong to, when it is not the context's spec (a head ensemble merged into wider heads). */
  spec?: NetworkSpec;
}

/** What every mode's result takes over from its epoch loop as is. */
export function loopOutcome(r: EpochLoopResult): Pick<ModeResult, 'history' | 'stopped' | 'step' | 'resumedFrom' | 'selected'> {
  return { history: r.history, stopped: r.stopped, step: r.step, resumedFrom: r.resumedFrom, selected: r.selected };
}

export interface TrainResult {
  dir: string;
  status: 'done' | 'stopped' | 'already done';
  info: RunInfo;
  history: EpochRecord[];
  step: number;
  resumedFrom?: number;
  /** Mean wall time of an update in this segment (ms), batches included, epoch ends excluded. */
  stepMs: number | null;
}

export async function trainRun(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const overrides = { task: opts.task, mode: opts.mode, seed: opts.seed };
  const config = opts.configFile ? await loadConfig(opts.configFile, overrides) : resolveConfig(opts.config ?? {}, overrides, 'the config');
  if ((opts.folds === undefined) !== (opts.fold === undefined)) throw new DermtlError('--folds and --fold go together: give both (train on the other folds of F) or neither (train on the whole manifest)');
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
  const progress: ProgressFactory = bars ? (label) => stderrProgress(label) : () => Object.assign(() => {}, { stop: () => {} });
  const trainImages = config.mode === 'finetune' ? finetuneImages({ config, train: split.train }).length : split.train.length;
  const spe = stepsPerEpoch(trainImages, config.batchSize);
  const steps = epochsOf(config) * spe;
  const bar = progress(`training (${config.mode}, ${config.task})`);
  const timer = stepTimer(spe);
  const ctx: TrainContext = {
    config, runDir: dir, labels, train: split.train, validation: split.validation, spec: specOf(config, labels), prep,
    trunkWeights: () => (weights ??= loadTrunkWeights(config.trunk)),
    signal: opts.signal,
    onStep: (r) => {
      timer.tick(r.step);
      bar(r.step, steps);
      opts.onStep?.(r);
    },
    onEpoch: (e) => log(formatEpoch(e, epochsOf(config))),
    progress, log,
  };
  let r: ModeResult;
  try {
    r = config.mode === 'frozen' ? await trainFrozen(ctx) : config.finetune.trainable === 'all' ? await trainFinetune(ctx) : await trainPartial(ctx);
  } finally {
    bar.stop?.();
  }
  const timings = { ...info.timings };
  for (const [k, v] of Object.entries(r.timings)) timings[k] = (timings[k] ?? 0) + v;
  if (r.stopped) {
    await writeRunInfo(dir, { ...info, timings });
    log(`stopped at update ${r.step} of ${steps}; the checkpoint is saved. Continue with the same command and --resume.`);
    return { dir, status: 'stopped', info, history: r.history, step: r.step, resumedFrom: r.resumedFrom, stepMs: timer.mean() };
  }
  // Temperatures and lesion thresholds, fitted on the validation groups and folded into the heads (calibrate.ts).
  const tc = performance.now();
  const network = r.spec ?? ctx.spec;
  const engine = config.mode === 'frozen' ? 'features' : 'model';
  const taskWeights = taskWeightsRecord(config, r.params);
  const cal = await calibrate({ spec: network, params: withoutTaskWeighting(r.params), labels, validation: split.validation }, {
    engine, config, prep, threads: config.runtime.threads ?? undefined, progress,
    // a fusion model is calibrated as it is mostly used: with the body site known
    site: network.heads.fusion ? split.validation.map((s) => labels.location.indexOf(s.location)) : undefined,
  });
  for (const line of cal.lines) log(line);
  timings.calibrate_s = (performance.now() - tc) / 1000;
  const t0 = performance.now();
  const kept = r.selected ? r.history[r.selected.epoch - 1] : r.history.at(-1);
  const selection = r.selected ? { epoch: r.selected.epoch, metric: selectionMetric(config), score: r.selected.score } : null;
  // A frozen run's trunk is the untrained one: its model folder stores the heads and names the trunk (run.ts).
  await saveModel(runFile(dir, 'model'), {
    network, params: cal.params, labels, preprocessing: prep, config, calibration: cal.calibration,
    metrics: { validation: kept?.validation ?? null, epochs: r.history.length, selection, ...(taskWeights ? { taskWeights } : {}) },
  }, { trunk: config.mode === 'frozen' ? 'reference' : 'embed' });
  timings.save_s = (performance.now() - t0) / 1000;
  const done: RunInfo = { ...info, status: 'done', finishedAt: new Date().toISOString(), timings, backbone: r.backbone ?? info.backbone, selection, taskWeights };
  await writeRunInfo(dir, done);
  await pruneFinishedRun(dir, [SELECTED_FILE]);
  const chosen = selection ? `; kept epoch ${selection.epoch}, best validation ${selection.metric} ${Math.abs(selection.score).toFixed(4)}` : '';
  log(`wrote ${runFile(dir, 'model')} (${r.step} updates, ${r.history.length} epochs${chosen})`);
  return { dir, status: 'done', info: done, history: r.history, step: r.step, resumedFrom: r.resumedFrom, stepMs: timer.mean() };
}

/** Runs trainRun with SIGINT/SIGTERM turned into a clean stop (checkpoint, then exit); a second one exits at once. */
export function trainWithStopSignals(opts: TrainOptions): Promise<TrainResult> {
  return withStopSignals(() => 'finishing the current update and saving a checkpoint...', (signal) => trainRun({ ...opts, signal }));
}

// ---------------------------------------------------------------- pieces shared by the modes

export function preprocessingOf(c: TrainConfig): Preprocessing {
  return {
    ...CAFFE_PREPROCESSING, mean: [...CAFFE_PREPROCESSING.mean], alphaBackground: [...CAFFE_PREPROCESSING.alphaBackground],
    size: c.image.size, resizeShorter: c.image.resizeShorter,
  };
}

export function specOf(c: TrainConfig, labels: RunLabels): NetworkSpec {
  const h = headsOptions(c);
  return {
    trunk: { depth: TRUNK_DEPTH[c.trunk] }, imageSize: c.image.size, seed: c.seed,
    heads: { lesion: labels.lesion.length, location: labels.location.length, shared: h.shared, featureDropout: h.featureDropout, ...(c.fusion.enabled ? { fusion: true } : {}) },
  };
}

/** A fusion model's site feeds for training update (epoch, step), or for validation ('given'); undefined otherwise. */
export function siteRevealOf(ctx: Pick<TrainContext, 'config'>, at: { epoch: number; step: number } | 'given'): SiteReveal | undefined {
  const c = ctx.config;
  if (!c.fusion.enabled) return undefined;
  return at === 'given' ? 'given' : { dropout: c.fusion.siteDropout, seed: c.seed, ...at };
}

/** What an MTL run's task weights were (uncertainty: the learned ones, from the final params); null otherwise. */
function taskWeightsRecord(c: TrainConfig, params: ReadonlyMap<string, Float32Array>): TaskWeightsRecord | null {
  if (c.task !== 'mtl') return null;
  const learned = c.taskWeighting.kind === 'uncertainty' ? learnedTaskWeights(params) : null;
  return learned ? { kind: 'uncertainty', ...learned } : { kind: 'fixed', lesion: c.taskWeights.lesion, location: c.taskWeights.location };
}

/** The loss weighting of the training graph ('tuned' trains 'fixed' candidates, see trainTuned). */
export function taskWeightingOf(c: TrainConfig): TaskWeighting {
  return c.taskWeighting.kind === 'uncertainty' ? 'uncertainty' : 'fixed';
}

/**
 * lr multipliers of a graph's trainable params from the config: trunk, head (and shared-layer) weights, biases.
 * With `folded` (the pretrained trunk, finetune bnParameterization 'original') each trunk conv weight also gets the
 * per-channel scale (gamma/sigma)^2 of its folded BatchNorm (see SgdMomentum's channelScale); biases keep the plain
 * rate, which is SGD on BN's shift beta.
 */
export function multipliersOf(g: Graph, c: TrainConfig, folded?: FoldedResNet50): Record<string, Multipliers> {
  const m = c.optimizer.lrMult;
  return Object.fromEntries(g.params({ trainable: true }).map((p) => {
    const lrMult = !p.name.startsWith(HEAD_PREFIX) ? m.trunk : p.name.endsWith('/bias') ? m.headBias : m.headWeight;
    const scale = folded && p.name.endsWith('/weight') ? folded.convs.get(p.name.slice(0, -'/weight'.length))?.scale : undefined;
    return [p.name, scale ? { lrMult, channelScale: Float32Array.from(scale, (s) => s * s) } : { lrMult }];
  }));
}

export function lossWeightsOf(losses: readonly Loss[]): Record<string, number> {
  return Object.fromEntries(losses.map((l) => [l.tensor.name, l.weight ?? 1]));
}

export function runFileOf(ctx: Pick<TrainContext, 'runDir'>, name: keyof typeof RUN_FILES): string {
  return runFile(ctx.runDir, name);
}

/** The epoch loop of either mode: what the run context fixes (checkpoints, history, signal, callbacks) is filled in here. */
export function runTaskEpochs(ctx: TrainContext, o: Pick<EpochLoopOptions, 'trainer' | 'epochs' | 'stepsPerEpoch' | 'batch' | 'validate'> & { losses: readonly Loss[] }): Promise<EpochLoopResult> {
  const c = ctx.config;
  const metric = selectionMetric(c);
  const select = o.validate && c.selection.epoch === 'best' ? { score: (v: ValidationResult) => selectionScore(metric, v), file: join(ctx.runDir, SELECTED_FILE) } : undefined;
  return runEpochs({
    trainer: o.trainer, epochs: o.epochs, stepsPerEpoch: o.stepsPerEpoch, lossWeights: lossWeightsOf(o.losses), batch: o.batch, validate: o.validate, select,
    checkpointRoot: runFileOf(ctx, 'checkpoints'), checkpointEveryEpochs: c.checkpoint.everyEpochs, keep: c.checkpoint.keep,
    historyFile: runFileOf(ctx, 'history'), signal: ctx.signal, onStep: ctx.onStep, onEpoch: ctx.onEpoch,
  });
}

interface Part {
  train: Sample[];
  test: Sample[];
  where: string;
  folds: { file: string; fold: number } | null;
}

async function trainingPart(manifest: Manifest, folds?: string, fold?: number): Promise<Part> {
  if (folds === undefined || fold === undefined) return { train: manifest.samples, test: [], where: manifest.file, folds: null };
  const f = selectFold(await loadFolds(folds, manifest), fold);
  return { train: f.train, test: f.test, where: `${manifest.file} without fold ${fold} of ${folds}`, folds: { file: resolve(folds), fold } };
}

async function prepareRunFolder(dir: string, config: TrainConfig, manifest: Manifest, opts: TrainOptions, labels: RunLabels,
  split: { train: Sample[]; validation: Sample[]; test: Sample[] }, log: (l: string) => void): Promise<RunInfo> {
  const folds = opts.folds !== undefined && opts.fold !== undefined ? { file: resolve(opts.folds), fold: opts.fold } : null;
  const existing = await readRunInfoIfAny(dir);
  if (existing) {
    if (!opts.resume) throw new DermtlError(`${dir} already holds a run (status ${existing.status}); pass --resume to continue it, or choose another --out`);
    checkSameRun(dir, existing, config, manifest, folds, labels);
    return existing;
  }
  const entries = await readdir(dir).catch(() => [] as string[]);
  if (entries.length) throw new DermtlError(`${dir} is not empty and holds no dermtl run (${RUN_FILES.run} missing); refusing to write into it`);
  if (opts.resume) log(`${dir}: no run to resume there; starting a new one`);
  const info: RunInfo = {
    format: RUN_FORMAT, version: RUN_VERSION, kind: 'model', status: 'training', createdAt: new Date().toISOString(), finishedAt: null,
    task: config.task, labels, manifest: { file: manifest.file, hash: manifestHash(manifest), images: manifest.samples.length }, folds,
    mode: config.mode, seed: config.seed, config,
    split: { train: split.train.length, validation: split.validation.map((s) => s.image), test: split.test.length },
    backbone: null, members: null, timings: {},
  };
  await writeJson(runFile(dir, 'config'), config);
  // Which images trained the model (training and validation part): eval refuses to score them as test images.
  await writeJson(join(dir, SPLIT_FILE), { manifestDir: manifest.dir, train: split.train.map((s) => s.image), validation: split.validation.map((s) => s.image), test: split.test.map((s) => s.image) });
  await writeRunInfo(dir, info);
  return info;
}

/** The params of the epoch chosen on the validation part (selection.epoch 'best'), rewritten when a later epoch beats it. */
export const SELECTED_FILE = 'selected.bin';

/** The image lists of a run (relative to manifestDir). */
export const SPLIT_FILE = 'split.json';

function checkSameRun(dir: string, info: RunInfo, config: TrainConfig, manifest: Manifest, folds: RunInfo['folds'], labels: RunLabels): void {
  const problems: string[] = [];
  const before = JSON.stringify(info.config);
  if (before !== JSON.stringify(config)) problems.push(`the resolved config differs from the run's ${RUN_FILES.config} (${diffKeys(info.config, config).join(', ')})`);
  if (info.manifest.hash !== manifestHash(manifest)) problems.push(`the manifest differs from the one the run was started with (${info.manifest.file})`);
  if (JSON.stringify(info.folds) !== JSON.stringify(folds)) problems.push(`the fold differs: the run used ${info.folds ? `fold ${info.folds.fold} of ${info.folds.file}` : 'no folds'}`);
  if (JSON.stringify(info.labels) !== JSON.stringify(labels)) problems.push('the label lists differ');
  if (problems.length) throw errorList(`cannot resume ${dir} with these arguments`, problems);
}

function diffKeys(a: unknown, b: unknown, at = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '(all)'];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => diffKeys((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
}

function formatEpoch(e: EpochRecord, epochs: number): string {
  const f = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4));
  const v = e.validation;
  const val = v ? `  validation loss ${f(v.total)}${v.mapClass !== undefined ? `  mAP-class ${f(v.mapClass)}` : ''}${v.top1 !== undefined ? `  top-1 ${f(v.top1)}` : ''}` : '';
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
