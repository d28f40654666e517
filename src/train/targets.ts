// From manifest samples to what the training graph is fed: the run's label lists, the validation split, per-sample
// targets, and batches with a static size (the last partial batch padded honestly) plus seeded dropout masks.
import type { Feed } from '../graph/index.ts';
import type { Sample } from '../data/types.ts';
import { siteFeeds } from '../models/fusion.ts';
import { HEAD_TENSORS } from '../models/heads.ts';
import { DermtlError } from '../util/errors.ts';
import { Rng } from '../util/rng.ts';
import type { Task } from './config.ts';
import type { RunLabels } from './run.ts';

/**
 * The label lists of a run, from the TRAINING manifest (all its images, so every fold of a study has the same
 * columns), sorted; a head the task does not have gets []. A lesion label that no training image carries still
 * gets an output (trained towards "absent"): evaluation then skips it if the test part has no positive either.
 */
export function labelsFor(task: Task, samples: readonly Sample[]): RunLabels {
  const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
  return {
    lesion: task === 'location' ? [] : sorted(samples.flatMap((s) => s.lesions)),
    location: task === 'lesion' ? [] : sorted(samples.map((s) => s.location)),
  };
}

/** A task whose head cannot learn anything from the training part is a user error (named with `where`). */
export function checkTrainable(task: Task, labels: RunLabels, train: readonly Sample[], where: string): void {
  if (train.length === 0) throw new DermtlError(`${where}: the training part has no images`);
  if (task !== 'location') {
    if (labels.lesion.length === 0)
      throw new DermtlError(`${where}: task ${task} needs lesion labels, but no image of the manifest has one`);
    if (!train.some((s) => s.lesions.length > 0))
      throw new DermtlError(`${where}: task ${task} needs lesion labels, but no training image has one`);
  }
  if (task !== 'lesion') {
    if (labels.location.length < 2)
      throw new DermtlError(
        `${where}: task ${task} needs at least 2 body locations, the manifest has ${labels.location.length} (${labels.location.join(', ')})`,
      );
    const seen = new Set(train.map((s) => s.location));
    if (seen.size < 2)
      throw new DermtlError(
        `${where}: task ${task} needs at least 2 body locations among the training images, they all show "${[...seen][0]}"`,
      );
  }
}

/**
 * The held-out validation part: round(fraction x groups) whole GROUPS of the training part (at least one when
 * fraction > 0, and at least one group left to train on), drawn with Rng.derive(seed, 'validation').
 */
export function validationSplit(
  train: readonly Sample[],
  fraction: number,
  seed: number,
): { train: Sample[]; validation: Sample[] } {
  if (fraction <= 0) return { train: [...train], validation: [] };
  const groups = [...new Set(train.map((s) => s.group))].sort();
  if (groups.length < 2)
    throw new DermtlError(
      `a validation part of ${fraction} needs at least 2 groups in the training part, it has ${groups.length}; set validation.fraction to 0`,
    );
  const k = Math.min(groups.length - 1, Math.max(1, Math.round(fraction * groups.length)));
  const held = new Set(Rng.derive(seed, 'validation').shuffle(groups).slice(0, k));
  return { train: train.filter((s) => !held.has(s.group)), validation: train.filter((s) => held.has(s.group)) };
}

/** Per-sample targets in label order. */
export interface Targets {
  n: number;
  /** [n, P] 0/1. */
  lesion: Float32Array;
  /** Whether a sample has any lesion label: without one its lesion loss is masked (unknown, not "all absent"). */
  lesionKnown: Uint8Array;
  /** Class index per sample. */
  location: Int32Array;
}

export function encodeTargets(samples: readonly Sample[], labels: RunLabels): Targets {
  const P = labels.lesion.length;
  const lesionIndex = new Map(labels.lesion.map((l, i) => [l, i]));
  const locationIndex = new Map(labels.location.map((l, i) => [l, i]));
  const t: Targets = {
    n: samples.length,
    lesion: new Float32Array(samples.length * P),
    lesionKnown: new Uint8Array(samples.length),
    location: new Int32Array(samples.length),
  };
  samples.forEach((s, i) => {
    for (const l of s.lesions) {
      const c = lesionIndex.get(l);
      if (c !== undefined) t.lesion[i * P + c] = 1;
    }
    t.lesionKnown[i] = s.lesions.some((l) => lesionIndex.has(l)) ? 1 : 0;
    t.location[i] = locationIndex.get(s.location) ?? -1;
  });
  return t;
}

/**
 * Label feeds of one batch of `batch` slots: the samples `rows` (r of them) first, then padding slots with weight 0
 * (location -1). The graph's losses are sums over the batch divided by its static size B, so the real weights are
 * scaled by B / r: a partial batch then contributes exactly the mean loss (and gradient) over its r samples, like
 * a full one. Padding rows are independent samples (no BatchNorm), so they change nothing else.
 */
export function labelFeeds(
  t: Targets,
  labels: RunLabels,
  rows: readonly number[],
  batch: number,
  site?: SiteReveal,
): Record<string, Feed> {
  const r = rows.length;
  if (r < 1 || r > batch) throw new Error(`labelFeeds: ${r} rows for a batch of ${batch}`);
  const scale = batch / r;
  const feeds: Record<string, Feed> = {};
  const T = HEAD_TENSORS;
  if (labels.lesion.length) {
    const P = labels.lesion.length;
    const targets = new Float32Array(batch * P);
    const weights = new Float32Array(batch);
    rows.forEach((s, b) => {
      targets.set(t.lesion.subarray(s * P, (s + 1) * P), b * P);
      weights[b] = t.lesionKnown[s] ? scale : 0;
    });
    feeds[T.lesionTargets] = targets;
    feeds[T.lesionWeights] = weights;
  }
  if (labels.location.length) {
    const targets = new BigInt64Array(batch).fill(-1n);
    const weights = new Float32Array(batch);
    rows.forEach((s, b) => {
      targets[b] = BigInt(t.location[s]);
      weights[b] = t.location[s] >= 0 ? scale : 0;
    });
    feeds[T.locationTargets] = targets;
    feeds[T.locationWeights] = weights;
  }
  if (site) Object.assign(feeds, siteBatchFeeds(t, labels, rows, batch, site));
  return feeds;
}

/**
 * Which known sites a fusion model is shown: in training each with probability 1 - dropout, drawn from
 * Rng.derive(seed, 'site', epoch, step) (a function of the position, so a resume replays it); 'given': every known
 * site (validation, and the study's "site given" scores); 'unknown': none.
 */
export type SiteReveal = { dropout: number; seed: number; epoch: number; step: number } | 'given' | 'unknown';

export function siteBatchFeeds(
  t: Targets,
  labels: RunLabels,
  rows: readonly number[],
  batch: number,
  how: SiteReveal,
): Record<string, Feed> {
  const rng = typeof how === 'object' ? Rng.derive(how.seed, 'site', how.epoch, how.step) : null;
  const reveal = rows.map(() => (typeof how === 'object' ? rng!.float() >= how.dropout : how === 'given'));
  return siteFeeds(
    rows.map((s) => t.location[s]),
    reveal,
    batch,
    labels.location.length,
  );
}

/** A dropout mask input of the training graph: values 0 or 1 / (1 - ratio). */
export interface MaskInput {
  input: string;
  ratio: number;
  shape: readonly number[];
}

/**
 * The dropout masks of update `step` in `epoch`, drawn from Rng.derive(seed, 'dropout', epoch, step): a function of
 * the position in the run alone, so a resumed run replays exactly the masks the interrupted one would have used
 * (ORT's own Dropout seeds its generator once per session, which a resume cannot replay).
 */
export function dropoutMasks(
  masks: readonly MaskInput[],
  seed: number,
  epoch: number,
  step: number,
): Record<string, Feed> {
  const rng = Rng.derive(seed, 'dropout', epoch, step);
  const feeds: Record<string, Feed> = {};
  for (const m of masks) {
    const keep = 1 / (1 - m.ratio);
    const n = m.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.float() < m.ratio ? 0 : keep;
    feeds[m.input] = data;
  }
  return feeds;
}

/** Masks of all ones: the training graph evaluated without dropout (validation). */
export function noDropout(masks: readonly MaskInput[]): Record<string, Feed> {
  return Object.fromEntries(masks.map((m) => [m.input, new Float32Array(m.shape.reduce((a, b) => a * b, 1)).fill(1)]));
}

/** Steps (updates) per epoch: every training image once, the last batch possibly partial. */
export function stepsPerEpoch(images: number, batch: number): number {
  return Math.ceil(images / batch);
}
