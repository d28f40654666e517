// The node order buildTrainingGraph leaves for onnxruntime's executor: forward | helpers | gradient chain | one tail
// per param in wrt order (see scheduleForOrt in src/graph/autodiff.ts), and Graph.reorderNodes' checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, buildTrainingGraph } from '../../src/graph/index.ts';
import { randomData } from './helpers.ts';

/** conv -> relu -> conv -> relu -> global pool -> linear -> sigmoid CE, every weight trainable. */
function smallNet(): Graph {
  const g = new Graph();
  const x = g.input('x', [2, 3, 6, 6]);
  const p = (name: string, shape: number[], seed: number) =>
    g.param(
      name,
      shape,
      randomData(
        seed,
        shape.reduce((a, b) => a * b, 1),
      ),
      { trainable: true },
    );
  const h1 = g.relu(g.conv(x, p('c1/w', [4, 3, 3, 3], 1), p('c1/b', [4], 2), { pads: 1 }), { name: 'h1' });
  const h2 = g.relu(g.conv(h1, p('c2/w', [4, 4, 3, 3], 3), undefined, { pads: 1 }), { name: 'h2' });
  const logits = g.gemm(g.flatten(g.globalAveragePool(h2)), p('fc/w', [5, 4], 4), undefined, { transB: true });
  g.sigmoidCrossEntropy(logits, g.input('t', [2, 5]), undefined, { name: 'loss' });
  return g;
}

test("training graph order: forward, then helpers, then the gradient chain, then each param's tail in wrt order", () => {
  const forward = smallNet();
  const g = buildTrainingGraph(forward, [forward.tensor('loss')]);
  const fwd = forward.nodes.length;
  assert.deepEqual(
    g.nodes.slice(0, fwd).map((n) => n.outputs[0]),
    forward.nodes.map((n) => n.outputs[0]),
    'forward nodes keep their places',
  );
  const producer = new Map(g.nodes.flatMap((n, i) => n.outputs.map((o) => [o, i] as const)));
  const at = (t: string) => producer.get(t)!;
  const indices = (op: string) => g.nodes.flatMap((n, i) => (i >= fwd && n.opType === op ? [i] : []));
  // the only backward Conv is c2's dX (c1's dX is not needed: x is no param); the ReLU masks (Greater) are helpers
  const [dx2] = indices('Conv');
  const masks = indices('Greater');
  assert.equal(masks.length, 2);
  assert.ok(
    masks.every((m) => m < dx2),
    `masks ${masks} come before the gradient chain (c2 dX at ${dx2})`,
  );
  // the gradient outputs end the graph in wrt (declaration) order, each after its own tail
  const outs = ['c1/w', 'c1/b', 'c2/w', 'fc/w'].map((w) => at(`grad/${w}`));
  assert.deepEqual(
    [...outs].sort((a, b) => a - b),
    outs,
  );
  assert.equal(outs[3], g.nodes.length - 1);
  // the weight-gradient products (Gemm, or the per-image MatMul for c1/c2's big maps) are tails: fc's, emitted
  // first (before c2's dX), now sits after the c2/w output, past the chain; c1/b's tail is its bias sum alone
  const products = g.ops
    .filter((r) => r.node >= fwd && (r.type === 'Gemm' || r.type === 'BatchMatMul'))
    .map((r) => r.node);
  assert.equal(products.length, 4, 'dW of c1, c2, fc and the features gradient dX of the linear layer');
  const dwFc = products.filter((i) => i > outs[2] && i < outs[3]);
  assert.equal(dwFc.length, 1, "fc/w's dW Gemm lies between the c2/w and fc/w outputs");
  assert.ok(dwFc[0] > dx2);
  assert.equal(products.filter((i) => i > outs[0] && i < outs[1]).length, 0, "c1/b's tail is its bias sum alone");
  assert.equal(products.filter((i) => i < outs[0] && i > dx2).length, 1, "c1/w's dW product lies in its tail");
  // every node still runs after the producers of its inputs
  const known = new Set([...g.inputs.map((i) => i.name), ...g.initializers.map((i) => i.name)]);
  for (const n of g.nodes) {
    for (const x of n.inputs) assert.ok(known.has(x), `${n.opType} uses ${x} before it is produced`);
    n.outputs.forEach((o) => known.add(o));
  }
});

test('reorderNodes refuses non-permutations and orders that break dataflow; op records follow their nodes', () => {
  const g = new Graph();
  const x = g.input('x', [2]);
  const a = g.relu(x, { name: 'a' });
  const b = g.sigmoid(x, { name: 'b' });
  g.add(a, b, { name: 'c' });
  assert.throws(() => g.reorderNodes([0, 1]), /not a permutation/);
  assert.throws(() => g.reorderNodes([0, 0, 1]), /not a permutation/);
  assert.throws(() => g.reorderNodes([2, 0, 1]), /Add would run before the producer of a/);
  g.reorderNodes([1, 0, 2]);
  assert.deepEqual(
    g.nodes.map((n) => n.outputs[0]),
    ['b', 'a', 'c'],
  );
  assert.deepEqual(
    g.ops.map((r) => [r.type, r.node]),
    [
      ['Relu', 1],
      ['Sigmoid', 0],
      ['Add', 2],
    ],
  );
});
