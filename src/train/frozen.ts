// Frozen-trunk training: the ImageNet trunk is fixed, so its pooled features are computed once per image and view
// (features.ts, cached on disk) and only the small "features graph" is trained: input 'features' [B, d] -> shared
// FC + ReLU + dropout -> heads, with the paper's losses, optimizer and learning-rate multipliers. An update takes
// milliseconds. Each epoch every training image uses ONE of its V cached scaleJitter views (and, with
// frozen.trainCrops, its ten test crops), chosen with Rng.derive(seed, 'view', epoch, image). The saved model is
// still the full network image -> probabilities.
import { Graph, type Loss, type Tensor } from '../graph/index.ts';
import { addHeadLosses, buildHeads, type Heads, type TaskWeighting } from '../models/heads.ts';
import { buildMemberHeads, mergedHeadsConfig, mergeMembers } from '../models/members.ts';
import type { NetworkSpec } from '../models/network.ts';
import { Rng } from '../util/rng.ts';
import { buildBackboneGraph } from './backbone.ts';
import {
  CENTER_VIEW,
  TEN_CROP_VIEWS,
  FeatureCache,
  defaultFeatureDir,
  type ViewFeatures,
  type ViewSet,
} from './features.ts';
import { ValidationAccumulator, openEvalSession, paramFeeds, type TrainBatch } from './epochs.ts';
import { dropoutMasks, encodeTargets, labelFeeds, noDropout, stepsPerEpoch } from './targets.ts';
import { featureStats, foldStandardization, standardizeInPlace, type FeatureStats } from './standardize.ts';
import { sgdOf } from './config.ts';
import { Trainer } from './step.ts';
import type { ModeResult, TrainContext } from './trainContext.ts';
import {
  loopOutcome,
  lossWeightsOf,
  multipliersOf,
  runTaskEpochs,
  siteRevealOf,
  taskWeightingOf,
  initSiteLayer,
} from './trainContext.ts';

export const FEATURES_INPUT = 'features';

export interface FeaturesNetwork {
  graph: Graph;
  features: Tensor;
  heads: Heads;
  losses: Loss[];
}

/**
 * The heads part of the network on pooled features: the same layers, names and init as buildNetwork's heads, so
 * its params drop into the full model. Train mode: trainable params, label inputs, losses, dropout masks as
 * inputs. Inference mode: params baked in from `values` (every one required), dropout off.
 */
export function buildFeaturesNetwork(
  spec: NetworkSpec,
  featureDim: number,
  batch: number,
  mode: 'train' | 'inference',
  opts: {
    values?: ReadonlyMap<string, Float32Array>;
    taskWeights?: { lesion?: number; location?: number };
    taskWeighting?: TaskWeighting;
    members?: number;
  } = {},
): FeaturesNetwork {
  const train = mode === 'train';
  const g = new Graph();
  const features = g.input(FEATURES_INPUT, [batch, featureDim]);
  const headsOptions = {
    ...spec.heads,
    seed: spec.seed,
    training: train,
    trainable: train,
    dropoutMasks: train,
    values: opts.values,
    requireValues: !train,
  };
  const members = opts.members ?? 1;
  const heads =
    members > 1 ? buildMemberHeads(g, features, headsOptions, members) : buildHeads(g, features, headsOptions);
  if (heads.lesionProbs) g.output(heads.lesionProbs);
  if (heads.locationProbs) g.output(heads.locationProbs);
  const losses = train ? addHeadLosses(g, heads, opts.taskWeights, opts.taskWeighting).losses : [];
  return { graph: g, features, heads, losses };
}

export function trainViewSet(ctx: Pick<TrainContext, 'config'>): ViewSet {
  const c = ctx.config;
  return { kind: 'train', views: c.frozen.views, seed: c.frozen.viewSeed, jitter: { ...c.image.jitter } };
}

export function featureCacheFor(
  ctx: Pick<TrainContext, 'config' | 'prep' | 'progress'> & { signal?: AbortSignal },
): FeatureCache {
  const c = ctx.config;
  return new FeatureCache({
    dir: c.cacheDir ?? defaultFeatureDir(),
    backbone: { trunk: c.trunk, imageSize: c.image.size, seed: c.seed },
    prep: ctx.prep,
    threads: c.runtime.threads ?? undefined,
    batchViews: c.frozen.featureBatch,
    progress: ctx.progress,
    signal: ctx.signal,
  });
}

export async function trainFrozen(ctx: TrainContext): Promise<ModeResult> {
  const c = ctx.config;
  const B = c.batchSize;
  const t0 = performance.now();
  const cache = featureCacheFor(ctx);
  let trainF: ViewFeatures;
  let valF: ViewFeatures | null = null;
  try {
    trainF = await cache.features(ctx.train, trainViewSet(ctx), 'caching training views');
    if (c.frozen.trainCrops)
      trainF = joinViews(
        trainF,
        await cache.features(ctx.train, { kind: 'tenCrop' }, 'caching test views of the training images'),
      );
    if (ctx.validation.length)
      valF = await cache.features(ctx.validation, { kind: 'tenCrop' }, 'caching validation views');
  } finally {
    await cache.close();
  }
  const featureSeconds = (performance.now() - t0) / 1000;
  ctx.log(
    `features: ${cache.stats.hits} image(s) from the cache, ${cache.stats.misses} computed (${featureSeconds.toFixed(1)} s, ${cache.backboneId})`,
  );

  const dim = trainF.dim;
  const stats = c.frozen.standardize ? trainingStats(trainF) : null;
  const prepare = (x: Float32Array) => (stats ? standardizeInPlace(x, stats) : x);
  const members = c.frozen.members;
  const net = buildFeaturesNetwork(ctx.spec, dim, B, 'train', {
    taskWeights: c.taskWeights,
    taskWeighting: taskWeightingOf(c),
    members,
  });
  initSiteLayer(ctx, net.graph);
  const lossNames = net.losses.map((l) => l.tensor.name);
  const trainer = await Trainer.create({
    forward: net.graph,
    losses: net.losses.map((l) => ({ name: l.tensor.name, weight: l.weight })),
    sgd: sgdOf(c),
    multipliers: multipliersOf(net.graph, c),
    plateau: valF ? c.plateau : undefined,
    threads: c.runtime.threads ?? undefined,
  });
  const evalSession = valF ? await openEvalSession(net.graph, lossNames, c.runtime.threads ?? undefined) : null;
  const targets = encodeTargets(ctx.train, ctx.labels);
  const masks = net.heads.dropoutMasks;
  const spe = stepsPerEpoch(ctx.train.length, B);
  const orders = new Map<number, number[]>();
  const orderOf = (epoch: number) => {
    let o = orders.get(epoch);
    if (!o) {
      orders.clear();
      o = Rng.derive(c.seed, 'order', epoch).shuffle(Array.from({ length: ctx.train.length }, (_, i) => i));
      orders.set(epoch, o);
    }
    return o;
  };

  const batch = async (index: number): Promise<TrainBatch> => {
    const epoch = Math.floor(index / spe);
    const pos = index % spe;
    const rows = orderOf(epoch).slice(pos * B, (pos + 1) * B);
    const features = new Float32Array(B * dim);
    rows.forEach((i, b) => {
      const view = Rng.derive(c.seed, 'view', epoch, i).int(0, trainF.views - 1);
      const at = (i * trainF.views + view) * dim;
      features.set(trainF.data.subarray(at, at + dim), b * dim);
    });
    return {
      feeds: {
        [FEATURES_INPUT]: prepare(features),
        ...labelFeeds(targets, ctx.labels, rows, B, siteRevealOf(ctx, { epoch, step: pos })),
        ...dropoutMasks(masks, c.seed, epoch, pos),
      },
      rows: rows.length,
    };
  };

  // Validation scores the images as the study will (config eval.tta): the mean of the ten crops' outputs, or the centre.
  const valViews = c.eval.tta === 'center' ? [CENTER_VIEW] : [...Array(TEN_CROP_VIEWS).keys()];
  const validate =
    valF && evalSession
      ? async () => {
          const acc = new ValidationAccumulator(ctx.labels, lossNames, lossWeightsOf(net.losses));
          const vt = encodeTargets(ctx.validation, ctx.labels);
          const params = paramFeeds(trainer);
          for (let s = 0; s < ctx.validation.length; s += B) {
            const rows = Array.from({ length: Math.min(B, ctx.validation.length - s) }, (_, k) => s + k);
            const mean: Record<string, { data: Float32Array }> = {};
            for (const view of valViews) {
              const features = new Float32Array(B * dim);
              rows.forEach((i, b) => {
                const at = (i * valF.views + view) * dim;
                features.set(valF.data.subarray(at, at + dim), b * dim);
              });
              const out = await evalSession.run({
                ...params,
                [FEATURES_INPUT]: prepare(features),
                ...labelFeeds(vt, ctx.labels, rows, B, siteRevealOf(ctx, 'given')),
                ...noDropout(masks),
              });
              addMean(mean, out, valViews.length);
            }
            acc.add(mean, rows.length);
          }
          return acc.result(ctx.validation);
        }
      : undefined;

  const t1 = performance.now();
  try {
    const r = await runTaskEpochs(ctx, {
      trainer,
      epochs: c.frozen.epochs,
      stepsPerEpoch: spe,
      losses: net.losses,
      batch,
      validate,
    });
    const merged = members > 1 ? mergeMembers(r.params, members) : r.params;
    const heads = stats ? foldStandardization(merged, stats) : new Map([...merged].map(([k, v]) => [k, v.slice()]));
    const params = r.stopped
      ? heads
      : new Map([
          ...buildBackboneGraph({ trunk: c.trunk, imageSize: c.image.size, seed: c.seed }, await ctx.trunkWeights())
            .params,
          ...heads,
        ]);
    return {
      ...loopOutcome(r),
      params,
      spec: { ...ctx.spec, heads: mergedHeadsConfig(ctx.spec.heads, members) },
      timings: { features_s: featureSeconds, train_s: (performance.now() - t1) / 1000 },
      backbone: { id: cache.backboneId, views: trainF.views, dim },
    };
  } finally {
    await trainer.release();
    await evalSession?.release();
  }
}

/** Standardisation statistics over every cached view of every training image. */
function trainingStats(f: ViewFeatures): FeatureStats {
  const rows = function* () {
    for (let at = 0; at < f.data.length; at += f.dim) yield f.data.subarray(at, at + f.dim);
  };
  return featureStats(rows(), f.dim);
}

/** Adds every output / n into `sum` (the mean over n runs once all are added). */
function addMean(sum: Record<string, { data: Float32Array }>, out: Record<string, { data: unknown }>, n: number): void {
  for (const [name, t] of Object.entries(out)) {
    const d = t.data as Float32Array;
    const into = (sum[name] ??= { data: new Float32Array(d.length) }).data;
    for (let i = 0; i < d.length; i++) into[i] += d[i] / n;
  }
}

/** Per image, the views of `a` then those of `b` (same images, same order). */
function joinViews(a: ViewFeatures, b: ViewFeatures): ViewFeatures {
  const views = a.views + b.views;
  const n = a.data.length / (a.views * a.dim);
  const data = new Float32Array(n * views * a.dim);
  for (let i = 0; i < n; i++) {
    data.set(a.data.subarray(i * a.views * a.dim, (i + 1) * a.views * a.dim), i * views * a.dim);
    data.set(b.data.subarray(i * b.views * b.dim, (i + 1) * b.views * b.dim), (i * views + a.views) * a.dim);
  }
  return { views, dim: a.dim, data };
}
