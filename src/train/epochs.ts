// The epoch layer over runTraining (loop.ts), shared by frozen and finetune training: per-epoch mean losses,
// validation (losses + the paper's metrics, feeding the plateau scheduler), history.json, and a checkpoint
// progress record that carries the history and the running epoch sums, so a resumed run writes the same
// history as an uninterrupted one.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sample } from '../data/types.ts';
import { Graph, GraphSession, type Feed } from '../graph/index.ts';
import { HEAD_TENSORS } from '../models/heads.ts';
import { evaluate } from '../metrics/metrics.ts';
import type { ScoreTable } from '../metrics/scores.ts';
import { DermtlError } from '../util/errors.ts';
import { findCheckpoint } from './checkpoint.ts';
import { runTraining } from './loop.ts';
import { writeJson, type EpochRecord, type RunLabels } from './run.ts';
import { encodeTensors, readTensorFile } from './tensorFile.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import type { Feeds, StepResult, Trainer } from './step.ts';
import type { SelectionMetric } from './config.ts';

/** A training batch: its feeds and how many real (not padding) samples it holds. */
export interface TrainBatch {
  feeds: Feeds;
  rows: number;
}

export interface ValidationResult {
  /** Mean losses over the validation images, by loss name, plus `total` (task-weighted sum). */
  losses: Record<string, number>;
  metrics: { mapClass: number | null; mapImage: number | null; top1: number | null; top3: number | null };
}

export interface EpochLoopOptions {
  trainer: Trainer;
  epochs: number;
  stepsPerEpoch: number;
  /** Task weight of each loss name (the objective's total). */
  lossWeights: Record<string, number>;
  /** Batch of update `index` (0-based): must depend on index and fixed seeds only. */
  batch: (index: number) => Promise<TrainBatch>;
  /** Validation after every epoch (absent: no validation, no plateau). */
  validate?: () => Promise<ValidationResult>;
  /**
   * Model selection on the validation part: after every validation whose score beats the best so far, the params
   * are written to this file (so a resumed run keeps them), and the result carries the best epoch's params.
   */
  select?: { score: (v: ValidationResult) => number; file: string };
  checkpointRoot: string;
  checkpointEveryEpochs: number;
  keep: number;
  /** history.json to rewrite after every epoch. */
  historyFile: string;
  signal?: AbortSignal;
  onStep?: (r: StepResult) => void;
  onEpoch?: (e: EpochRecord) => void;
}

interface Progress {
  history: EpochRecord[];
  /** The best validated epoch so far (model selection), with its score. */
  best?: { epoch: number; score: number } | null;
  /** Sums over the current epoch so far: loss x real samples, and the real samples. */
  acc: { sums: Record<string, number>; images: number };
}

export interface EpochLoopResult {
  history: EpochRecord[];
  stopped: boolean;
  step: number;
  resumedFrom?: number;
  /** With `select`: the chosen epoch and its score (null: no epoch was validated, the last one is kept). */
  selected: { epoch: number; score: number } | null;
  /** The params to save: the selected epoch's, else the trainer's own (the last update's). */
  params: ReadonlyMap<string, Float32Array>;
}

export async function runEpochs(o: EpochLoopOptions): Promise<EpochLoopResult> {
  const prior = await checkpointProgress(o.checkpointRoot);
  const state: Progress = prior ?? { history: [], acc: { sums: {}, images: 0 } };
  let rows = 0;
  let lr = o.trainer.optimizer.learningRate;
  let validation: ValidationResult | null = null;
  const spe = o.stepsPerEpoch;
  let writes: Promise<void> = Promise.resolve();
  let writeError: Error | undefined;

  const closeEpoch = (step: number, lrReduced: boolean) => {
    const mean = Object.fromEntries(Object.entries(state.acc.sums).map(([k, v]) => [k, v / state.acc.images]));
    const record: EpochRecord = {
      epoch: step / spe,
      step,
      lr,
      train: withTotal(mean, o.lossWeights),
      validation: validation ? { ...validation.losses, ...validation.metrics } : null,
      lrReduced,
    };
    state.history.push(record);
    state.acc = { sums: {}, images: 0 };
    validation = null;
    // Rewritten after every epoch (in order), so a long run can be watched.
    const snapshot = [...state.history];
    writes = writes.then(() => writeJson(o.historyFile, snapshot)).catch((e: Error) => void (writeError ??= e));
    o.onEpoch?.(record);
  };

  const result = await runTraining(o.trainer, {
    steps: o.epochs * spe,
    batch: async (index) => {
      const b = await o.batch(index);
      rows = b.rows;
      return b.feeds;
    },
    checkpoint: { root: o.checkpointRoot, every: o.checkpointEveryEpochs * spe, keep: o.keep },
    validate: o.validate
      ? {
          every: spe,
          loss: async () => {
            validation = await o.validate!();
            if (o.select) await selectEpoch(o.select, state, validation, o.trainer, state.history.length + 1);
            return validation.losses.total;
          },
        }
      : undefined,
    progress: () => state,
    onStep: (r) => {
      lr = r.lr;
      for (const [k, v] of Object.entries(r.losses)) state.acc.sums[k] = (state.acc.sums[k] ?? 0) + v * rows;
      state.acc.images += rows;
      o.onStep?.(r);
      if (!o.validate && r.step % spe === 0) closeEpoch(r.step, false);
    },
    onValidate: (step, _loss, reduced) => closeEpoch(step, reduced),
    signal: o.signal,
  });
  await writes;
  if (writeError) throw writeError;
  await writeJson(o.historyFile, state.history);
  const best = o.select && !result.stopped ? (state.best ?? null) : null;
  const params = best ? await readSelected(o.select!.file, best.epoch) : o.trainer.params;
  return {
    history: state.history,
    stopped: result.stopped,
    step: result.step,
    resumedFrom: result.resumedFrom,
    selected: best,
    params,
  };
}

/** Keeps the params of a validated epoch whose score beats the best so far (ties keep the earlier epoch). */
async function selectEpoch(
  select: NonNullable<EpochLoopOptions['select']>,
  state: Progress,
  v: ValidationResult,
  trainer: Trainer,
  epoch: number,
): Promise<void> {
  const score = select.score(v);
  if (!Number.isFinite(score) || (state.best && score <= state.best.score)) return;
  const tensors = [...trainer.params].map(([name, data]) => ({ name, shape: [data.length], data }));
  await writeFileAtomic(select.file, encodeTensors(tensors, { epoch, score }));
  state.best = { epoch, score };
}

async function readSelected(file: string, epoch: number): Promise<Map<string, Float32Array>> {
  const { tensors, meta } = await readTensorFile(file);
  const m = meta as { epoch?: number } | null;
  if (m?.epoch !== epoch)
    throw new DermtlError(
      `${file} holds epoch ${m?.epoch} but the run's progress says the best epoch is ${epoch}; delete the run folder and train again`,
    );
  return new Map(tensors.map((t) => [t.name, t.data]));
}

/** The selection score of a task's validation result (higher is better): what `selection.metric` names. */
export function selectionScore(metric: SelectionMetric, v: ValidationResult): number {
  const m = v.metrics;
  const loss = -v.losses.total;
  if (metric === 'loss') return loss;
  if (metric === 'mapClass') return m.mapClass ?? Number.NaN;
  if (metric === 'top1') return m.top1 ?? Number.NaN;
  return m.mapClass !== null && m.top1 !== null ? (m.mapClass + m.top1) / 2 : (m.mapClass ?? m.top1 ?? Number.NaN);
}

function withTotal(losses: Record<string, number>, weights: Record<string, number>): Record<string, number> {
  let total = 0;
  for (const [k, v] of Object.entries(losses)) total += (weights[k] ?? 1) * v;
  return { ...losses, total };
}

/** The progress record of the checkpoint runTraining will resume from (undefined: a fresh run). */
async function checkpointProgress(root: string): Promise<Progress | undefined> {
  const dir = await findCheckpoint(root);
  if (!dir) return undefined;
  const file = join(dir, 'checkpoint.json');
  const p = (JSON.parse(await readFile(file, 'utf8')) as { progress?: Progress }).progress;
  if (!p || !Array.isArray(p.history) || typeof p.acc?.images !== 'number')
    throw new DermtlError(`${file}: no training progress record; it was not written by dermtl train`);
  return p;
}

// ---------------------------------------------------------------- validation

/**
 * A session on a copy of the training forward graph that returns the losses and the probabilities (dropout
 * masks are fed as ones): the validation pass of either mode.
 */
export async function openEvalSession(
  forward: Graph,
  lossNames: readonly string[],
  threads?: number,
): Promise<GraphSession> {
  const g = forward.clone();
  for (const name of lossNames) if (!g.outputs.some((o) => o.name === name)) g.output(g.tensor(name));
  const params = new Set(g.params({ trainable: true }).map((p) => p.name));
  return GraphSession.fromGraph(g, { threads, checkFinite: g.inputs.map((i) => i.name).filter((n) => !params.has(n)) });
}

/** Accumulates validation batches: losses weighted by real samples, probabilities of the real rows. */
export class ValidationAccumulator {
  private readonly sums: Record<string, number> = {};
  private images = 0;
  private readonly lesion: Float64Array[] = [];
  private readonly location: Float64Array[] = [];

  constructor(
    readonly labels: RunLabels,
    readonly lossNames: readonly string[],
    readonly weights: Record<string, number>,
  ) {}

  /** One batch: the session outputs of a batch whose first `rows` slots are real. */
  add(out: Record<string, { data: ArrayLike<number | bigint> }>, rows: number): void {
    for (const name of this.lossNames) this.sums[name] = (this.sums[name] ?? 0) + Number(out[name].data[0]) * rows;
    this.images += rows;
    const take = (name: string, k: number, into: Float64Array[]) => {
      const d = out[name].data as Float32Array;
      for (let b = 0; b < rows; b++) into.push(Float64Array.from(d.subarray(b * k, (b + 1) * k)));
    };
    if (this.labels.lesion.length) take(HEAD_TENSORS.lesionProbs, this.labels.lesion.length, this.lesion);
    if (this.labels.location.length) take(HEAD_TENSORS.locationProbs, this.labels.location.length, this.location);
  }

  /** Mean losses and the metrics of the validation images (in the order they were added). */
  result(samples: readonly Sample[]): ValidationResult {
    const mean = Object.fromEntries(this.lossNames.map((n) => [n, this.sums[n] / this.images]));
    const table: ScoreTable = {
      images: samples.map((s) => s.image),
      lesionLabels: this.labels.lesion,
      locationLabels: this.labels.location,
      lesion: this.labels.lesion.length ? this.lesion : samples.map(() => new Float64Array(0)),
      location: this.labels.location.length ? this.location : samples.map(() => new Float64Array(0)),
    };
    const ev = evaluate(samples, table);
    return {
      losses: withTotal(mean, this.weights),
      metrics: {
        mapClass: ev.lesion?.mapClass ?? null,
        mapImage: ev.lesion?.mapImage ?? null,
        top1: ev.location?.top1 ?? null,
        top3: ev.location?.top3 ?? null,
      },
    };
  }
}

/** Params of the trainer as feeds (the eval session takes them as inputs, like the training graph). */
export function paramFeeds(trainer: Trainer): Record<string, Feed> {
  return Object.fromEntries(trainer.params);
}
