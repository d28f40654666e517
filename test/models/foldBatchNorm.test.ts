import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  foldConvBn,
  foldResNet50,
  hwioToOihw,
  RESNET50_CONVS,
  RESNET50_PARAM_COUNT,
  resnet50ExpectedShapes,
} from '../../src/models/foldBatchNorm.ts';
import type { WeightMap } from '../../src/models/tfjsWeights.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';

const randn = (rng: Rng, n: number, mean = 0, sd = 1) => Float32Array.from({ length: n }, () => rng.normal(mean, sd));

/** Keras-side reference: NHWC input, HWIO kernel, zero padding, all in fp64. Returns [oh, ow, co]. */
function convNhwc(
  x: Float32Array,
  h: number,
  w: number,
  ci: number,
  k: Float32Array,
  kh: number,
  kw: number,
  co: number,
  stride: number,
  pad: number,
) {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(oh * ow * co);
  for (let oy = 0; oy < oh; oy++)
    for (let ox = 0; ox < ow; ox++)
      for (let o = 0; o < co; o++) {
        let s = 0;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const y = oy * stride + ky - pad,
              xx = ox * stride + kx - pad;
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            for (let i = 0; i < ci; i++) s += x[(y * w + xx) * ci + i] * k[((ky * kw + kx) * ci + i) * co + o];
          }
        out[(oy * ow + ox) * co + o] = s;
      }
  return { out, oh, ow };
}

/** ONNX-side: NCHW input, OIHW weight + bias, fp64. Returns [co, oh, ow]. */
function convNchw(
  x: Float64Array,
  h: number,
  w: number,
  ci: number,
  wt: Float32Array,
  b: Float32Array,
  kh: number,
  kw: number,
  co: number,
  stride: number,
  pad: number,
) {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(co * oh * ow);
  for (let o = 0; o < co; o++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let s = b[o];
        for (let i = 0; i < ci; i++)
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kw; kx++) {
              const y = oy * stride + ky - pad,
                xx = ox * stride + kx - pad;
              if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
              s += x[(i * h + y) * w + xx] * wt[((o * ci + i) * kh + ky) * kw + kx];
            }
        out[(o * oh + oy) * ow + ox] = s;
      }
  return out;
}

test('folded conv (ONNX OIHW, NCHW) equals BN(conv + bias) of the Keras conv (HWIO, NHWC) to 1e-5', () => {
  const rng = Rng.seeded(3);
  // non-square kernel, I != O, stride 2 and padding: any transpose mistake shows up
  const [h, w, ci, co, kh, kw, stride, pad] = [9, 7, 3, 5, 3, 2, 2, 1];
  const x = randn(rng, h * w * ci);
  const kernel = { shape: [kh, kw, ci, co], data: randn(rng, kh * kw * ci * co, 0, 0.5) };
  const bias = randn(rng, co);
  const gamma = randn(rng, co, 1, 0.3),
    beta = randn(rng, co);
  const mean = randn(rng, co, 0, 2),
    variance = Float32Array.from({ length: co }, () => rng.uniform(0.01, 3));
  const eps = 1e-3;

  const { out: ref, oh, ow } = convNhwc(x, h, w, ci, kernel.data, kh, kw, co, stride, pad);
  const f = foldConvBn(kernel, bias, gamma, beta, mean, variance, eps);
  assert.deepEqual(f.shape, [co, ci, kh, kw]);
  const xNchw = new Float64Array(ci * h * w);
  for (let y = 0; y < h; y++)
    for (let xx = 0; xx < w; xx++) for (let i = 0; i < ci; i++) xNchw[(i * h + y) * w + xx] = x[(y * w + xx) * ci + i];
  const got = convNchw(xNchw, h, w, ci, f.weight, f.bias, kh, kw, co, stride, pad);

  let maxErr = 0,
    maxAbs = 0;
  for (let oy = 0; oy < oh; oy++)
    for (let ox = 0; ox < ow; ox++)
      for (let o = 0; o < co; o++) {
        const r = ref[(oy * ow + ox) * co + o] + bias[o];
        const bn = (gamma[o] * (r - mean[o])) / Math.sqrt(variance[o] + eps) + beta[o];
        maxErr = Math.max(maxErr, Math.abs(got[(o * oh + oy) * ow + ox] - bn));
        maxAbs = Math.max(maxAbs, Math.abs(bn));
      }
  assert.ok(maxAbs > 1, 'outputs are not trivially small');
  assert.ok(maxErr < 1e-5 * maxAbs, `max error ${maxErr} (max |y| ${maxAbs})`);

  // and the layout alone: W[y,x,i,o] lands at [o,i,y,x]
  const t = hwioToOihw(kernel, bias);
  assert.equal(t.weight[((4 * ci + 2) * kh + 1) * kw + 1], kernel.data[((1 * kw + 1) * ci + 2) * co + 4]);
  assert.deepEqual(t.bias, bias);
});

test('a conv without bias folds with bias 0; eps matters', () => {
  const k = { shape: [1, 1, 1, 1], data: new Float32Array([2]) };
  const one = (v: number) => new Float32Array([v]);
  const f = foldConvBn(k, null, one(3), one(0.5), one(1), one(0.999));
  assert.ok(Math.abs(f.weight[0] - 6) < 1e-6); // 2 * 3 / sqrt(1)
  assert.ok(Math.abs(f.bias[0] - (-3 + 0.5)) < 1e-6);
  assert.ok(
    Math.abs(foldConvBn(k, null, one(3), one(0.5), one(1), one(0.999), 1).weight[0] - 6 / Math.sqrt(1.999)) < 1e-6,
  );
  assert.throws(() => foldConvBn(k, null, new Float32Array(2), one(0), one(0), one(1)), DermtlError);
});

test('the ResNet50 conv table: 53 convs, names, and weight shapes summing to 25,636,712 parameters', () => {
  assert.equal(RESNET50_CONVS.length, 53);
  const names = RESNET50_CONVS.map((c) => c.name);
  assert.equal(names[0], 'conv1');
  assert.deepEqual(names.slice(1, 5), ['res2a_branch2a', 'res2a_branch2b', 'res2a_branch2c', 'res2a_branch1']);
  assert.equal(names.at(-1), 'res5c_branch2c');
  assert.deepEqual(
    names.filter((n) => n.endsWith('branch1')),
    ['res2a_branch1', 'res3a_branch1', 'res4a_branch1', 'res5a_branch1'],
  );
  assert.equal(RESNET50_CONVS.find((c) => c.name === 'res4f_branch2b')!.bn, 'bn4f_branch2b');
  let n = 0;
  for (const s of resnet50ExpectedShapes().values()) n += s.reduce((a, b) => a * b, 1);
  assert.equal(n, RESNET50_PARAM_COUNT);
});

test('the conv table matches the Keras topology in the reference model.json (kernel, stride, padding, filters, eps)', async (t) => {
  const text = await readFile(
    new URL('../../../shared/pretrained/resnet50-keras/model.json', import.meta.url),
    'utf8',
  ).catch(() => null);
  if (text === null) return t.skip('shared/ reference model.json not available');
  const layers: { name: string; class_name: string; config: Record<string, unknown> }[] =
    JSON.parse(text).modelTopology.model_config.config.layers;
  const byName = new Map(layers.map((l) => [l.name, l]));
  assert.equal(layers.filter((l) => l.class_name === 'Conv2D').length, 53);
  for (const c of RESNET50_CONVS) {
    const cfg = byName.get(c.name)!.config;
    assert.deepEqual(cfg.kernel_size, [c.kernel, c.kernel], c.name);
    assert.deepEqual(cfg.strides, [c.stride, c.stride], c.name);
    assert.equal(cfg.filters, c.outChannels, c.name);
    assert.equal(cfg.use_bias, true, c.name);
    assert.equal(cfg.padding, c.kernel === 3 ? 'same' : 'valid', c.name);
    const bn = byName.get(c.bn)!;
    assert.equal(bn.class_name, 'BatchNormalization');
    assert.equal(bn.config.epsilon, 1e-3, c.bn);
  }
  assert.deepEqual(byName.get('conv1_pad')!.config.padding, [
    [3, 3],
    [3, 3],
  ]);
});

test('foldResNet50 lists every missing or misshapen weight', () => {
  const shapes = resnet50ExpectedShapes();
  const w: WeightMap = new Map();
  for (const [name, shape] of shapes) {
    if (name === 'bn3b_branch2a/gamma') continue;
    const s = name === 'res5a_branch1/kernel' ? [1, 1, 1024, 1024] : shape;
    w.set(name, { shape: s, data: new Float32Array(0) });
  }
  assert.throws(
    () => foldResNet50(w),
    (e: Error) => {
      assert.ok(e instanceof DermtlError);
      assert.match(e.message, /\(2 problems\)/);
      assert.match(e.message, /bn3b_branch2a\/gamma: missing/);
      assert.match(e.message, /res5a_branch1\/kernel: shape \[1,1,1024,1024\], expected \[1,1,1024,2048\]/);
      return true;
    },
  );
});
