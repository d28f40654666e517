// Exploration harness for frozen-mode heads on cached derm7pt features (not a product path): trains lesion-only
// heads on a study's folds with variants of the recipe and prints pooled out-of-fold 10-crop mAP-class.
//   node --import tsx bench/frozen-explore.ts --manifest /tmp/d7/r.csv --folds /tmp/d7/study-base/folds.json --variant NAME
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadManifest } from '../src/data/manifest.ts';
import { loadFolds } from '../src/data/splits.ts';
import type { Sample } from '../src/data/types.ts';
import { GraphSession } from '../src/graph/index.ts';
import { evaluate } from '../src/metrics/metrics.ts';
import { resolveConfig } from '../src/train/config.ts';
import { buildFeaturesNetwork, featureCacheFor, trainViewSet } from '../src/train/frozen.ts';
import { encodeTargets, labelFeeds, dropoutMasks, validationSplit, labelsFor } from '../src/train/targets.ts';
import { Trainer } from '../src/train/step.ts';
import { multipliersOf, preprocessingOf, specOf } from '../src/train/trainTask.ts';
import { Rng } from '../src/util/rng.ts';
import { serializeInference } from '../src/models/modelFile.ts';

const { values: a } = parseArgs({
  options: {
    manifest: { type: 'string' },
    folds: { type: 'string' },
    variant: { type: 'string', default: '{}' },
    fold: { type: 'string' },
    dump: { type: 'string' },
  },
});
const V = JSON.parse(a.variant!) as {
  shared?: { hidden: number; dropout: number } | null;
  std?: boolean;
  allViews?: boolean;
  crops?: boolean;
  epochs?: number;
  lr?: number;
  wd?: number;
  select?: 'last' | 'best';
  seed?: number;
  batch?: number;
  momentum?: number;
  lrMult?: [number, number];
  drop?: number[];
};
const cfg = resolveConfig({
  task: 'lesion',
  frozen: { shared: V.shared === undefined ? { hidden: 512, dropout: 0.5 } : V.shared },
});
const manifest = await loadManifest(a.manifest!);
const folds = (await loadFolds(a.folds!, manifest)).splits;
const cache = featureCacheFor({
  config: cfg,
  prep: preprocessingOf(cfg),
  progress: () => Object.assign(() => {}, { stop: () => {} }),
});
const all = manifest.samples;
const idx = new Map(all.map((s, i) => [s.image, i]));
const trainF = await cache.features(all, trainViewSet({ config: cfg }));
const testF = await cache.features(all, { kind: 'tenCrop' });
await cache.close();
const D = trainF.dim;
const labels = labelsFor('lesion', all);
const P = labels.lesion.length;

/** A training view: the jitter views, then (with `crops`) the ten test crops. */
function trainRow(i: number, v: number): Float32Array {
  return v < trainF.views ? rowsOf(trainF, i, v) : rowsOf(testF, i, v - trainF.views);
}
const NV = trainF.views + (V.crops ? 10 : 0);

function rowsOf(f: typeof trainF, i: number, v: number): Float32Array {
  const at = (i * f.views + v) * D;
  return f.data.subarray(at, at + D);
}

async function predict(
  params: Map<string, Float32Array>,
  spec: ReturnType<typeof specOf>,
  feats: Float32Array,
  n: number,
  norm: Norm,
): Promise<Float32Array> {
  const net = buildFeaturesNetwork(spec, D, n, 'inference', { values: params });
  const s = await GraphSession.fromBytes(serializeInference(net.graph, {}), { threads: 2 });
  const x = norm.apply(feats);
  const out = await s.run({ features: { data: x, dims: [n, D] } });
  await s.release();
  return out.lesion_probs.data as Float32Array;
}

interface Norm {
  apply(x: Float32Array): Float32Array;
}
function makeNorm(rows: Float32Array[], on: boolean): Norm {
  if (!on) return { apply: (x) => x };
  const mean = new Float64Array(D);
  const sq = new Float64Array(D);
  for (const r of rows)
    for (let d = 0; d < D; d++) {
      mean[d] += r[d];
      sq[d] += r[d] * r[d];
    }
  const m = Float32Array.from(mean, (v) => v / rows.length);
  const inv = Float32Array.from(sq, (v, d) => {
    const s = Math.sqrt(Math.max(v / rows.length - m[d] * m[d], 0));
    return s > 1e-6 ? 1 / s : 1;
  });
  return {
    apply: (x) => {
      const y = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const d = i % D;
        y[i] = (x[i] - m[d]) * inv[d];
      }
      return y;
    },
  };
}

/** Mean over the 10 crops of the probabilities. */
async function score10(
  params: Map<string, Float32Array>,
  spec: ReturnType<typeof specOf>,
  samples: Sample[],
  norm: Norm,
): Promise<Float64Array[]> {
  const n = samples.length;
  const x = new Float32Array(n * 10 * D);
  samples.forEach((s, k) => {
    for (let v = 0; v < 10; v++) x.set(rowsOf(testF, idx.get(s.image)!, v), (k * 10 + v) * D);
  });
  const p = await predict(params, spec, x, n * 10, norm);
  return samples.map((_, k) => {
    const o = new Float64Array(P);
    for (let v = 0; v < 10; v++) for (let j = 0; j < P; j++) o[j] += p[(k * 10 + v) * P + j] / 10;
    return o;
  });
}

function mapClass(samples: Sample[], scores: Float64Array[]): number {
  const ev = evaluate(samples, {
    images: samples.map((s) => s.image),
    lesionLabels: labels.lesion,
    locationLabels: [],
    lesion: scores,
    location: samples.map(() => new Float64Array(0)),
  });
  return ev.lesion!.mapClass!;
}

const seed = V.seed ?? 0;
const pooledS: Sample[] = [];
const pooledP: Float64Array[] = [];
const perFold: string[] = [];
for (let f = 0; f < folds.length; f++) {
  if (a.fold !== undefined && Number(a.fold) !== f) continue;
  const split = validationSplit(folds[f].train, 0.1, seed);
  const tr = split.train;
  const trIdx = tr.map((s) => idx.get(s.image)!);
  // training rows: (image, view) pairs
  const pairs: [number, number][] = [];
  const views = (i: number) => [...Array(trainF.views).keys()].map((v) => [i, v] as [number, number]);
  for (let k = 0; k < tr.length; k++) pairs.push(...views(k));
  const normRows = trIdx.flatMap((i) => [...Array(trainF.views).keys()].map((v) => rowsOf(trainF, i, v)));
  const norm = makeNorm(normRows, V.std ?? false);
  const spec = specOf(cfg, labels);
  const B = V.batch ?? 20;
  const net = buildFeaturesNetwork(spec, D, B, 'train');
  const mult = multipliersOf(net.graph, {
    ...cfg,
    optimizer: {
      ...cfg.optimizer,
      lrMult: { trunk: 1, headWeight: V.lrMult?.[0] ?? 10, headBias: V.lrMult?.[1] ?? 20 },
    },
  });
  const trainer = await Trainer.create({
    forward: net.graph,
    losses: net.losses.map((l) => ({ name: l.tensor.name })),
    sgd: { lr: V.lr ?? 1e-3, momentum: V.momentum ?? 0.9, weightDecay: V.wd ?? 1e-4 },
    multipliers: mult,
    threads: 2,
  });
  const targets = encodeTargets(tr, labels);
  const epochs = V.epochs ?? 30;
  let best = -1;
  let bestParams = new Map(trainer.params);
  let bestEpoch = 0;
  for (let e = 0; e < epochs; e++) {
    if (V.drop?.includes(e)) trainer.optimizer.setLearningRate(trainer.optimizer.learningRate * 0.1);
    const items: [number, number][] = V.allViews
      ? Rng.derive(seed, 'order', e).shuffle(
          tr.flatMap((_, k) => [...Array(trainF.views).keys()].map((v) => [k, v] as [number, number])),
        )
      : Rng.derive(seed, 'order', e)
          .shuffle(tr.map((_, k) => k))
          .map((k) => [k, Rng.derive(seed, 'view', e, k).int(0, NV - 1)] as [number, number]);
    for (let s = 0; s < items.length; s += B) {
      const chunk = items.slice(s, s + B);
      const x = new Float32Array(B * D);
      chunk.forEach(([k, v], b) => x.set(trainRow(trIdx[k], v), b * D));
      await trainer.step({
        features: norm.apply(x),
        ...labelFeeds(
          targets,
          labels,
          chunk.map(([k]) => k),
          B,
        ),
        ...dropoutMasks(net.heads.dropoutMasks, seed, e, s),
      });
    }
    if (V.select === 'best') {
      const vs = await score10(trainer.params, spec, split.validation, norm);
      const m = mapClass(split.validation, vs);
      if (m > best) {
        best = m;
        bestEpoch = e + 1;
        bestParams = new Map([...trainer.params].map(([k, v]) => [k, v.slice()]));
      }
    }
  }
  const params = V.select === 'best' ? bestParams : trainer.params;
  const scores = await score10(params, spec, folds[f].test, norm);
  perFold.push(`${mapClass(folds[f].test, scores).toFixed(3)}${V.select === 'best' ? `@${bestEpoch}` : ''}`);
  pooledS.push(...folds[f].test);
  pooledP.push(...scores);
  await trainer.release();
}
if (a.dump)
  await writeFile(a.dump, JSON.stringify({ images: pooledS.map((s) => s.image), scores: pooledP.map((p) => [...p]) }));
console.log(`${a.variant}  pooled mAP-class ${mapClass(pooledS, pooledP).toFixed(4)}  folds ${perFold.join(' ')}`);
