// Every other differentiable op: forward value and gradients against fp64 references in reference.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphSession, type Tensor } from '../../src/graph/index.ts';
import * as R from './reference.ts';
import { TOL, randomData, ref, runProbe } from './helpers.ts';

type Diag = { diagnostic: (s: string) => void };
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function expectClose(t: Diag, label: string, pairs: Record<string, [ArrayLike<number>, ArrayLike<number>]>): void {
  const errs = Object.entries(pairs).map(([k, [got, want]]) => [k, R.relErr(got, want)] as const);
  t.diagnostic(`${label}: ${errs.map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
  for (const [k, v] of errs) assert.ok(v <= TOL, `${label} ${k}: rel err ${v}`);
}

/** A graph with one float input `x` (random data) and the op under test applied by `f`. */
async function unary(shape: number[], f: (g: Graph, x: Tensor) => Tensor, seed = 1, lo = -1, hi = 1) {
  const xd = randomData(seed, numel(shape), lo, hi);
  const g = new Graph();
  const y = f(g, g.input('x', shape));
  const r = await runProbe(g, y, ['x'], { x: xd });
  return { r, X: ref(shape, xd) };
}

test('relu: dX = dY where x > 0', async (t) => {
  const { r, X } = await unary([2, 3, 5, 4], (g, x) => g.relu(x));
  const dx = R.map(r.probe, (v, i) => (X.data[i] > 0 ? v : 0));
  expectClose(t, 'relu', { y: [r.y, R.map(X, (v) => Math.max(v, 0)).data], dx: [r.grads.x, dx.data] });
});

test('sigmoid', async (t) => {
  const { r, X } = await unary([3, 7], (g, x) => g.sigmoid(x), 2, -4, 4);
  const s = R.map(X, (v) => 1 / (1 + Math.exp(-v)));
  expectClose(t, 'sigmoid', {
    y: [r.y, s.data],
    dx: [r.grads.x, R.map(r.probe, (v, i) => v * s.data[i] * (1 - s.data[i])).data],
  });
});

test('add / sub / mul with broadcasting (bias-style [1,C,1,1] and [C] operands)', async (t) => {
  const cases: [string, number[], number[], (p: number, q: number) => number][] = [
    ['add', [2, 4, 3, 3], [1, 4, 1, 1], (p, q) => p + q],
    ['sub', [2, 5], [5], (p, q) => p - q],
    ['mul', [2, 4, 3, 3], [4, 1, 1], (p, q) => p * q],
    ['mul', [3, 4], [3, 4], (p, q) => p * q],
  ];
  for (const [op, sa, sb, f] of cases) {
    const ad = randomData(3, numel(sa));
    const bd = randomData(4, numel(sb));
    const g = new Graph();
    const a = g.input('a', sa);
    const b = g.param('b', sb, bd, { trainable: true });
    const y = op === 'add' ? g.add(a, b) : op === 'sub' ? g.sub(a, b) : g.mul(a, b);
    const r = await runProbe(g, y, ['a', 'b'], { a: ad, b: bd });
    const A = ref(sa, ad);
    const B = ref(sb, bd);
    const dy = r.probe;
    const [dA, dB] =
      op === 'mul'
        ? [
            R.sumTo(
              R.broadcastOp(dy, B, (p, q) => p * q),
              sa,
            ),
            R.sumTo(
              R.broadcastOp(dy, A, (p, q) => p * q),
              sb,
            ),
          ]
        : [R.sumTo(dy, sa), R.sumTo(op === 'sub' ? R.scale(dy, -1) : dy, sb)];
    expectClose(t, `${op} [${sa}]x[${sb}]`, {
      y: [r.y, R.broadcastOp(A, B, f).data],
      da: [r.grads.a, dA.data],
      db: [r.grads.b, dB.data],
    });
  }
});

test('maxPool 3x3/2 pad 1 on 9x8 and 7x7: overlapping windows accumulate (no MaxUnpool)', async (t) => {
  for (const shape of [
    [2, 3, 9, 8],
    [1, 2, 7, 7],
  ]) {
    const xd = randomData(5, numel(shape));
    // Plant a peak shared by several overlapping windows, where last-write-wins scattering would be wrong.
    xd[2 * shape[3] + 2] = 5;
    const g = new Graph();
    const y = g.maxPool(g.input('x', shape), { kernel: 3, strides: 2, pads: 1 });
    const r = await runProbe(g, y, ['x'], { x: xd });
    const o: R.Pool = { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] };
    const fwd = R.maxPool(ref(shape, xd), o);
    const counts = new Map<number, number>();
    for (const a of fwd.argmax) counts.set(a, (counts.get(a) ?? 0) + 1);
    assert.ok(Math.max(...counts.values()) >= 4, 'the planted peak wins 4 overlapping windows');
    const dx = R.maxPoolBackward(shape, fwd.argmax, r.probe);
    expectClose(t, `maxPool [${shape}]`, { y: [r.y, fwd.y.data], dx: [r.grads.x, dx.data] });
  }
});

test('globalAveragePool on 7x5', async (t) => {
  const { r, X } = await unary([2, 3, 7, 5], (g, x) => g.globalAveragePool(x));
  expectClose(t, 'gap', {
    y: [r.y, R.globalAveragePool(X).data],
    dx: [r.grads.x, R.globalAveragePoolBackward(X.shape, r.probe).data],
  });
});

test('matMul [3,4]x[4,5]', async (t) => {
  const ad = randomData(6, 12);
  const bd = randomData(7, 20);
  const g = new Graph();
  const y = g.matMul(g.input('a', [3, 4]), g.param('b', [4, 5], bd, { trainable: true }));
  const r = await runProbe(g, y, ['a', 'b'], { a: ad, b: bd });
  const A = ref([3, 4], ad);
  const B = ref([4, 5], bd);
  expectClose(t, 'matMul', {
    y: [r.y, R.matMul(A, B).data],
    da: [r.grads.a, R.matMul(r.probe, R.transpose2d(B)).data],
    db: [r.grads.b, R.matMul(R.transpose2d(A), r.probe).data],
  });
});

test('gemm, all four transpose combinations, alpha/beta and a broadcast bias', async (t) => {
  for (const transA of [false, true])
    for (const transB of [false, true]) {
      const [m, k, n] = [3, 4, 5];
      const sa = transA ? [k, m] : [m, k];
      const sb = transB ? [n, k] : [k, n];
      const ad = randomData(8, m * k);
      const bd = randomData(9, k * n);
      const cd = randomData(10, n);
      const g = new Graph();
      const a = g.input('a', sa);
      const y = g.gemm(a, g.param('b', sb, bd, { trainable: true }), g.param('c', [n], cd, { trainable: true }), {
        transA,
        transB,
        alpha: 0.7,
        beta: 1.3,
      });
      const r = await runProbe(g, y, ['a', 'b', 'c'], { a: ad, b: bd, c: cd });
      const A = transA ? R.transpose2d(ref(sa, ad)) : ref(sa, ad);
      const B = transB ? R.transpose2d(ref(sb, bd)) : ref(sb, bd);
      const want = R.broadcastOp(R.scale(R.matMul(A, B), 0.7), R.scale(ref([n], cd), 1.3), (p, q) => p + q);
      const dA = R.scale(R.matMul(r.probe, R.transpose2d(B)), 0.7);
      const dB = R.scale(R.matMul(R.transpose2d(A), r.probe), 0.7);
      expectClose(t, `gemm transA=${+transA} transB=${+transB}`, {
        y: [r.y, want.data],
        da: [r.grads.a, (transA ? R.transpose2d(dA) : dA).data],
        db: [r.grads.b, (transB ? R.transpose2d(dB) : dB).data],
        dc: [r.grads.c, R.scale(R.sumTo(r.probe, [n]), 1.3).data],
      });
    }
});

test('reshape and flatten pass the gradient through in the input layout', async (t) => {
  const { r, X } = await unary([2, 3, 2, 2], (g, x) => g.sigmoid(g.flatten(g.reshape(x, [2, 6, -1]), 1)));
  const s = R.map(X, (v) => 1 / (1 + Math.exp(-v)));
  expectClose(t, 'reshape+flatten', {
    y: [r.y, s.data],
    dx: [r.grads.x, R.map(r.probe, (v, i) => v * s.data[i] * (1 - s.data[i])).data],
  });
  assert.deepEqual(r.graph.tensor('y').shape, [2, 12]);
});

test('softmax and logSoftmax (last axis, 2-D and 3-D)', async (t) => {
  for (const shape of [
    [3, 5],
    [2, 3, 4],
  ]) {
    const s = await unary(shape, (g, x) => g.softmax(x, -1), 11, -3, 3);
    const y = R.softmaxLast(s.X);
    expectClose(t, `softmax [${shape}]`, {
      y: [s.r.y, y.data],
      dx: [s.r.grads.x, R.softmaxLastBackward(y, s.r.probe).data],
    });
    const l = await unary(shape, (g, x) => g.logSoftmax(x, shape.length - 1), 12, -3, 3);
    expectClose(t, `logSoftmax [${shape}]`, {
      y: [l.r.y, R.logSoftmaxLast(l.X).data],
      dx: [l.r.grads.x, R.logSoftmaxLastBackward(l.X, l.r.probe).data],
    });
  }
});

test('concat along channels; the gradient is split back', async (t) => {
  const shapes = [
    [2, 1, 3, 3],
    [2, 3, 3, 3],
    [2, 2, 3, 3],
  ];
  const data = shapes.map((s, i) => randomData(20 + i, numel(s)));
  const g = new Graph();
  const xs = shapes.map((s, i) => g.input(`x${i}`, s));
  const r = await runProbe(g, g.concat(xs, 1), ['x0', 'x1', 'x2'], { x0: data[0], x1: data[1], x2: data[2] });
  const want = R.concat1(shapes.map((s, i) => ref(s, data[i])));
  // The gradient of concat is the matching block of R: rebuild R by concatenating the three gradients.
  const back = R.concat1(shapes.map((s, i) => ref(s, r.grads[`x${i}`])));
  expectClose(t, 'concat', { y: [r.y, want.data], dx: [back.data, r.probe.data] });
});

test('reduceSum over some axes with keepdims, and over all axes', async (t) => {
  const { r, X } = await unary([2, 3, 4], (g, x) => g.reduceSum(x, [0, 2], true));
  const want = R.sumTo(X, [1, 3, 1]);
  const dx = R.broadcastOp(R.tensor([2, 3, 4]), r.probe, (_p, q) => q);
  expectClose(t, 'reduceSum axes [0,2] keepdims', { y: [r.y, want.data], dx: [r.grads.x, dx.data] });
  const all = await unary([3, 2], (g, x) => g.mul(g.reduceSum(x), x), 15);
  // y = (sum x) * x: dx_j = sum_i dY_i x_i + dY_j * sum x.
  const sx = all.X.data.reduce((a, b) => a + b, 0);
  const dot = all.r.probe.data.reduce((a, v, i) => a + v * all.X.data[i], 0);
  expectClose(t, 'reduceSum all axes', {
    y: [all.r.y, R.scale(all.X, sx).data],
    dx: [all.r.grads.x, R.map(all.r.probe, (v) => dot + v * sx).data],
  });
});

test('dropout: inverted scaling, the forward mask is reused in backward, seeded sequence', async (t) => {
  const shape = [4, 64];
  const xd = randomData(13, numel(shape), 0.5, 1.5); // never 0, so y == 0 marks a dropped unit
  const g = new Graph();
  const y = g.dropout(g.input('x', shape), 0.25, 42);
  const r = await runProbe(g, y, ['x'], { x: xd });
  const kept = Array.from(r.y, (v) => v !== 0);
  const dropped = kept.filter((k) => !k).length;
  assert.ok(dropped > 30 && dropped < 100, `about a quarter of 256 dropped, got ${dropped}`);
  const wantY = Array.from(xd, (v, i) => (kept[i] ? v / 0.75 : 0));
  const wantDx = Array.from(r.probe.data, (v, i) => (kept[i] ? v / 0.75 : 0));
  expectClose(t, 'dropout', { y: [r.y, wantY], dx: [r.grads.x, wantDx] });
});

test('dropout masks: a fresh session with the same seed replays them; successive runs draw new ones', async () => {
  const masks = async () => {
    const g = new Graph();
    g.output(g.dropout(g.input('x', [1, 200]), 0.5, 7), 'y');
    const s = await GraphSession.fromGraph(g);
    const x = new Float32Array(200).fill(1);
    const first = Array.from((await s.run({ x })).y.data as Float32Array);
    const second = Array.from((await s.run({ x })).y.data as Float32Array);
    await s.release();
    return [first, second];
  };
  const [a1, a2] = await masks();
  const [b1] = await masks();
  assert.deepEqual(b1, a1);
  assert.notDeepEqual(a2, a1);
  assert.ok(a1.every((v) => v === 0 || v === 2));
});

test('dropout off (ratio 0 or training false) is the identity in both directions', async (t) => {
  for (const [ratio, training] of [
    [0, true],
    [0.5, false],
  ] as const) {
    const { r, X } = await unary([3, 4], (g, x) => g.dropout(x, ratio, 1, { training }));
    expectClose(t, `dropout ratio=${ratio} training=${training}`, { y: [r.y, X.data], dx: [r.grads.x, r.probe.data] });
    assert.ok(r.graph.nodes.every((nd) => nd.opType !== 'Dropout'));
  }
});

test('stopGradient: the value passes, the gradient does not (y = x * stop(x) + x: dy/dx = x + 1, not 2x + 1)', async (t) => {
  const { r, X } = await unary([3, 4], (g, x) => g.add(g.mul(x, g.stopGradient(x)), x), 7, -2, 2);
  expectClose(t, 'stopGradient', {
    y: [r.y, R.map(X, (v) => v * v + v).data],
    dx: [r.grads.x, R.map(r.probe, (v, i) => v * (X.data[i] + 1)).data],
  });
});

test('exp: dX = dY * exp(x)', async (t) => {
  const { r, X } = await unary([2, 5], (g, x) => g.exp(x), 8, -3, 3);
  const e = R.map(X, (v) => Math.exp(v));
  expectClose(t, 'exp', { y: [r.y, e.data], dx: [r.grads.x, R.map(r.probe, (v, i) => v * e.data[i]).data] });
});
