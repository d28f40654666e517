// Manual measurement (not part of the test suite): pretrained ResNet-50 weight loading, ORT forward ms/image of
// the inference export at batch 1 and 20 (dynamic 'N' vs a graph built at a fixed batch), and peak RSS.
// Run: node --import tsx bench/resnet50-forward.ts [runs=5]
import { Graph, GraphSession, serialize } from '../src/graph/index.ts';
import { ensurePretrainedResNet50 } from '../src/models/pretrained.ts';
import { loadFoldedResNet50, type FoldedResNet50 } from '../src/models/foldBatchNorm.ts';
import { buildResNet } from '../src/models/resnet.ts';
import { serializeInference } from '../src/models/modelFile.ts';
import { Rng } from '../src/util/rng.ts';

const RUNS = Number(process.argv[2]) || 5;
const mb = () => (process.resourceUsage().maxRSS / 1024).toFixed(0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let t0 = performance.now();
const folder = await ensurePretrainedResNet50({ progress: false });
const tEnsure = performance.now() - t0;
t0 = performance.now();
const folded = await loadFoldedResNet50(folder);
console.log(
  `weights: ensure (cached, size check) ${tEnsure.toFixed(0)} ms, read + fold ${(performance.now() - t0).toFixed(0)} ms; peak RSS ${mb()} MB`,
);

function graph(weights: FoldedResNet50, batch: number): Graph {
  const g = new Graph();
  const t = buildResNet(g, g.input('image', [batch, 3, 224, 224]), {
    depth: 50,
    weights,
    trainable: 'none',
    fc1000: true,
  });
  g.output(t.imagenetProbs!);
  return g;
}

/** Median ms/image of each session on the same batch; runs alternate between the sessions so load drift hits all alike. */
async function time(batch: number, sessions: Record<string, GraphSession>) {
  const r = Rng.seeded(batch);
  const data = Float32Array.from({ length: batch * 3 * 224 * 224 }, () => r.normal(0, 58));
  const feed = { image: { data, dims: [batch, 3, 224, 224] } };
  const ms: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((k) => [k, []]));
  for (const s of Object.values(sessions)) for (let i = 0; i < 2; i++) await s.run(feed); // the arena grows during the first runs
  for (let i = 0; i < RUNS; i++) {
    for (const [k, s] of Object.entries(sessions)) {
      const a = performance.now();
      await s.run(feed);
      ms[k].push(performance.now() - a);
    }
  }
  for (const [k, m] of Object.entries(ms)) {
    console.log(
      `${k} batch ${batch}: median ${(median(m) / batch).toFixed(1)} ms/image (${m.map((x) => x.toFixed(0)).join(', ')} ms per batch)`,
    );
  }
  console.log(`peak RSS ${mb()} MB`);
}

t0 = performance.now();
const bytes = serializeInference(graph(folded, 1));
const t1 = performance.now();
const dynamic = await GraphSession.fromBytes(bytes);
console.log(
  `inference export: build + serialise ${(t1 - t0).toFixed(0)} ms (${(bytes.length / 1e6).toFixed(1)} MB), ORT session ${(performance.now() - t1).toFixed(0)} ms`,
);
await time(1, { 'dynamic N': dynamic });
const fixed = await GraphSession.fromBytes(serialize(graph(folded, 20)));
await time(20, { 'dynamic N': dynamic, 'fixed 20 ': fixed });
await dynamic.release();
await fixed.release();
console.log(`peak RSS at the end ${mb()} MB`);
