// The two composite losses (paper eq. 5 and eq. 7) with per-sample weights/masks: value and dL/dlogits
// against the naive fp64 formulas in reference.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphSession, buildTrainingGraph } from '../../src/graph/index.ts';
import * as R from './reference.ts';
import { TOL, randomData, ref } from './helpers.ts';

async function runLoss(build: (g: Graph) => void, feeds: Record<string, Float32Array | BigInt64Array>) {
  const g = new Graph();
  build(g);
  const tg = buildTrainingGraph(g, [g.tensor('loss')], { wrt: ['x'] });
  const s = await GraphSession.fromGraph(tg, { training: true });
  const out = await s.run(feeds);
  await s.release();
  return { loss: (out.loss.data as Float32Array)[0], dx: out['grad/x'].data as Float32Array };
}

test('sigmoid cross-entropy: sum over labels, per-sample weights, mean over batch size', async (t) => {
  const [n, l] = [4, 6];
  const x = randomData(30, n * l, -3, 3);
  const tgt = Float32Array.from(randomData(31, n * l), (v) => (v > 0 ? 1 : 0));
  const w = Float32Array.of(1, 0, 0.5, 2); // sample 1 masked out
  const r = await runLoss(
    (g) => {
      g.sigmoidCrossEntropy(g.input('x', [n, l]), g.input('t', [n, l]), g.input('w', [n]), { name: 'loss' });
    },
    { x, t: tgt, w },
  );
  const want = R.sigmoidCrossEntropy(ref([n, l], x), ref([n, l], tgt), ref([n], w));
  const errLoss = Math.abs(r.loss - want.loss) / Math.abs(want.loss);
  const errDx = R.relErr(r.dx, want.dx.data);
  t.diagnostic(`sigmoidCE: loss ${errLoss.toExponential(1)}, dx ${errDx.toExponential(1)}`);
  assert.ok(errLoss <= TOL && errDx <= TOL);
  assert.ok(
    r.dx.slice(l, 2 * l).every((v) => v === 0),
    'the masked sample gets no gradient',
  );
});

test('sigmoid cross-entropy stays finite and exact for logits of +-100 (stable form)', async () => {
  const x = Float32Array.of(100, -100, 100, -100);
  const tgt = Float32Array.of(1, 0, 0, 1);
  const r = await runLoss(
    (g) => g.sigmoidCrossEntropy(g.input('x', [2, 2]), g.input('t', [2, 2]), undefined, { name: 'loss' }),
    { x, t: tgt },
  );
  // Two confident right answers (~0 each) and two confident wrong ones (~100 each), over a batch of 2.
  assert.ok(Math.abs(r.loss - 100) < 1e-4, `loss ${r.loss}`);
  assert.deepEqual(Array.from(r.dx), [0, 0, 0.5, -0.5]);
});

test('softmax cross-entropy over class indices: weights, masks and an unknown (-1) label', async (t) => {
  const [n, k] = [5, 4];
  const x = randomData(32, n * k, -3, 3);
  const labels = [2, 0, 3, -1, 1];
  const w = Float32Array.of(1, 0.25, 0, 1, 3); // sample 2 masked; sample 3 has no valid label
  const r = await runLoss(
    (g) => {
      g.softmaxCrossEntropy(g.input('x', [n, k]), g.input('y', [n], 'int64'), g.input('w', [n]), { name: 'loss' });
    },
    { x, y: BigInt64Array.from(labels, BigInt), w },
  );
  const want = R.softmaxCrossEntropy(ref([n, k], x), labels, ref([n], w));
  const errLoss = Math.abs(r.loss - want.loss) / Math.abs(want.loss);
  const errDx = R.relErr(r.dx, want.dx.data);
  t.diagnostic(`softmaxCE: loss ${errLoss.toExponential(1)}, dx ${errDx.toExponential(1)}`);
  assert.ok(errLoss <= TOL && errDx <= TOL);
  assert.ok(
    r.dx.slice(2 * k, 4 * k).every((v) => v === 0),
    'masked and unlabelled samples get no gradient',
  );
});

test('loss weights scale each loss in the differentiated total', async () => {
  const x = randomData(33, 6);
  const g = new Graph();
  const xt = g.input('x', [2, 3]);
  const a = g.sigmoidCrossEntropy(xt, g.input('t', [2, 3]), undefined, { name: 'a' });
  const b = g.softmaxCrossEntropy(xt, g.input('y', [2], 'int64'), undefined, { name: 'b' });
  const feeds = { x, t: new Float32Array(6), y: BigInt64Array.of(0n, 2n) };
  const run = async (wa: number, wb: number) => {
    const s = await GraphSession.fromGraph(
      buildTrainingGraph(
        g,
        [
          { tensor: a, weight: wa },
          { tensor: b, weight: wb },
        ],
        { wrt: ['x'] },
      ),
    );
    const out = await s.run(feeds);
    await s.release();
    return out;
  };
  const [onlyA, onlyB, mix] = [await run(1, 0), await run(0, 1), await run(0.3, 2)];
  const ga = onlyA['grad/x'].data as Float32Array;
  const gb = onlyB['grad/x'].data as Float32Array;
  const want = Array.from(ga, (v, i) => 0.3 * v + 2 * gb[i]);
  assert.ok(R.relErr(mix['grad/x'].data as Float32Array, want) < 1e-6);
  assert.equal((mix.a.data as Float32Array)[0], (onlyA.a.data as Float32Array)[0], 'each loss is output unweighted');
});
