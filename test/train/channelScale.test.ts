// SgdMomentum's per-channel scale: SGD on folded conv weights W' = s W with channelScale s^2 follows exactly the
// trajectory of SGD on the original W (frozen BatchNorm, Caffe fine-tuning), momentum and weight decay included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SgdMomentum } from '../../src/train/optimizer.ts';
import { multipliersOf } from '../../src/train/trainTask.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { Graph } from '../../src/graph/index.ts';
import type { FoldedResNet50 } from '../../src/models/foldBatchNorm.ts';
import { Rng } from '../../src/util/rng.ts';

test("folded-space SGD with channelScale s^2 equals original-space SGD (W' = s W after every step)", () => {
  const shape = [3, 2, 2, 2];
  const per = 8;
  const s = Float32Array.from([0.02, 1, 7]); // conv1-like, neutral, res4-like BN scales
  const rng = Rng.seeded(3);
  const target = Float32Array.from({ length: 24 }, () => rng.normal());
  const w = Float32Array.from({ length: 24 }, () => rng.normal());
  const folded = Float32Array.from(w, (v, i) => v * s[Math.floor(i / per)]);
  const opts = { lr: 0.05, momentum: 0.9, weightDecay: 0.01 };
  const original = new SgdMomentum([{ name: 'c/weight', shape }], opts);
  const inFolded = new SgdMomentum(
    [{ name: 'c/weight', shape, channelScale: Float32Array.from(s, (x) => x * x) }],
    opts,
  );
  const plain = new SgdMomentum([{ name: 'c/weight', shape }], opts);
  const plainW = folded.slice();
  // the same loss in both parameterisations: L(W) = 0.5 |W - T|^2, so dL/dW' = (W'/s - T) / s
  const gradOriginal = () => Float32Array.from(w, (v, i) => v - target[i]);
  const gradFolded = (x: Float32Array) =>
    Float32Array.from(x, (v, i) => (v / s[Math.floor(i / per)] - target[i]) / s[Math.floor(i / per)]);
  for (let step = 0; step < 8; step++) {
    original.update(new Map([['c/weight', w]]), { 'c/weight': gradOriginal() });
    inFolded.update(new Map([['c/weight', folded]]), { 'c/weight': gradFolded(folded) });
    plain.update(new Map([['c/weight', plainW]]), { 'c/weight': gradFolded(plainW) });
    for (let i = 0; i < 24; i++) {
      const want = w[i] * s[Math.floor(i / per)];
      assert.ok(
        Math.abs(folded[i] - want) <= 1e-5 * Math.max(1, Math.abs(want)),
        `step ${step} [${i}]: ${folded[i]} vs ${want}`,
      );
    }
  }
  assert.ok(
    plainW.some((v) => !Number.isFinite(v) || Math.abs(v) > 1e3),
    'without the scale the s=0.02 channel diverges',
  );
  assert.throws(
    () => new SgdMomentum([{ name: 'x', shape, channelScale: new Float32Array(2) }], opts),
    /channelScale of x: 2 values, dimension 0 is 3/,
  );
  assert.throws(
    () => new SgdMomentum([{ name: 'x', shape, channelScale: Float32Array.from([1, -1, 1]) }], opts),
    /finite and >= 0/,
  );
});

test('multipliersOf: heads x10 / x20, trunk x1, and (gamma/sigma)^2 channel scales on folded trunk weights only', () => {
  const g = new Graph();
  const params: [string, number[]][] = [
    ['conv1/weight', [2, 3, 1, 1]],
    ['conv1/bias', [2]],
    ['heads/lesion/weight', [4, 2]],
    ['heads/lesion/bias', [4]],
  ];
  for (const [name, shape] of params) {
    g.param(name, shape, new Float32Array(shape.reduce((a, b) => a * b, 1)), { trainable: true });
  }
  const folded = {
    convs: new Map([
      [
        'conv1',
        {
          weight: new Float32Array(6),
          bias: new Float32Array(2),
          shape: [2, 3, 1, 1],
          scale: Float32Array.from([0.5, 3]),
        },
      ],
    ]),
  } as unknown as FoldedResNet50;
  const m = multipliersOf(g, resolveConfig(), folded);
  assert.deepEqual(m['conv1/weight'], { lrMult: 1, channelScale: Float32Array.from([0.25, 9]) });
  assert.deepEqual(m['conv1/bias'], { lrMult: 1 });
  assert.deepEqual(m['heads/lesion/weight'], { lrMult: 10 });
  assert.deepEqual(m['heads/lesion/bias'], { lrMult: 20 });
  assert.deepEqual(multipliersOf(g, resolveConfig())['conv1/weight'], { lrMult: 1 });
});
