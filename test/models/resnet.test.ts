// The ResNet trunk: Keras ResNet50 layout, the tiny variant against an independent fp64 Keras-style forward pass,
// the ZeroPadding2D + MaxPool equivalence, init and trainability. No real weights here (see parity.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphSession } from '../../src/graph/index.ts';
import {
  buildResNet,
  heNormal,
  INPUT_PIXEL_STD,
  trunkConvs,
  trunkLayout,
  TINY_WIDTHS,
} from '../../src/models/resnet.ts';
import { RESNET50_PARAM_COUNT } from '../../src/models/foldBatchNorm.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';
import { conv2d, globalAveragePool, maxPool, relErr, tensor, type T } from '../graph/reference.ts';

const randn = (seed: number, n: number) => {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: n }, () => r.normal());
};

test('ResNet-50 layout: Keras names, bottlenecks [3,4,6,3], stride on the first 1x1 of res3a/4a/5a, projections on "a" blocks', () => {
  const l = trunkLayout(50);
  assert.deepEqual(l.stem, { name: 'conv1', kernel: 7, stride: 2, pad: 3, inChannels: 3, outChannels: 64 });
  assert.equal(l.blocks.length, 16);
  const perStage = [2, 3, 4, 5].map((s) => l.blocks.filter((b) => b.name.startsWith(`res${s}`)).length);
  assert.deepEqual(perStage, [3, 4, 6, 3]);
  const byName = new Map(trunkConvs(l).map((c) => [c.name, c]));
  assert.equal(byName.size, 53);
  assert.equal(byName.get('res2a_branch2a')!.stride, 1);
  for (const s of [3, 4, 5]) {
    assert.equal(byName.get(`res${s}a_branch2a`)!.stride, 2, `res${s}a_branch2a`);
    assert.equal(byName.get(`res${s}a_branch2b`)!.stride, 1);
    assert.equal(byName.get(`res${s}a_branch1`)!.stride, 2);
  }
  assert.deepEqual(
    l.blocks.filter((b) => b.shortcut).map((b) => b.shortcut!.name),
    ['res2a_branch1', 'res3a_branch1', 'res4a_branch1', 'res5a_branch1'],
  );
  const b2b = byName.get('res4c_branch2b')!;
  assert.deepEqual([b2b.kernel, b2b.pad, b2b.inChannels, b2b.outChannels], [3, 1, 256, 256]);
  assert.equal(l.featureDim, 2048);
});

test('ResNet-50 (random init) builds [2,3,224,224] -> features [2,2048]; folded param count = Keras minus BatchNorm', async () => {
  const g = new Graph();
  const x = g.input('image', [2, 3, 224, 224]);
  const t = buildResNet(g, x, { depth: 50, seed: 1, trainable: 'heads' });
  assert.deepEqual(t.features.shape, [2, 2048]);
  assert.equal(t.features.name, 'features');
  const n = g.params().reduce((a, p) => a + p.data.length, 0);
  // Keras: 25,636,712 including fc1000 (2,049,000) and 4 BN arrays over 26,560 channels in all.
  assert.equal(n, RESNET50_PARAM_COUNT - 2048 * 1000 - 1000 - 4 * 26_560);
  assert.equal(g.params({ trainable: true }).length, 0);
  assert.equal(g.nodes.filter((nd) => nd.opType === 'Conv').length, 53);
  assert.equal(g.nodes.filter((nd) => nd.opType === 'Add').length, 16);
  g.output(t.features);
  const s = await GraphSession.fromGraph(g);
  try {
    const out = await s.run({ image: randn(3, 2 * 3 * 224 * 224) });
    const f = out.features.data as Float32Array;
    assert.equal(f.length, 4096);
    assert.ok(
      f.every((v) => Number.isFinite(v) && v >= 0),
      'pooled ReLU outputs are finite and >= 0',
    );
    assert.ok(f.some((v) => v > 0));
  } finally {
    await s.release();
  }
});

test('ZeroPadding2D(1) + valid 3x3/2 max pool (Keras) == MaxPool pads 1 (ONNX) on ReLU outputs, but not on negative inputs', async () => {
  // The Keras side is computed here in JS: an ONNX Pad + MaxPool graph would not do, because ORT's PadFusion
  // (onnxruntime PR 18136) folds a zero Pad into MaxPool's -inf padding and so changes its result.
  const run = async (relu: boolean) => {
    const g = new Graph();
    const x = g.input('x', [1, 2, 9, 8]);
    const a = relu ? g.relu(x, { name: 'a' }) : g.identity(x, { name: 'a' });
    g.output(a);
    g.output(g.maxPool(a, { kernel: 3, strides: 2, pads: 1 }), 'onnx');
    const s = await GraphSession.fromGraph(g);
    // Values in [-3.5, 0.5): mostly negative, so border windows without a positive pixel exist.
    const out = await s.run({ x: randn(5, 144).map((v) => v - 1.5) });
    await s.release();
    assert.deepEqual(out.onnx.dims, [1, 2, 5, 4]);
    const keras = maxPool(zeroPad1(tensor([1, 2, 9, 8], out.a.data as Float32Array)), {
      kernel: [3, 3],
      strides: [2, 2],
      pads: [0, 0, 0, 0],
    }).y;
    return { keras: [...keras.data], onnx: [...(out.onnx.data as Float32Array)] };
  };
  const withRelu = await run(true);
  assert.deepEqual(withRelu.onnx, withRelu.keras);
  const raw = await run(false);
  assert.notDeepEqual(raw.onnx, raw.keras, 'with negative border values the two paddings differ');
});

/** Keras ZeroPadding2D(1) on NCHW. */
function zeroPad1(a: T): T {
  const [n, c, h, w] = a.shape;
  const o = tensor([n, c, h + 2, w + 2]);
  for (let i = 0; i < n * c; i++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) o.data[(i * (h + 2) + y + 1) * (w + 2) + x + 1] = a.data[(i * h + y) * w + x];
  return o;
}

/** Keras-style fp64 forward of the tiny net, written from its description (not from trunkLayout). */
function tinyReference(x: T, p: Map<string, Float32Array>): T {
  const conv = (a: T, name: string, stride: number, pad: number) => {
    const w = p.get(`${name}/weight`)!;
    const cout = p.get(`${name}/bias`)!.length;
    const k = Math.round(Math.sqrt(w.length / cout / a.shape[1]));
    return conv2d(a, tensor([cout, a.shape[1], k, k], w), tensor([cout], p.get(`${name}/bias`)!), {
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
    });
  };
  const relu = (a: T) =>
    tensor(
      a.shape,
      a.data.map((v) => Math.max(0, v)),
    );
  const add = (a: T, b: T) =>
    tensor(
      a.shape,
      a.data.map((v, i) => v + b.data[i]),
    );
  let h = relu(conv(x, 'conv1', 2, 3));
  h = maxPool(zeroPad1(h), { kernel: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0] }).y;
  for (const [si, width] of TINY_WIDTHS.entries()) {
    for (const letter of 'ab') {
      const name = `res${si + 2}${letter}`;
      const stride = letter === 'a' && si > 0 ? 2 : 1;
      const y = conv(relu(conv(h, `${name}_branch2a`, stride, 1)), `${name}_branch2b`, 1, 1);
      const skip = h.shape[1] !== width || stride !== 1 ? conv(h, `${name}_branch1`, stride, 0) : h;
      h = relu(add(y, skip));
    }
  }
  const pooled = globalAveragePool(h);
  return tensor([pooled.shape[0], pooled.shape[1]], pooled.data);
}

test('tiny ResNet: [2,3,64,64] -> [2,64], matches an independent fp64 Keras-style forward pass', async () => {
  const g = new Graph();
  const x = g.input('image', [2, 3, 64, 64]);
  const t = buildResNet(g, x, { depth: 'tiny', seed: 7 });
  assert.deepEqual(t.features.shape, [2, TINY_WIDTHS[3]]);
  assert.deepEqual(
    t.layout.blocks.map((b) => b.name),
    ['res2a', 'res2b', 'res3a', 'res3b', 'res4a', 'res4b', 'res5a', 'res5b'],
  );
  assert.deepEqual(
    t.layout.blocks.filter((b) => b.shortcut).map((b) => b.name),
    ['res3a', 'res4a', 'res5a'],
  );
  // Make the biases non-zero so that a wrong bias wiring would show.
  const values = new Map(
    g
      .params()
      .map((p) => [
        p.name,
        p.name.endsWith('/bias') ? randn(p.data.length, p.data.length).map((v) => 0.1 * v) : p.data,
      ]),
  );
  const g2 = new Graph();
  const t2 = buildResNet(g2, g2.input('image', [2, 3, 64, 64]), {
    depth: 'tiny',
    seed: 7,
    trainable: 'none',
    values,
    requireValues: true,
  });
  g2.output(t2.features);
  const image = randn(11, 2 * 3 * 64 * 64);
  const s = await GraphSession.fromGraph(g2);
  const got = (await s.run({ image })).features.data as Float32Array;
  await s.release();
  const ref = tinyReference(tensor([2, 3, 64, 64], image), values);
  assert.ok(relErr(got, ref.data) < 1e-5, `relative error ${relErr(got, ref.data)}`);
  assert.ok(ref.data.some((v) => v > 0.01));
});

test('init: He normal (std sqrt(2/fan_in)), last conv of each branch scaled by 1/sqrt(blocks), zero biases, seeded per layer', () => {
  const build = (seed: number) => {
    const g = new Graph();
    buildResNet(g, g.input('image', [1, 3, 64, 64]), { depth: 'tiny', seed });
    return new Map(g.params().map((p) => [p.name, p.data]));
  };
  const a = build(3);
  const std = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  const w2a = a.get('res4a_branch2a/weight')!; // [32, 16, 3, 3]
  assert.equal(w2a.length, 32 * 16 * 9);
  assert.ok(Math.abs(std(w2a) / Math.sqrt(2 / (16 * 9)) - 1) < 0.05, `std ${std(w2a)}`);
  const w2b = a.get('res4a_branch2b/weight')!; // [32, 32, 3, 3], last of the branch: x 1/sqrt(8)
  assert.ok(Math.abs(std(w2b) / (Math.sqrt(2 / (32 * 9)) / Math.sqrt(8)) - 1) < 0.05, `std ${std(w2b)}`);
  assert.ok(a.get('res4a_branch2a/bias')!.every((v) => v === 0));
  const again = build(3);
  assert.deepEqual(again.get('conv1/weight'), a.get('conv1/weight'));
  assert.notDeepEqual(build(4).get('conv1/weight'), a.get('conv1/weight'));
  // conv1 sees Caffe pixels (sd ~58), so its He std is divided by INPUT_PIXEL_STD
  assert.deepEqual(
    heNormal(Rng.derive(3, 'trunk', 'conv1'), [8, 3, 7, 7], 1 / INPUT_PIXEL_STD),
    a.get('conv1/weight'),
    'derived from (seed, conv name)',
  );
});

test('trainable: all -> params are graph inputs; heads -> frozen initializers; predicate -> only matching params', () => {
  const trainableNames = (trainable: Parameters<typeof buildResNet>[2]['trainable']) => {
    const g = new Graph();
    buildResNet(g, g.input('image', [1, 3, 32, 32]), { depth: 'tiny', trainable });
    return {
      trainable: g.params({ trainable: true }).map((p) => p.name),
      inputs: g.inputs.length,
      all: g.params().length,
    };
  };
  const all = trainableNames('all');
  assert.equal(all.trainable.length, all.all);
  assert.equal(all.inputs, all.all + 1);
  assert.equal(trainableNames('heads').trainable.length, 0);
  assert.equal(trainableNames('none').inputs, 1);
  const res5 = trainableNames((p) => p.startsWith('res5'));
  assert.deepEqual(res5.trainable, [
    'res5a_branch2a/weight',
    'res5a_branch2a/bias',
    'res5a_branch2b/weight',
    'res5a_branch2b/bias',
    'res5a_branch1/weight',
    'res5a_branch1/bias',
    'res5b_branch2a/weight',
    'res5b_branch2a/bias',
    'res5b_branch2b/weight',
    'res5b_branch2b/bias',
  ]);
});

test('bad options are refused clearly', () => {
  const g = new Graph();
  const x = g.input('image', [1, 3, 32, 32]);
  const fakeWeights = {
    convs: new Map(),
    fc1000: { weight: new Float32Array(0), bias: new Float32Array(0), shape: [1000, 2048] as [1000, 2048] },
  };
  assert.throws(
    () => buildResNet(g, x, { depth: 'tiny', weights: fakeWeights }),
    (e) => e instanceof DermtlError && /ResNet-50 only/.test(e.message),
  );
  const g5 = new Graph();
  assert.throws(
    () => buildResNet(g5, g5.input('image', [1, 3, 32, 32]), { depth: 'tiny', fc1000: true }),
    /fc1000 needs/,
  );
  assert.throws(
    () => buildResNet(g, x, { depth: 18 as never }),
    (e) => e instanceof DermtlError && /unknown ResNet depth/.test(e.message),
  );
  const g3 = new Graph();
  assert.throws(
    () =>
      buildResNet(g3, g3.input('image', [1, 3, 32, 32]), {
        depth: 'tiny',
        values: new Map([['conv1/weight', new Float32Array(5)]]),
      }),
    (e) => e instanceof DermtlError && /conv1\/weight: 5 values/.test(e.message),
  );
  const g4 = new Graph();
  assert.throws(
    () => buildResNet(g4, g4.input('image', [1, 3, 32, 32]), { depth: 'tiny', requireValues: true, values: new Map() }),
    (e) => e instanceof DermtlError && /conv1\/weight are missing/.test(e.message),
  );
});
