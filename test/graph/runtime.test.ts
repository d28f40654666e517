// Runtime: feed validation (clear DermtlErrors naming the tensor), serialisation round trips (metadata,
// trainable params inlined for inference), and autodiff's refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DermtlError } from '../../src/util/errors.ts';
import {
  Graph,
  GraphSession,
  buildTrainingGraph,
  readMetadata,
  readModelInputs,
  serialize,
} from '../../src/graph/index.ts';
import { randomData } from './helpers.ts';

function linear() {
  const g = new Graph();
  const w = randomData(60, 6);
  const x = g.input('x', [2, 3]);
  const y = g.gemm(x, g.param('w', [2, 3], w, { trainable: true }), undefined, { transB: true, name: 'y' });
  g.output(y);
  g.input('label', [2], 'int64');
  return { g, w };
}

async function rejects(feeds: Record<string, unknown>, pattern: RegExp) {
  const { g } = linear();
  const s = await GraphSession.fromGraph(g);
  try {
    await assert.rejects(s.run(feeds as never), (e: unknown) => e instanceof DermtlError && pattern.test(e.message));
  } finally {
    await s.release();
  }
}

const ok = { x: new Float32Array(6), w: new Float32Array(6), label: BigInt64Array.of(0n, 1n) };

test('a wrong-shaped feed is rejected naming the tensor and both shapes', async () => {
  await rejects({ ...ok, x: new Float32Array(5) }, /input 'x': expected shape \[2,3\] \(6 values\), got 5 values/);
  await rejects(
    { ...ok, x: { data: new Float32Array(6), dims: [3, 2] } },
    /input 'x': expected shape \[2,3\], got \[3,2\]/,
  );
});

test('NaN and Inf in a feed are rejected with their position', async () => {
  const x = new Float32Array(6);
  x[4] = Number.NaN;
  await rejects({ ...ok, x }, /input 'x' contains NaN at index 4 \(coordinates \[1,1\]\)/);
  const w = new Float32Array(6);
  w[0] = -Infinity;
  await rejects({ ...ok, w }, /input 'w' contains -Infinity at index 0/);
});

test('missing, unknown and wrongly typed feeds are rejected', async () => {
  await rejects({ x: ok.x, label: ok.label }, /missing input 'w' \(float32 \[2,3\]\)/);
  await rejects({ ...ok, z: new Float32Array(1) }, /unknown input 'z'; the model takes x, w, label/);
  await rejects(
    { ...ok, x: new Float64Array(6) },
    /input 'x': expected float32 data \(Float32Array\), got Float64Array/,
  );
  await rejects({ ...ok, label: [0, 1.5] }, /input 'label': value 1.5 at index 1 is not an integer/);
});

test('plain number arrays are accepted for int64 and float32 feeds; unknown fetches are rejected', async () => {
  const { g, w } = linear();
  const s = await GraphSession.fromGraph(g);
  const out = await s.run({ x: [1, 0, 0, 0, 1, 0], w, label: [1, 0] });
  assert.deepEqual(out.y.dims, [2, 2]);
  assert.deepEqual(Array.from(out.y.data as Float32Array), [w[0], w[3], w[1], w[4]]);
  await assert.rejects(s.run({ x: ok.x, w, label: [1, 0] }, ['nope']), /unknown output\(s\) nope/);
  await s.release();
});

test('checkFinite can be limited to named feeds (e.g. skip the params)', async () => {
  const { g } = linear();
  const s = await GraphSession.fromGraph(g, { checkFinite: ['x'] });
  const w = new Float32Array(6).fill(Number.NaN);
  const out = await s.run({ ...ok, w });
  assert.ok(Number.isNaN((out.y.data as Float32Array)[0]));
  await s.release();
});

test('serialised models carry metadata; inlined params make an inference model with the same output', async () => {
  const { g, w } = linear();
  const x = randomData(61, 6);
  const train = await GraphSession.fromGraph(g);
  const want = (await train.run({ x, w, label: [0, 0] })).y.data;
  await train.release();

  const trained = Float32Array.from(w, (v) => v * 2);
  const bytes = serialize(g, { metadata: { task: 'lesion', size: '224' }, inlineParams: new Map([['w', trained]]) });
  assert.deepEqual(readMetadata(bytes), { task: 'lesion', size: '224' });
  assert.deepEqual(readModelInputs(bytes), [
    { name: 'x', shape: [2, 3], dtype: 'float32' },
    { name: 'label', shape: [2], dtype: 'int64' },
  ]);
  const infer = await GraphSession.fromBytes(bytes);
  const got = (await infer.run({ x, label: [0, 0] })).y.data as Float32Array;
  assert.deepEqual(
    Array.from(got),
    Array.from(want as Float32Array, (v) => Math.fround(v * 2)),
  );
  await assert.rejects(infer.run({ x: new Float32Array(6), label: [0, 0], w }), /unknown input 'w'/);
  await infer.release();
});

test('autodiff refuses non-scalar losses, unused params and ops without a gradient rule', () => {
  const g = new Graph();
  const x = g.input('x', [2, 3]);
  const w = g.param('w', [3, 3], new Float32Array(9), { trainable: true });
  g.param('unused', [1], new Float32Array(1), { trainable: true });
  const y = g.matMul(x, w);
  assert.throws(() => buildTrainingGraph(g, [y]), /must be a float32 scalar/);
  const loss = g.reduceSum(y);
  assert.throws(() => buildTrainingGraph(g, [loss]), /no loss depends on unused/);
  const z = buildTrainingGraph(g, [loss], { unused: 'zeros' });
  assert.ok(z.outputs.some((o) => o.name === 'grad/unused'));
  const t = g.reduceSum(g.transpose(y, [1, 0]));
  assert.throws(() => buildTrainingGraph(g, [t], { wrt: ['w'] }), /no gradient rule for Transpose/);
  assert.equal(g.outputs.length, 0, 'the forward graph is left unchanged');
});

test('builder shape checks name the tensors', () => {
  const g = new Graph();
  const x = g.input('x', [1, 3, 5, 5]);
  assert.throws(
    () => g.conv(x, g.param('w', [4, 2, 3, 3], new Float32Array(72), { trainable: false }), undefined),
    /input x has 3 channels, weight w \[4,2,3,3\] expects 2/,
  );
  assert.throws(() => g.add(x, g.input('y', [1, 2, 5, 5])), /shapes \[1,3,5,5\] and \[1,2,5,5\] do not broadcast/);
  assert.throws(
    () => g.param('p', [2, 2], new Float32Array(3), { trainable: true }),
    /param p: shape \[2,2\] needs 4 values, got 3/,
  );
  assert.throws(() => g.input('x', [1]), /tensor name x is already used/);
  const other = new Graph().input('q', [1]);
  assert.throws(() => g.relu(other), /tensor q does not belong to this graph/);
  assert.deepEqual(
    g.conv(x, g.param('w2', [4, 3, 7, 7], new Float32Array(588), { trainable: false }), undefined, {
      strides: 2,
      pads: 3,
    }).shape,
    [1, 4, 3, 3],
  );
});
