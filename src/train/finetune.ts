// Fine-tuning the whole network (the paper): ImageNet ResNet-50 with BatchNorm folded (frozen BN statistics), new
// heads, Caffe SGD with momentum 0.9, weight decay 1e-4, base lr 1e-3 with x10 / x20 on the new heads, lr x0.1 on
// validation plateaus, scaleJitter views from the worker-thread ImageLoader. Batches have the static size B; the
// last partial batch is padded with weight-0 slots and its real weights scaled by B/r (targets.ts: labelFeeds).
import type { Sample } from '../data/types.ts';
import { ImageLoader, viewLength, type Batch } from '../image/index.ts';
import { buildNetwork, collectParams, IMAGE_INPUT } from '../models/network.ts';
import { Rng } from '../util/rng.ts';
import { ValidationAccumulator, openEvalSession, paramFeeds, type TrainBatch } from './epochs.ts';
import { dropoutMasks, encodeTargets, labelFeeds, noDropout, stepsPerEpoch } from './targets.ts';
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

/** The training images of a finetune run: all, or a seeded subset (config finetune.subset, for timing runs). */
export function finetuneImages(ctx: Pick<TrainContext, 'config' | 'train'>): Sample[] {
  const n = ctx.config.finetune.subset;
  if (n === null || n >= ctx.train.length) return ctx.train;
  const keep = new Set(
    Rng.derive(ctx.config.seed, 'subset')
      .shuffle(ctx.train.map((_, i) => i))
      .slice(0, n),
  );
  return ctx.train.filter((_, i) => keep.has(i));
}

export async function trainFinetune(ctx: TrainContext): Promise<ModeResult> {
  const c = ctx.config;
  const B = c.batchSize;
  const train = finetuneImages(ctx);
  const weights = await ctx.trunkWeights();
  const build = () =>
    buildNetwork(ctx.spec, {
      batch: B,
      mode: 'train',
      trainable: 'all',
      weights,
      taskWeights: c.taskWeights,
      taskWeighting: taskWeightingOf(c),
      dropoutMasks: true,
    });
  const net = build();
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
    plateau: ctx.validation.length ? c.plateau : undefined,
    threads,
  });
  const evalSession = ctx.validation.length ? await openEvalSession(build().graph, lossNames, threads) : null;
  const loader = new ImageLoader({
    workers: c.runtime.loaderWorkers ?? undefined,
    prep: ctx.prep,
    jitter: c.image.jitter,
  });
  const targets = encodeTargets(train, ctx.labels);
  const masks = net.heads.dropoutMasks;
  const spe = stepsPerEpoch(train.length, B);
  const pixels = viewLength(ctx.prep);
  const items = train.map((s) => ({ path: s.path }));

  // One generator per epoch; a resumed run opens it at the batch it stopped at (same order, same augmentations).
  type Stream = { epoch: number; next: number; it: AsyncGenerator<Batch> };
  let stream = null as Stream | null;
  const nextBatch = async (epoch: number, pos: number): Promise<Batch> => {
    if (!stream || stream.epoch !== epoch || stream.next !== pos) {
      await stream?.it.return(undefined);
      const it = loader.batches(items, {
        mode: 'train',
        batchSize: B,
        seed: c.seed,
        epoch,
        shuffle: true,
        startBatch: pos,
      });
      stream = { epoch, next: pos, it };
    }
    const r = await stream.it.next();
    if (r.done) throw new Error(`bug: epoch ${epoch} has no batch ${pos}`);
    stream.next++;
    return r.value;
  };
  const batch = async (index: number): Promise<TrainBatch> => {
    const epoch = Math.floor(index / spe);
    const pos = index % spe;
    const b = await nextBatch(epoch, pos);
    const image = new Float32Array(B * pixels);
    image.set(b.data);
    return {
      feeds: {
        [IMAGE_INPUT]: image,
        ...labelFeeds(targets, ctx.labels, b.indices, B, siteRevealOf(ctx, { epoch, step: pos })),
        ...dropoutMasks(masks, c.seed, epoch, pos),
      },
      rows: b.n,
    };
  };

  const validate = evalSession
    ? async () => {
        const acc = new ValidationAccumulator(ctx.labels, lossNames, lossWeightsOf(net.losses));
        const vt = encodeTargets(ctx.validation, ctx.labels);
        const params = paramFeeds(trainer);
        const order: Sample[] = [];
        for await (const b of loader.batches(
          ctx.validation.map((s) => ({ path: s.path })),
          { mode: 'center', batchSize: B, seed: c.seed },
        )) {
          const image = new Float32Array(B * pixels);
          image.set(b.data);
          const out = await evalSession.run({
            ...params,
            [IMAGE_INPUT]: image,
            ...labelFeeds(vt, ctx.labels, b.indices, B, siteRevealOf(ctx, 'given')),
            ...noDropout(masks),
          });
          acc.add(out, b.n);
          order.push(...b.indices.map((i) => ctx.validation[i]));
        }
        return acc.result(order);
      }
    : undefined;

  const t0 = performance.now();
  try {
    const r = await runTaskEpochs(ctx, {
      trainer,
      epochs: c.finetune.epochs,
      stepsPerEpoch: spe,
      losses: net.losses,
      batch,
      validate,
    });
    return {
      ...loopOutcome(r),
      params: collectParams(net.graph, r.params),
      timings: { train_s: (performance.now() - t0) / 1000 },
      backbone: null,
    };
  } finally {
    await stream?.it.return(undefined);
    await loader.close();
    await trainer.release();
    await evalSession?.release();
  }
}
