// Finite-difference check of every trunk gradient of the ImageNet ResNet-50 (all layers trainable, BN folded):
// for each conv, the directional derivative along its own normalised gradient, (L(w + e d) - L(w - e d)) / 2e,
// against |g|. A wrong backward rule anywhere in the trunk shows up as a ratio far from 1.
//   node --import tsx bench/grad-check.ts [size=64] [batch=2]
import { buildTrainingGraph, GraphSession } from '../src/graph/index.ts';
import { loadFoldedResNet50 } from '../src/models/foldBatchNorm.ts';
import { HEAD_TENSORS } from '../src/models/heads.ts';
import { buildNetwork, IMAGE_INPUT, type NetworkSpec } from '../src/models/network.ts';
import { ensurePretrainedResNet50 } from '../src/models/pretrained.ts';
import { Rng } from '../src/util/rng.ts';

const size = Number(process.argv[2] ?? 64);
const B = Number(process.argv[3] ?? 2);
const P = 4,
  Q = 3;
const spec: NetworkSpec = {
  trunk: { depth: 50 },
  imageSize: size,
  seed: 7,
  heads: { lesion: P, location: Q, shared: null, featureDropout: 0 },
};
const folded = await loadFoldedResNet50(await ensurePretrainedResNet50({ progress: false }));
const net = buildNetwork(spec, { batch: B, mode: 'train', weights: folded, dropoutMasks: true, trainable: 'all' });
const tg = buildTrainingGraph(net.graph, net.losses);
const s = await GraphSession.fromGraph(tg, { training: true, threads: 2 });
const r = Rng.seeded(3);
const feeds: Record<string, Float32Array | BigInt64Array> = {
  [IMAGE_INPUT]: Float32Array.from({ length: B * 3 * size * size }, () => r.normal(0, 50)),
  [HEAD_TENSORS.lesionTargets]: Float32Array.from({ length: B * P }, () => (r.bool(0.4) ? 1 : 0)),
  [HEAD_TENSORS.lesionWeights]: Float32Array.from({ length: B }, () => 1),
  [HEAD_TENSORS.locationTargets]: BigInt64Array.from({ length: B }, (_, i) => BigInt(i % Q)),
  [HEAD_TENSORS.locationWeights]: Float32Array.from({ length: B }, () => 1),
};
const params = new Map<string, Float32Array>(
  net.graph.params({ trainable: true }).map((p) => [p.name, Float32Array.from(p.data)]),
);
const known = new Set(s.inputNames);
const run = async (over?: [string, Float32Array]) => {
  const ps = Object.fromEntries(params);
  if (over) ps[over[0]] = over[1];
  const out = await s.run({ ...Object.fromEntries(Object.entries(feeds).filter(([k]) => known.has(k))), ...ps });
  let loss = 0;
  for (const [k, v] of Object.entries(out)) if (k.endsWith('_loss')) loss += (v.data as Float32Array)[0];
  return { loss, out };
};
const base = await run();
console.log(
  'loss',
  base.loss,
  'outputs',
  Object.keys(base.out).filter((k) => k.endsWith('_loss')),
);
let worst = 0;
const only = process.env.ONLY ? new RegExp(process.env.ONLY) : null;
for (const [name, w] of params) {
  if (only && !only.test(name)) continue;
  if (!name.endsWith('/weight') && !name.endsWith('/bias')) continue;
  const g = base.out[`grad/${name}`]?.data as Float32Array | undefined;
  if (!g) {
    console.log(name, 'no gradient');
    continue;
  }
  let gn = 0,
    wn = 0;
  for (let i = 0; i < g.length; i++) {
    gn += g[i] * g[i];
    wn += w[i] * w[i];
  }
  gn = Math.sqrt(gn);
  wn = Math.sqrt(wn);
  if (gn === 0) {
    console.log(name, 'zero gradient');
    continue;
  }
  const e = 1e-3 * Math.max(wn, 1e-2);
  const shifted = (sign: number) => Float32Array.from(w, (v, i) => v + (sign * e * g[i]) / gn);
  const up = (await run([name, shifted(1)])).loss,
    down = (await run([name, shifted(-1)])).loss;
  const fd = (up - down) / (2 * e);
  const ratio = fd / gn;
  worst = Math.max(worst, Math.abs(ratio - 1));
  const sc = folded.convs.get(name.replace(/\/(weight|bias)$/, ''))?.scale;
  let un = 0;
  const k = g.length / (sc?.length ?? 1);
  for (let i = 0; i < g.length; i++) {
    const s2 = sc && name.endsWith('/weight') ? sc[Math.floor(i / k)] ** 2 : 1;
    un += (s2 * g[i]) ** 2;
  }
  const rel = (1e-3 * Math.sqrt(un)) / Math.max(wn, 1e-12);
  console.log(
    `${name.padEnd(36)} |g| ${gn.toExponential(3)}  fd ${fd.toExponential(3)}  ratio ${ratio.toFixed(4)}  |w| ${wn.toExponential(2)}  lr1e-3 step/|w| ${rel.toExponential(2)}`,
  );
}
console.log('worst |ratio - 1|', worst.toFixed(4));
await s.release();
