// What a mode trainer (frozen.ts, finetune.ts, partial.ts, tuned.ts) gets from `dermtl train` (trainTask.ts) and the
// pieces the modes share; kept apart from trainTask.ts, which imports the modes, so no file imports itself back.
import { join } from 'node:path';
import type { Graph, Loss } from '../graph/index.ts';
import type { Sample } from '../data/types.ts';
import { siteLabelRates } from '../data/statistics.ts';
import { CAFFE_PREPROCESSING, type Preprocessing } from '../image/index.ts';
import type { FoldedResNet50 } from '../models/foldBatchNorm.ts';
import { SITE_WEIGHT } from '../models/fusion.ts';
import { HEAD_PREFIX, type TaskWeighting } from '../models/heads.ts';
import type { NetworkSpec } from '../models/network.ts';
import { TRUNK_DEPTH, type TrunkWeights } from './backbone.ts';
import { headsOptions, selectionMetric, type TrainConfig, type TrainMode, type Task } from './config.ts';
import {
  runEpochs,
  selectionScore,
  type EpochLoopOptions,
  type EpochLoopResult,
  type ValidationResult,
} from './epochs.ts';
import type { Multipliers } from './optimizer.ts';
import { RUN_FILES, runFile, type EpochRecord, type RunInfo, type RunLabels } from './run.ts';
import type { StepResult } from './step.ts';
import type { SiteReveal } from './targets.ts';

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
export function loopOutcome(
  r: EpochLoopResult,
): Pick<ModeResult, 'history' | 'stopped' | 'step' | 'resumedFrom' | 'selected'> {
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

export function preprocessingOf(c: TrainConfig): Preprocessing {
  return {
    ...CAFFE_PREPROCESSING,
    mean: [...CAFFE_PREPROCESSING.mean],
    alphaBackground: [...CAFFE_PREPROCESSING.alphaBackground],
    size: c.image.size,
    resizeShorter: c.image.resizeShorter,
  };
}

export function specOf(c: TrainConfig, labels: RunLabels): NetworkSpec {
  const h = headsOptions(c);
  return {
    trunk: { depth: TRUNK_DEPTH[c.trunk] },
    imageSize: c.image.size,
    seed: c.seed,
    heads: {
      lesion: labels.lesion.length,
      location: labels.location.length,
      shared: h.shared,
      featureDropout: h.featureDropout,
      ...(c.fusion.enabled ? { fusion: true } : {}),
    },
  };
}

/** A fusion model's site feeds for training update (epoch, step), or for validation ('given'); undefined otherwise. */
export function siteRevealOf(
  ctx: Pick<TrainContext, 'config'>,
  at: { epoch: number; step: number } | 'given',
): SiteReveal | undefined {
  const c = ctx.config;
  if (!c.fusion.enabled) return undefined;
  return at === 'given' ? 'given' : { dropout: c.fusion.siteDropout, seed: c.seed, ...at };
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
  return Object.fromEntries(
    g.params({ trainable: true }).map((p) => {
      const lrMult = !p.name.startsWith(HEAD_PREFIX) ? m.trunk : p.name.endsWith('/bias') ? m.headBias : m.headWeight;
      const scale =
        folded && p.name.endsWith('/weight') ? folded.convs.get(p.name.slice(0, -'/weight'.length))?.scale : undefined;
      return [p.name, scale ? { lrMult, channelScale: Float32Array.from(scale, (s) => s * s) } : { lrMult }];
    }),
  );
}

export function lossWeightsOf(losses: readonly Loss[]): Record<string, number> {
  return Object.fromEntries(losses.map((l) => [l.tensor.name, l.weight ?? 1]));
}

export function runFileOf(ctx: Pick<TrainContext, 'runDir'>, name: keyof typeof RUN_FILES): string {
  return runFile(ctx.runDir, name);
}

/** The epoch loop of either mode: what the run context fixes (checkpoints, history, signal, callbacks) is filled in here. */
export function runTaskEpochs(
  ctx: TrainContext,
  o: Pick<EpochLoopOptions, 'trainer' | 'epochs' | 'stepsPerEpoch' | 'batch' | 'validate'> & {
    losses: readonly Loss[];
  },
): Promise<EpochLoopResult> {
  const c = ctx.config;
  const metric = selectionMetric(c);
  const select =
    o.validate && c.selection.epoch === 'best'
      ? { score: (v: ValidationResult) => selectionScore(metric, v), file: join(ctx.runDir, SELECTED_FILE) }
      : undefined;
  return runEpochs({
    trainer: o.trainer,
    epochs: o.epochs,
    stepsPerEpoch: o.stepsPerEpoch,
    lossWeights: lossWeightsOf(o.losses),
    batch: o.batch,
    validate: o.validate,
    select,
    checkpointRoot: runFileOf(ctx, 'checkpoints'),
    checkpointEveryEpochs: c.checkpoint.everyEpochs,
    keep: c.checkpoint.keep,
    historyFile: runFileOf(ctx, 'history'),
    signal: ctx.signal,
    onStep: ctx.onStep,
    onEpoch: ctx.onEpoch,
  });
}

/** The params of the epoch chosen on the validation part (selection.epoch 'best'), rewritten when a later epoch beats it. */
export const SELECTED_FILE = 'selected.bin';

/** The image lists of a run (relative to manifestDir). */
export const SPLIT_FILE = 'split.json';

/**
 * A fusion model's site layer U [P, Q] at the start of training (config fusion.init): 'cooccurrence' writes the
 * training part's site log-odds into the graph's param (siteLogOdds), so the layer starts from Figure 1's prior and
 * training refines it; 'zero' leaves the zero init. Call before Trainer.create (which copies the initial values).
 */
export function initSiteLayer(ctx: Pick<TrainContext, 'config' | 'train' | 'labels'>, g: Graph): void {
  if (!ctx.config.fusion.enabled || ctx.config.fusion.init !== 'cooccurrence') return;
  const p = g.params({ trainable: true }).find((x) => x.name === SITE_WEIGHT);
  if (p) p.data.set(siteLogOdds(ctx.train, ctx.labels));
}

/**
 * U[i, j] = logit P(label i | site j) - logit P(label i) over the training images (data/statistics.ts
 * siteLabelRates: the site rates shrunk towards the label's): the log-odds shift a known site j gives label i, the
 * naive-Bayes correction of a site-blind score.
 */
export function siteLogOdds(samples: readonly Sample[], labels: RunLabels): Float32Array {
  const { prior, rate } = siteLabelRates(samples, labels.lesion, labels.location);
  const Q = labels.location.length;
  const logit = (x: number) => Math.log(x / (1 - x));
  return Float32Array.from(rate, (r, k) => logit(r) - logit(prior[Math.floor(k / Q)]));
}
