// Partial fine-tuning (finetune.trainable 'stage5' | 'stage4' | 'stage3'): the trunk below stage K stays at its
// ImageNet weights, so the activation entering stage K is a fixed function of the image and view. It is computed
// once per image and view (activations.ts, on disk in float16) and an update runs stages K..5 + heads only:
// input 'activations' [B, C, H, W] -> the trainable stages (BatchNorm folded, per-channel lr scales as the full
// finetune) -> pool -> heads -> the paper's losses. Both tasks' heads sit on the shared trained stages: the paper's
// MTL in miniature. Each epoch every training image uses ONE of its V cached scaleJitter views, chosen with
// Rng.derive(seed, 'view', epoch, image) as in frozen mode; validation uses the cached centre crop. The saved model
// is the full network image -> probabilities (lower stages' ImageNet params + trained stages + heads).
import type { Preprocessing } from '../image/index.ts';
import { ACTIVATIONS_INPUT, buildNetworkFrom, collectParams } from '../models/network.ts';
import type { TrunkStage } from '../models/resnet.ts';
import { Rng } from '../util/rng.ts';
import { ActivationCache, type CachedViews } from './activations.ts';
import type { TrunkWeights } from './backbone.ts';
import { sgdOf, type FinetuneTrainable, type TrainConfig } from './config.ts';
import { ValidationAccumulator, openEvalSession, paramFeeds, type TrainBatch } from './epochs.ts';
import { defaultFeatureDir, type ViewSet } from './features.ts';
import { finetuneImages } from './finetune.ts';
import { buildLowerTrunkGraph } from './lowerTrunk.ts';
import { Trainer } from './step.ts';
import { dropoutMasks, encodeTargets, labelFeeds, noDropout, stepsPerEpoch } from './targets.ts';
import type { ModeResult, ProgressFactory, TrainContext } from './trainContext.ts';
import {
  loopOutcome,
  lossWeightsOf,
  multipliersOf,
  runTaskEpochs,
  siteRevealOf,
  taskWeightingOf,
  initSiteLayer,
} from './trainContext.ts';

/** The first trainable stage of finetune.trainable ('stage5' -> 5), or null for the whole network. */
export function trainableStage(t: FinetuneTrainable): TrunkStage | null {
  return t === 'all' ? null : (Number(t.slice('stage'.length)) as TrunkStage);
}

/** The cached training views of partial fine-tuning (finetune.views / viewSeed, the image scale jitter). */
export function partialViewSet(c: TrainConfig): ViewSet {
  return { kind: 'train', views: c.finetune.views, seed: c.finetune.viewSeed, jitter: { ...c.image.jitter } };
}

/** Validation (and any single-view use) reads the centre crop, tenCrop's view 4. */
const VALIDATION_VIEWS: ViewSet = { kind: 'center' };

export interface ActivationCacheContext {
  config: TrainConfig;
  prep: Preprocessing;
  progress?: ProgressFactory;
  signal?: AbortSignal;
  /** The trunk's weights (loaded on demand when absent). */
  weights?: () => Promise<TrunkWeights>;
}

export function activationCacheFor(o: ActivationCacheContext, stage: TrunkStage): ActivationCache {
  const c = o.config;
  return new ActivationCache({
    dir: c.cacheDir ?? defaultFeatureDir(),
    backbone: { trunk: c.trunk, imageSize: c.image.size, seed: c.seed },
    stage,
    prep: o.prep,
    threads: c.runtime.threads ?? undefined,
    progress: o.progress,
    signal: o.signal,
    weights: o.weights,
  });
}

/**
 * The study's hook: every image's training views and centre view, computed once up front for all folds, tasks and
 * seeds' trainings (which then only read them). Null, doing nothing, unless the config fine-tunes part of the trunk.
 */
export async function cacheActivations(
  o: ActivationCacheContext & { images: readonly { path: string }[] },
): Promise<{ id: string; hits: number; misses: number; seconds: number } | null> {
  const stage = o.config.mode === 'finetune' ? trainableStage(o.config.finetune.trainable) : null;
  if (stage === null) return null;
  const t0 = performance.now();
  const cache = activationCacheFor(o, stage);
  try {
    await cache.prepare([
      { images: o.images, set: partialViewSet(o.config), label: 'caching training activations' },
      { images: o.images, set: VALIDATION_VIEWS, label: 'caching centre-crop activations' },
    ]);
  } finally {
    await cache.close();
  }
  return { id: cache.id, ...cache.stats, seconds: (performance.now() - t0) / 1000 };
}

export async function trainPartial(ctx: TrainContext): Promise<ModeResult> {
  const c = ctx.config;
  const stage = trainableStage(c.finetune.trainable);
  if (stage === null) throw new Error('bug: trainPartial with finetune.trainable "all"');
  const train = finetuneImages(ctx);
  const weights = await ctx.trunkWeights();
  const t0 = performance.now();
  const cache = activationCacheFor({ ...ctx, weights: async () => weights }, stage);
  let cached: CachedViews[];
  try {
    cached = await cache.prepare([
      { images: train, set: partialViewSet(c), label: 'caching training activations' },
      ...(ctx.validation.length
        ? [{ images: ctx.validation, set: VALIDATION_VIEWS, label: 'caching validation activations' }]
        : []),
    ]);
  } finally {
    await cache.close(); // reading needs no trunk
  }
  const cacheSeconds = (performance.now() - t0) / 1000;
  ctx.log(
    `activations (input of stage ${stage}, [${cache.shape}] per view): ${cache.stats.hits} image(s) from the cache, ${cache.stats.misses} computed (${cacheSeconds.toFixed(1)} s, ${cache.id})`,
  );
  const [trainA, valA] = cached;

  const B = c.batchSize;
  const net = buildNetworkFrom(ctx.spec, stage, {
    batch: B,
    mode: 'train',
    trainable: 'all',
    weights,
    taskWeights: c.taskWeights,
    taskWeighting: taskWeightingOf(c),
    dropoutMasks: true,
  });
  initSiteLayer(ctx, net.graph);
  const lossNames = net.losses.map((l) => l.tensor.name);
  const threads = c.runtime.threads ?? undefined;
  const trainer = await Trainer.create({
    forward: net.graph,
    losses: net.losses.map((l) => ({ name: l.tensor.name, weight: l.weight })),
    sgd: sgdOf(c),
    multipliers: multipliersOf(
      net.graph,
      c,
      weights !== 'random' && c.finetune.bnParameterization === 'original' ? weights : undefined,
    ),
    plateau: valA ? c.plateau : undefined,
    threads,
  });
  const evalSession = valA ? await openEvalSession(net.graph, lossNames, threads) : null;
  const targets = encodeTargets(train, ctx.labels);
  const masks = net.heads.dropoutMasks;
  const spe = stepsPerEpoch(train.length, B);
  const len = cache.viewLength;

  const order = epochOrder(c.seed, train.length);
  const load = async (index: number): Promise<TrainBatch> => {
    const epoch = Math.floor(index / spe);
    const pos = index % spe;
    const rows = order(epoch).slice(pos * B, (pos + 1) * B);
    const activations = new Float32Array(B * len);
    await cache.read(
      trainA,
      rows.map((i) => ({ image: i, view: Rng.derive(c.seed, 'view', epoch, i).int(0, trainA.views - 1) })),
      activations,
    );
    return {
      feeds: {
        [ACTIVATIONS_INPUT]: activations,
        ...labelFeeds(targets, ctx.labels, rows, B, siteRevealOf(ctx, { epoch, step: pos })),
        ...dropoutMasks(masks, c.seed, epoch, pos),
      },
      rows: rows.length,
    };
  };
  const batch = readAhead(load, c.finetune.epochs * spe);

  const validate =
    valA && evalSession
      ? async () => {
          const acc = new ValidationAccumulator(ctx.labels, lossNames, lossWeightsOf(net.losses));
          const vt = encodeTargets(ctx.validation, ctx.labels);
          const params = paramFeeds(trainer);
          for (let s = 0; s < ctx.validation.length; s += B) {
            const rows = Array.from({ length: Math.min(B, ctx.validation.length - s) }, (_, k) => s + k);
            const activations = new Float32Array(B * len);
            await cache.read(
              valA,
              rows.map((i) => ({ image: i, view: 0 })),
              activations,
            );
            const out = await evalSession.run({
              ...params,
              [ACTIVATIONS_INPUT]: activations,
              ...labelFeeds(vt, ctx.labels, rows, B, siteRevealOf(ctx, 'given')),
              ...noDropout(masks),
            });
            acc.add(out, rows.length);
          }
          return acc.result(ctx.validation);
        }
      : undefined;

  const t1 = performance.now();
  try {
    const r = await runTaskEpochs(ctx, {
      trainer,
      epochs: c.finetune.epochs,
      stepsPerEpoch: spe,
      losses: net.losses,
      batch,
      validate,
    });
    const upper = collectParams(net.graph, r.params);
    const params = r.stopped
      ? upper
      : new Map([...buildLowerTrunkGraph(cache.opts.backbone, stage, weights).params, ...upper]);
    return {
      ...loopOutcome(r),
      params,
      timings: { activations_s: cacheSeconds, train_s: (performance.now() - t1) / 1000 },
      backbone: { id: cache.id, views: trainA.views, dim: len },
    };
  } finally {
    await trainer.release();
    await evalSession?.release();
  }
}

/** The shuffled image order of an epoch (Rng.derive(seed, 'order', epoch), as frozen mode), the last one memoised. */
function epochOrder(seed: number, n: number): (epoch: number) => number[] {
  let last: { epoch: number; order: number[] } | null = null;
  return (epoch) => {
    if (last?.epoch !== epoch)
      last = { epoch, order: Rng.derive(seed, 'order', epoch).shuffle(Array.from({ length: n }, (_, i) => i)) };
    return last.order;
  };
}

/**
 * Batch `index` from `load`, with batch index + 1 read from disk while the update of this one runs. A batch depends
 * on its index alone, so reading ahead changes nothing a resume could see.
 */
function readAhead(
  load: (index: number) => Promise<TrainBatch>,
  total: number,
): (index: number) => Promise<TrainBatch> {
  let ahead: { index: number; batch: Promise<TrainBatch> } | null = null;
  return (index) => {
    const mine = ahead?.index === index ? ahead.batch : load(index);
    ahead = null;
    if (index + 1 < total) {
      const next = load(index + 1);
      next.catch(() => {}); // awaited (and its error thrown) when its turn comes; never an unhandled rejection
      ahead = { index: index + 1, batch: next };
    }
    return mine;
  };
}
