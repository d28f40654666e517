// Manual speed sanity check (not part of the test suite): a small ResNet-50-style net (bottleneck blocks,
// BN folded into conv bias, two heads, both losses) at batch 4, 64x64: one training step (forward +
// backward, every weight trainable) vs the forward pass alone with weights baked in.
// Run: node --import tsx bench/graph-step.ts [batch] [size] [steps]
import { Graph, GraphSession, buildTrainingGraph, type Tensor } from '../src/graph/index.ts';
import { Rng } from '../src/util/rng.ts';

/** Uniform values in [lo, hi), seeded (the graph tests' generator). */
function randomData(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const r = Rng.derive(20240601, 'graph-test', seed);
  return Float32Array.from({ length: n }, () => r.uniform(lo, hi));
}

const [batch, size, steps] = process.argv.slice(2).map(Number);
const N = batch || 4;
const S = size || 64;
const STEPS = steps || 10;

function build(trainable: boolean): Graph {
  const g = new Graph();
  let seed = 0;
  const conv = (x: Tensor, cout: number, k: number, stride: number, relu = true): Tensor => {
    const cin = x.shape[1];
    const r = Math.sqrt(3 / (cin * k * k));
    const id = seed++;
    const w = g.param(`w${id}`, [cout, cin, k, k], randomData(id, cout * cin * k * k, -r, r), { trainable });
    const b = g.param(`b${id}`, [cout], new Float32Array(cout), { trainable });
    const y = g.conv(x, w, b, { strides: stride, pads: (k - 1) / 2 });
    return relu ? g.relu(y) : y;
  };
  const bottleneck = (x: Tensor, mid: number, out: number, stride: number): Tensor => {
    const y = conv(conv(conv(x, mid, 1, 1), mid, 3, stride), out, 1, 1, false);
    const skip = x.shape[1] === out && stride === 1 ? x : conv(x, out, 1, stride, false);
    return g.relu(g.add(y, skip));
  };
  let x = g.input('image', [N, 3, S, S]);
  x = g.maxPool(conv(x, 32, 7, 2), { kernel: 3, strides: 2, pads: 1 });
  for (const [mid, out, blocks, stride] of [
    [32, 128, 2, 1],
    [64, 256, 2, 2],
    [128, 512, 2, 2],
  ]) {
    for (let i = 0; i < blocks; i++) x = bottleneck(x, mid, out, i === 0 ? stride : 1);
  }
  const feat = g.dropout(g.flatten(g.globalAveragePool(x)), 0.5, 1, { training: trainable });
  const head = (name: string, k: number) => {
    const r = Math.sqrt(3 / feat.shape[1]);
    const w = g.param(`${name}W`, [k, feat.shape[1]], randomData(900 + k, k * feat.shape[1], -r, r), { trainable });
    return g.gemm(feat, w, g.param(`${name}B`, [k], new Float32Array(k), { trainable }), {
      transB: true,
      name: `${name}Logits`,
    });
  };
  const lesion = head('lesion', 20);
  const location = head('location', 12);
  g.sigmoidCrossEntropy(lesion, g.input('lesion', [N, 20]), g.input('lesionWeight', [N]), { name: 'lesionLoss' });
  g.softmaxCrossEntropy(location, g.input('location', [N], 'int64'), g.input('locationWeight', [N]), {
    name: 'locationLoss',
  });
  g.output(lesion);
  g.output(location);
  return g;
}

async function time(
  label: string,
  s: GraphSession,
  feeds: Record<string, Float32Array | BigInt64Array>,
  fetches?: string[],
) {
  for (let i = 0; i < 3; i++) await s.run(feeds, fetches); // the arena grows during the first runs
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) await s.run(feeds, fetches);
  const ms = (performance.now() - t0) / STEPS;
  console.log(`${label}: ${ms.toFixed(1)} ms per batch of ${N} (${(ms / N).toFixed(1)} ms/image)`);
}

const data = {
  image: randomData(7, N * 3 * S * S),
  lesion: new Float32Array(N * 20),
  lesionWeight: new Float32Array(N).fill(1),
  location: new BigInt64Array(N),
  locationWeight: new Float32Array(N).fill(1),
};
const fwd = build(false);
const train = build(true);
const tg = buildTrainingGraph(train, [
  { tensor: train.tensor('lesionLoss') },
  { tensor: train.tensor('locationLoss') },
]);
const params = Object.fromEntries(train.params({ trainable: true }).map((p) => [p.name, p.data]));
const nParams = train.params().reduce((a, p) => a + p.data.length, 0);
console.log(
  `${N}x3x${S}x${S}, ${train.params().length / 2} convs/linears, ${(nParams / 1e6).toFixed(2)}M params, ${tg.nodes.length} ONNX nodes in the training graph`,
);
const sf = await GraphSession.fromGraph(fwd);
await time('forward, weights as initializers', sf, data, ['lesionLogits', 'locationLogits']);
await sf.release();
const st = await GraphSession.fromGraph(tg, { training: true });
await time('training step (forward + backward)', st, { ...data, ...params });
await st.release();
