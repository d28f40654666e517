// The task heads on the pooled trunk features (Liao & Luo): a multi-label lesion head (P sigmoid outputs) and a
// single-label body-location head (Q softmax outputs), either or both (MTL), optionally over one shared hidden
// layer. Fresh layers, seeded init and their losses (eq. 5 and eq. 7); the learning-rate multipliers are the
// training config's (train/trainTask.ts multipliersOf).
import type { Graph, Loss, Tensor } from '../graph/index.ts';
import { DermtlError } from '../util/errors.ts';
import { Rng } from '../util/rng.ts';
import { SITE_TENSORS, siteTerm } from './fusion.ts';
import { heNormal, paramValue } from './resnet.ts';

/** Names of the head tensors in every graph (inference exports have lesion_probs / location_probs as outputs). */
export const HEAD_TENSORS = {
  lesionLogits: 'lesion_logits',
  lesionProbs: 'lesion_probs',
  locationLogits: 'location_logits',
  locationProbs: 'location_probs',
  lesionTargets: 'lesion_targets',
  lesionWeights: 'lesion_weights',
  locationTargets: 'location_targets',
  locationWeights: 'location_weights',
  lesionLoss: 'lesion_loss',
  locationLoss: 'location_loss',
  /** Fusion models only: the known site as a one-hot [N, Q] and whether it is known [N, 1] (fusion.ts). */
  ...SITE_TENSORS,
} as const;

/** Every head param name starts with this; the trunk's never do. */
export const HEAD_PREFIX = 'heads/';

/** The scope of member k of a head ensemble (members.ts). */
export const memberScope = (k: number): string => `m${k}`;

export interface HeadsConfig {
  /** P: lesion labels (multi-label, sigmoid); 0 = no lesion head. */
  lesion: number;
  /** Q: body locations (single-label, softmax); 0 = no location head. */
  location: number;
  /** A hidden layer FC(d -> hidden) + ReLU + dropout shared by both heads (e.g. for a frozen trunk); default none. */
  shared?: { hidden: number; dropout: number } | null;
  /** Dropout on the pooled features before the heads (default 0). */
  featureDropout?: number;
  /** Late fusion: the lesion head also receives the body location, given or predicted (fusion.ts); default off. */
  fusion?: boolean;
}

export interface HeadsOptions extends HeadsConfig {
  seed: number;
  /** Training: dropout active. Inference: dropout is an Identity. */
  training: boolean;
  /** Head params as graph inputs (trainable) or baked-in initializers (frozen); default true. */
  trainable?: boolean;
  values?: ReadonlyMap<string, Float32Array>;
  requireValues?: boolean;
  /**
   * Training only: each active dropout multiplies by a mask fed as the graph input `<layer>_mask` (same shape,
   * values 0 or 1/(1-ratio)) instead of ORT's Dropout, whose generator is seeded once per session. The caller
   * then draws the masks from its own seeded Rng per update, so a resumed run replays them exactly.
   */
  dropoutMasks?: boolean;
  /**
   * One member of a head ensemble (members.ts): its params are `heads/<scope>/<layer>/...`, its tensors end in
   * `_<scope>`, and its init and dropout streams are its own. Absent: the plain heads.
   */
  scope?: string;
}

/** A dropout mask input (see HeadsOptions.dropoutMasks). */
export interface DropoutMaskInput {
  input: string;
  ratio: number;
  shape: number[];
}

export interface Heads {
  lesionLogits?: Tensor;
  /** sigmoid(lesion logits) [N, P], 'lesion_probs'. */
  lesionProbs?: Tensor;
  locationLogits?: Tensor;
  /** softmax(location logits) [N, Q], 'location_probs'. */
  locationProbs?: Tensor;
  /** Head param names in declaration order. */
  params: string[];
  /** Mask inputs to feed (training with dropoutMasks and dropout > 0), in declaration order; else []. */
  dropoutMasks: DropoutMaskInput[];
  /** A head ensemble's members (members.ts); the logits and probs above are then the ensemble's. */
  members?: Heads[];
}

export function checkHeadsConfig(c: HeadsConfig): void {
  const count = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 0) throw new DermtlError(`${what} must be a whole number >= 0, got ${v}`);
  };
  count(c.lesion, 'number of lesion labels');
  count(c.location, 'number of body locations');
  if (c.lesion === 0 && c.location === 0)
    throw new DermtlError('the network needs a lesion head, a location head or both; both have 0 classes');
  if (c.location === 1)
    throw new DermtlError('a location head needs at least 2 body locations (softmax over 1 class is constant)');
  for (const [what, p] of [
    ['feature dropout', c.featureDropout ?? 0],
    ['shared-layer dropout', c.shared?.dropout ?? 0],
  ] as const) {
    if (!(p >= 0 && p < 1)) throw new DermtlError(`${what} must be in [0, 1), got ${p}`);
  }
  if (c.fusion && (c.lesion === 0 || c.location === 0))
    throw new DermtlError('a fusion model needs both heads (task mtl): its lesion head takes the body location');
  if (c.shared && (!Number.isInteger(c.shared.hidden) || c.shared.hidden < 1)) {
    throw new DermtlError(`shared hidden layer size must be a whole number >= 1, got ${c.shared.hidden}`);
  }
}

/** Adds the heads on `features` [N, d]. */
export function buildHeads(g: Graph, features: Tensor, opts: HeadsOptions): Heads {
  checkHeadsConfig(opts);
  if (features.shape.length !== 2) throw new Error(`heads need features [N, d], got [${features.shape}]`);
  const params: string[] = [];
  const trainable = opts.trainable ?? true;
  const scoped = (layer: string) => (opts.scope ? `${opts.scope}/${layer}` : layer);
  const named = (name: string) => (opts.scope ? `${name}_${opts.scope}` : name);
  const linear = (
    x: Tensor,
    plain: string,
    out: number,
    init: (rng: Rng, shape: number[]) => Float32Array,
    tensor: string,
  ) => {
    const layer = scoped(plain);
    const name = named(tensor);
    const shape = [out, x.shape[1]];
    const wName = `${HEAD_PREFIX}${layer}/weight`;
    const bName = `${HEAD_PREFIX}${layer}/bias`;
    params.push(wName, bName);
    const w = g.param(
      wName,
      shape,
      paramValue(wName, shape, opts, () => init(Rng.derive(opts.seed, 'heads', layer), shape)),
      { trainable },
    );
    const b = g.param(
      bName,
      [out],
      paramValue(bName, [out], opts, () => new Float32Array(out)),
      { trainable },
    );
    return g.gemm(x, w, b, { transB: true, name });
  };
  const dropoutMasks: DropoutMaskInput[] = [];
  const dropout = (x: Tensor, ratio: number, plainKey: string, tensor: string) => {
    if (!(ratio > 0)) return x;
    const key = scoped(plainKey);
    const name = named(tensor);
    if (opts.training && opts.dropoutMasks) {
      const mask = g.input(`${name}_mask`, x.shape);
      dropoutMasks.push({ input: mask.name, ratio, shape: [...x.shape] });
      return g.mul(x, mask, { name });
    }
    return g.dropout(x, ratio, dropoutSeed(opts.seed, key), { training: opts.training, name });
  };

  let h = dropout(features, opts.featureDropout ?? 0, 'features', 'features_dropout');
  if (opts.shared) {
    h = g.relu(linear(h, 'shared', opts.shared.hidden, heNormal, 'shared_fc'), { name: named('shared_relu') });
    h = dropout(h, opts.shared.dropout, 'shared', 'shared_dropout');
  }
  const heads: Heads = { params, dropoutMasks };
  const T = HEAD_TENSORS;
  // a plain fusion model adds the site term to these logits; an ensemble member's are fused by buildMemberHeads
  const fuse = opts.fusion && !opts.scope;
  if (opts.lesion > 0)
    heads.lesionLogits = linear(h, 'lesion', opts.lesion, glorotUniform, fuse ? LESION_BASE_LOGITS : T.lesionLogits);
  if (opts.location > 0) {
    heads.locationLogits = linear(h, 'location', opts.location, glorotUniform, T.locationLogits);
    heads.locationProbs = g.softmax(heads.locationLogits, 1, { name: named(T.locationProbs) });
  }
  if (fuse) fuseSite(g, heads, opts);
  if (heads.lesionLogits) heads.lesionProbs = g.sigmoid(heads.lesionLogits, { name: named(T.lesionProbs) });
  return heads;
}

/** The lesion logits of a fusion model before the site term. */
export const LESION_BASE_LOGITS = 'lesion_base_logits';

/**
 * Adds the site term (fusion.ts) to the lesion logits of `heads`, and of each member of an ensemble (the same term:
 * the ensemble's predicted location, so the mean of the members' fused logits is the fused mean).
 */
export function fuseSite(
  g: Graph,
  heads: Heads,
  opts: Pick<HeadsOptions, 'lesion' | 'trainable' | 'values' | 'requireValues'>,
): void {
  const { term, param } = siteTerm(g, heads.locationProbs!, opts.lesion, {
    trainable: opts.trainable ?? true,
    values: opts.values,
    requireValues: opts.requireValues,
  });
  heads.params.push(param);
  for (const m of heads.members ?? []) m.lesionLogits = g.add(m.lesionLogits!, term);
  heads.lesionLogits = g.add(heads.lesionLogits!, term, { name: HEAD_TENSORS.lesionLogits });
}

export interface HeadLosses {
  /** For buildTrainingGraph: each loss with its task weight. */
  losses: Loss[];
  lesionLoss?: Tensor;
  locationLoss?: Tensor;
}

/**
 * Adds the label inputs and the losses of the heads present:
 * - lesion (eq. 5): inputs `lesion_targets` float32 [N, P] (0/1) and `lesion_weights` float32 [N] (0 masks a
 *   sample without lesion labels), sigmoid cross-entropy summed over labels, averaged over N;
 * - location (eq. 7): inputs `location_targets` int64 [N] (class index; any out-of-range value such as -1
 *   contributes 0) and `location_weights` float32 [N], softmax cross-entropy averaged over N.
 * Task weights multiply each loss in the differentiated total (default 1 each).
 */
export function addHeadLosses(
  g: Graph,
  heads: Heads,
  taskWeights: { lesion?: number; location?: number } = {},
  weighting: TaskWeighting = 'fixed',
): HeadLosses {
  const T = HEAD_TENSORS;
  const out: HeadLosses = { losses: [] };
  // An ensemble trains each member on its own loss: the task loss is their sum, so member k's gradient is its own.
  const sources = heads.members ?? [heads];
  const scope = (k: number) => (heads.members ? `_${memberScope(k)}` : '');
  const total = (terms: Tensor[], name: string) =>
    terms.length === 1 ? terms[0] : terms.reduce((a, b, k) => g.add(a, b, k === terms.length - 1 ? { name } : {}));
  if (heads.lesionLogits) {
    const [n, p] = heads.lesionLogits.shape;
    const t = g.input(T.lesionTargets, [n, p]);
    const w = g.input(T.lesionWeights, [n]);
    out.lesionLoss = total(
      sources.map((m, k) => g.sigmoidCrossEntropy(m.lesionLogits!, t, w, { name: `${T.lesionLoss}${scope(k)}` })),
      T.lesionLoss,
    );
    out.losses.push({ tensor: out.lesionLoss, weight: taskWeights.lesion ?? 1 });
  }
  if (heads.locationLogits) {
    const n = heads.locationLogits.shape[0];
    const t = g.input(T.locationTargets, [n], 'int64');
    const w = g.input(T.locationWeights, [n]);
    out.locationLoss = total(
      sources.map((m, k) => g.softmaxCrossEntropy(m.locationLogits!, t, w, { name: `${T.locationLoss}${scope(k)}` })),
      T.locationLoss,
    );
    out.losses.push({ tensor: out.locationLoss, weight: taskWeights.location ?? 1 });
  }
  if (weighting === 'uncertainty' && out.lesionLoss && out.locationLoss)
    return uncertaintyWeighted(g, out, sources.length);
  return out;
}

/** 'fixed': the task weights as given; 'uncertainty': learned per-task weights (uncertaintyWeighted). */
export type TaskWeighting = 'fixed' | 'uncertainty';

/** The learned log-variance s_t of each task (uncertainty weighting), a head param of shape [1]. */
export const LOG_VARIANCE = {
  lesion: `${HEAD_PREFIX}task_weighting/lesion_log_variance`,
  location: `${HEAD_PREFIX}task_weighting/location_log_variance`,
} as const;

/**
 * Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018): the objective is sum_t exp(-s_t) L_t + s_t with one
 * learned s_t per task, trained with the rest (s_t = 0 at the start: both weights 1). At the optimum of s_t,
 * exp(-s_t) = 1 / L_t: each task is weighted by its inverse loss, so neither loss's scale (22 summed lesion terms
 * against one softmax term) dominates by construction. The task losses stay outputs (weight 0) for the history.
 * A head ensemble of K members (whose task losses are the sums of the members' own) shares s_t: its objective is the
 * sum of the members' own objectives, sum_k exp(-s_t) L_tk + s_t = exp(-s_t) L_t + K s_t, so the optimum is
 * exp(-s_t) = 1 / (a member's mean loss), as for a single head, and each member's gradient is its own.
 */
function uncertaintyWeighted(g: Graph, out: HeadLosses, members: number): HeadLosses {
  const term = (loss: Tensor, name: string) => {
    const s = g.param(name, [1], new Float32Array(1), { trainable: true });
    return g.add(g.mul(g.exp(g.mul(s, g.scalar(-1))), loss), members === 1 ? s : g.mul(s, g.scalar(members)));
  };
  const total = g.add(term(out.lesionLoss!, LOG_VARIANCE.lesion), term(out.locationLoss!, LOG_VARIANCE.location), {
    name: 'weighted_loss',
  });
  return { ...out, losses: [...out.losses.map((l) => ({ ...l, weight: 0 })), { tensor: total, weight: 1 }] };
}

/** The task weights exp(-s_t) that uncertainty weighting learned, from a run's params; null without them. */
export function learnedTaskWeights(params: ReadonlyMap<string, Float32Array>): LearnedTaskWeights | null {
  const lesion = params.get(LOG_VARIANCE.lesion)?.[0];
  const location = params.get(LOG_VARIANCE.location)?.[0];
  if (lesion === undefined || location === undefined) return null;
  return { lesion: Math.exp(-lesion), location: Math.exp(-location), logVariance: { lesion, location } };
}

/** `params` without the task-weighting log-variances: they shape training only, never a saved model. */
export function withoutTaskWeighting(params: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map(params);
  for (const name of Object.values(LOG_VARIANCE)) out.delete(name);
  return out;
}

export interface LearnedTaskWeights {
  lesion: number;
  location: number;
  logVariance: { lesion: number; location: number };
}

/** Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), for the linear layers before sigmoid/softmax. */
export function glorotUniform(rng: Rng, shape: readonly number[]): Float32Array {
  const [fanOut, fanIn] = shape;
  const a = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(fanOut * fanIn);
  for (let i = 0; i < out.length; i++) out[i] = rng.uniform(-a, a);
  return out;
}

/** A positive 31-bit seed for ORT's Dropout generator, derived from the network seed and the layer. */
function dropoutSeed(seed: number, key: string): number {
  return Math.abs(Rng.derive(seed, 'dropout', key).int(1, 0x7fffffff));
}
