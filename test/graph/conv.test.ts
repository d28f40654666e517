// Conv forward and backward (dX, dW, dB) against the naive fp64 loops in reference.ts, on odd and even sizes,
// stride 1 and 2, padding, 1x1 and kxk, and both ConvTranspose output_padding cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/graph/index.ts';
import { conv2d, conv2dBackward, relErr, type Conv2d } from './reference.ts';
import { TOL, randomData, ref, runProbe } from './helpers.ts';

type Quad = [number, number, number, number];
interface Case {
  x: number[];
  w: number[];
  strides: [number, number];
  pads: Quad;
  bias?: boolean;
}

async function convCase(t: { diagnostic: (s: string) => void }, label: string, c: Case) {
  const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const xd = randomData(1, n(c.x));
  const wd = randomData(2, n(c.w), -0.5, 0.5);
  const bd = randomData(3, c.w[0]);
  const g = new Graph();
  const x = g.input('x', c.x);
  const w = g.param('w', c.w, wd, { trainable: true });
  const b = c.bias === false ? undefined : g.param('b', [c.w[0]], bd, { trainable: true });
  const y = g.conv(x, w, b, { strides: c.strides, pads: c.pads });
  const wrt = b ? ['x', 'w', 'b'] : ['x', 'w'];
  const r = await runProbe(g, y, wrt, b ? { x: xd, w: wd, b: bd } : { x: xd, w: wd });
  const o: Conv2d = { strides: c.strides, pads: c.pads };
  const X = ref(c.x, xd);
  const W = ref(c.w, wd);
  const want = conv2d(X, W, b ? ref([c.w[0]], bd) : undefined, o);
  const back = conv2dBackward(X, W, r.probe, o);
  const errs: Record<string, number> = {
    y: relErr(r.y, want.data),
    dx: relErr(r.grads.x, back.dx.data),
    dw: relErr(r.grads.w, back.dw.data),
  };
  if (b) errs.db = relErr(r.grads.b, back.db.data);
  t.diagnostic(
    `${label}: ${Object.entries(errs)
      .map(([k, v]) => `${k} ${v.toExponential(1)}`)
      .join(', ')}`,
  );
  for (const [k, v] of Object.entries(errs)) assert.ok(v <= TOL, `${label} ${k}: rel err ${v}`);
  return r.graph;
}

const convT = (g: Graph) => g.nodes.filter((nd) => nd.opType === 'ConvTranspose');

test('conv 3x3 stride 1 pad 1 on 7x7: dX via Conv with the flipped kernel', async (t) => {
  const g = await convCase(t, '3x3/1 p1 7x7', {
    x: [2, 3, 7, 7],
    w: [4, 3, 3, 3],
    strides: [1, 1],
    pads: [1, 1, 1, 1],
  });
  assert.equal(convT(g).length, 0);
  assert.equal(g.nodes.filter((nd) => nd.opType === 'Conv').length, 2);
});

test('conv 3x3 stride 1 without padding or bias on 9x8', async (t) => {
  await convCase(t, '3x3/1 p0 9x8 nobias', {
    x: [1, 2, 9, 8],
    w: [3, 2, 3, 3],
    strides: [1, 1],
    pads: [0, 0, 0, 0],
    bias: false,
  });
});

test('conv 3x3 stride 1 with asymmetric padding', async (t) => {
  await convCase(t, '3x3/1 p[0,1,2,1] 7x6', { x: [1, 2, 7, 6], w: [3, 2, 3, 3], strides: [1, 1], pads: [0, 1, 2, 1] });
});

test('conv 3x3 stride 2 pad 1 on odd 7x7: ConvTranspose output_padding 0', async (t) => {
  const g = await convCase(t, '3x3/2 p1 7x7', {
    x: [2, 3, 7, 7],
    w: [4, 3, 3, 3],
    strides: [2, 2],
    pads: [1, 1, 1, 1],
  });
  assert.deepEqual(
    convT(g).map((nd) => nd.attrs.output_padding),
    [[0, 0]],
  );
});

test('conv 3x3 stride 2 pad 1 on even 8x8: ConvTranspose output_padding 1', async (t) => {
  const g = await convCase(t, '3x3/2 p1 8x8', {
    x: [2, 3, 8, 8],
    w: [4, 3, 3, 3],
    strides: [2, 2],
    pads: [1, 1, 1, 1],
  });
  assert.deepEqual(
    convT(g).map((nd) => nd.attrs.output_padding),
    [[1, 1]],
  );
});

test('conv 3x3 stride 2 on 9x8: both output_padding values in one conv', async (t) => {
  const g = await convCase(t, '3x3/2 p1 9x8', {
    x: [2, 3, 9, 8],
    w: [4, 3, 3, 3],
    strides: [2, 2],
    pads: [1, 1, 1, 1],
  });
  assert.deepEqual(
    convT(g).map((nd) => nd.attrs.output_padding),
    [[0, 1]],
  );
});

test('conv 3x3 with >= 32 input channels: one dW product per kernel tap, per image and over the batch', async (t) => {
  const cases: [string, Case, { perImage: number; batch: number }][] = [
    [
      '3x3/1 p1 32->8 12x12 per image',
      { x: [1, 32, 12, 12], w: [8, 32, 3, 3], strides: [1, 1], pads: [1, 1, 1, 1] },
      { perImage: 9, batch: 0 },
    ],
    [
      '3x3/2 p1 32->4 13x13 per image',
      { x: [2, 32, 13, 13], w: [4, 32, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
      { perImage: 9, batch: 0 },
    ],
    [
      '3x3/1 p1 32->32 3x3 batch',
      { x: [2, 32, 3, 3], w: [32, 32, 3, 3], strides: [1, 1], pads: [1, 1, 1, 1] },
      { perImage: 0, batch: 9 },
    ],
  ];
  for (const [label, c, want] of cases) assert.deepEqual(dwLayouts(await convCase(t, label, c)), want, label);
});

test('conv 7x7 stride 2 pad 3 (ResNet stem shape) on 11x10 (dW over the batch) and 23x22 (dW per image)', async (t) => {
  const small = await convCase(t, '7x7/2 p3 11x10', {
    x: [1, 3, 11, 10],
    w: [2, 3, 7, 7],
    strides: [2, 2],
    pads: [3, 3, 3, 3],
  });
  assert.deepEqual(dwLayouts(small), { perImage: 0, batch: 1 });
  const big = await convCase(t, '7x7/2 p3 23x22', {
    x: [2, 3, 23, 22],
    w: [2, 3, 7, 7],
    strides: [2, 2],
    pads: [3, 3, 3, 3],
  });
  assert.deepEqual(dwLayouts(big), { perImage: 1, batch: 0 });
});

/** Which dW layout the rule chose: per image (batched MatMul, summed over N) or over the batch (transposes + Gemm). */
const dwLayouts = (g: Graph) => ({
  perImage: g.ops.filter((r) => r.type === 'BatchMatMul').length,
  batch: g.ops.filter((r) => r.type === 'Gemm').length,
});
const activationTransposes = (g: Graph) =>
  g.nodes.filter(
    (nd) => nd.opType === 'Transpose' && String(nd.attrs.perm) === '1,0,2,3' && !nd.inputs[0].startsWith('w'),
  ).length;

test('conv 1x1 stride 1: dW per image for a big map (no transposed activations), one Gemm for a small one; no Slice', async (t) => {
  const big = await convCase(t, '1x1/1 7x7 per image', {
    x: [2, 4, 7, 7],
    w: [5, 4, 1, 1],
    strides: [1, 1],
    pads: [0, 0, 0, 0],
  });
  assert.deepEqual(dwLayouts(big), { perImage: 1, batch: 0 });
  assert.equal(activationTransposes(big), 0);
  const small = await convCase(t, '1x1/1 2x2 batch', {
    x: [2, 16, 2, 2],
    w: [16, 16, 1, 1],
    strides: [1, 1],
    pads: [0, 0, 0, 0],
  });
  assert.deepEqual(dwLayouts(small), { perImage: 0, batch: 1 });
  for (const g of [big, small]) assert.equal(g.nodes.filter((nd) => nd.opType === 'Slice').length, 0);
});

test('conv kxk dW over the batch (many channels, small map): 3x3/1, 3x3/2 and the 7x7/2 stem', async (t) => {
  const cases: [string, Case][] = [
    ['3x3/1 p1 4x4 batch', { x: [2, 8, 4, 4], w: [8, 8, 3, 3], strides: [1, 1], pads: [1, 1, 1, 1] }],
    ['3x3/2 p1 5x5 batch', { x: [2, 8, 5, 5], w: [8, 8, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['7x7/2 p3 9x9 batch', { x: [1, 3, 9, 9], w: [8, 3, 7, 7], strides: [2, 2], pads: [3, 3, 3, 3] }],
  ];
  for (const [label, c] of cases)
    assert.deepEqual(dwLayouts(await convCase(t, label, c)), { perImage: 0, batch: 1 }, label);
});

test('conv 1x1 stride 2 on even 8x8 and odd 9x9 (ResNet downsample shortcut)', async (t) => {
  const even = await convCase(t, '1x1/2 8x8', {
    x: [2, 4, 8, 8],
    w: [5, 4, 1, 1],
    strides: [2, 2],
    pads: [0, 0, 0, 0],
  });
  assert.deepEqual(
    convT(even).map((nd) => nd.attrs.output_padding),
    [[1, 1]],
  );
  const odd = await convCase(t, '1x1/2 9x9', { x: [2, 4, 9, 9], w: [5, 4, 1, 1], strides: [2, 2], pads: [0, 0, 0, 0] });
  assert.deepEqual(
    convT(odd).map((nd) => nd.attrs.output_padding),
    [[0, 0]],
  );
});

test('conv gradient refuses grouped convolution clearly', async () => {
  const g = new Graph();
  const x = g.input('x', [1, 4, 5, 5]);
  const w = g.param('w', [4, 2, 3, 3], new Float32Array(72), { trainable: true });
  const y = g.conv(x, w, undefined, { group: 2, pads: 1 });
  await assert.rejects(runProbe(g, y, ['w'], {}), /group=1/);
});
