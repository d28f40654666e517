import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SgdMomentum, firstNonFinite, readSgdState, saveSgdState } from '../../src/train/optimizer.ts';
import { decodeTensors, encodeTensors } from '../../src/train/tensorFile.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= 1e-6 * Math.max(1, Math.abs(expected)), `${what}: ${actual} != ${expected}`);

test('SGD momentum, Caffe form, against a hand-computed three-step example', () => {
  // lr 0.1, mu 0.9, weight decay 0.01. v <- mu v + lr*lrMult*(g + wd*decayMult*w); w <- w - v. lr drops to 0.01 before step 3.
  const opt = new SgdMomentum(
    [
      { name: 'fc/w', shape: [1, 1], lrMult: 2 }, // rank 2: decayMult defaults to 1
      { name: 'fc/b', shape: [1], lrMult: 20 }, // rank 1: decayMult defaults to 0
      { name: 'scale', shape: [1], decayMult: 1 }, // explicit decay on a 1-D param, no gradient
    ],
    { lr: 0.1, weightDecay: 0.01 },
  );
  assert.deepEqual(
    opt.params.map((p) => [p.lrMult, p.decayMult]),
    [
      [2, 1],
      [20, 0],
      [1, 1],
    ],
  );
  assert.equal(opt.momentum, 0.9);
  const params = new Map([
    ['fc/w', Float32Array.of(1)],
    ['fc/b', Float32Array.of(0.5)],
    ['scale', Float32Array.of(2)],
  ]);
  const grads = [
    [0.5, 0.01],
    [-0.25, 0.02],
    [0.1, -0.05],
  ];
  const expected = [
    // fc/w: v1 = 0.2*(0.5+0.01*1) = 0.102;  v2 = 0.9*0.102 + 0.2*(-0.25+0.01*0.898) = 0.043596;
    //       v3 = 0.9*0.043596 + 0.02*(0.1+0.01*0.854404) = 0.0414072808
    // fc/b: v1 = 2*0.01 = 0.02;  v2 = 0.018 + 2*0.02 = 0.058;  v3 = 0.0522 + 0.2*(-0.05) = 0.0422
    // scale: v1 = 0.1*0.01*2 = 0.002;  v2 = 0.0018 + 0.1*0.01*1.998 = 0.003798;  v3 = 0.0034182 + 0.01*0.01*1.994202 = 0.0036176202
    { w: 0.898, b: 0.48, s: 1.998 },
    { w: 0.854404, b: 0.422, s: 1.994202 },
    { w: 0.8129967192, b: 0.3798, s: 1.9905843798 },
  ];
  grads.forEach(([gw, gb], k) => {
    if (k === 2) opt.setLearningRate(0.01);
    opt.update(params, { 'fc/w': Float32Array.of(gw), 'fc/b': Float32Array.of(gb), scale: Float32Array.of(0) });
    close(params.get('fc/w')![0], expected[k].w, `fc/w after step ${k + 1}`);
    close(params.get('fc/b')![0], expected[k].b, `fc/b after step ${k + 1}`);
    close(params.get('scale')![0], expected[k].s, `scale after step ${k + 1}`);
  });
  const s = opt.state();
  assert.equal(s.step, 3);
  assert.equal(s.lr, 0.01);
  close(s.buffers.get('fc/w')![0], 0.0414072808, 'fc/w velocity');
  close(s.buffers.get('fc/b')![0], 0.0422, 'fc/b velocity');
});

function randomArray(rng: Rng, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform(-scale, scale));
}

const SPECS = [
  { name: 'conv/w', shape: [4, 3, 3, 3] },
  { name: 'conv/b', shape: [4] },
  { name: 'head/w', shape: [5, 4], lrMult: 10 },
  { name: 'head/b', shape: [5], lrMult: 20 },
];

function freshParams(seed: number): Map<string, Float32Array> {
  const rng = Rng.seeded(seed);
  return new Map(
    SPECS.map((s) => [
      s.name,
      randomArray(
        rng,
        s.shape.reduce((a, b) => a * b, 1),
      ),
    ]),
  );
}

function gradsFor(step: number): Record<string, Float32Array> {
  const rng = Rng.derive(5, 'grads', step);
  return Object.fromEntries(
    SPECS.map((s) => [
      s.name,
      randomArray(
        rng,
        s.shape.reduce((a, b) => a * b, 1),
        0.1,
      ),
    ]),
  );
}

test('state saved to disk and loaded into a new optimizer continues with bit-identical updates', async () => {
  const a = new SgdMomentum(SPECS, { lr: 0.01 });
  const pa = freshParams(1);
  for (let k = 0; k < 3; k++) a.update(pa, gradsFor(k));
  a.setLearningRate(0.001);
  const file = join(await mkdtemp(join(tmpdir(), 'dermtl-opt-')), 'opt.bin');
  await saveSgdState(file, a.state());

  const b = new SgdMomentum(SPECS, { lr: 0.5 });
  b.loadState(await readSgdState(file), file);
  assert.equal(b.learningRate, 0.001);
  assert.equal(b.stepCount, 3);
  const pb = new Map([...pa].map(([k, v]) => [k, v.slice()]));
  for (let k = 3; k < 6; k++) {
    a.update(pa, gradsFor(k));
    b.update(pb, gradsFor(k));
  }
  for (const [name, v] of pa) assert.deepEqual(Buffer.from(pb.get(name)!.buffer), Buffer.from(v.buffer), name);
  for (const [name, v] of a.state().buffers) assert.deepEqual(b.state().buffers.get(name), v, `velocity ${name}`);
  assert.notDeepEqual(pa.get('head/w'), freshParams(1).get('head/w')); // the updates did something
});

test('loading a state from a different optimizer lists every difference', () => {
  const a = new SgdMomentum(SPECS, { lr: 0.01 });
  const b = new SgdMomentum(
    [
      { name: 'conv/w', shape: [4, 3, 3, 3] },
      { name: 'conv/b', shape: [5] },
      { name: 'head/w', shape: [5, 4], lrMult: 1 },
      { name: 'other', shape: [2] },
    ],
    { lr: 0.01, momentum: 0.95 },
  );
  const before = b.state();
  assert.throws(
    () => b.loadState(a.state(), 'ckpt/optimizer.bin'),
    (e: Error) => {
      assert.ok(e instanceof DermtlError);
      assert.match(e.message, /^ckpt\/optimizer\.bin does not match this optimizer \(5 problems\)/);
      assert.match(e.message, /momentum 0\.9 there, 0\.95 here/);
      assert.match(e.message, /param conv\/b has shape \[4\] there, \[5\] here/);
      assert.match(e.message, /param head\/w has lrMult\/decayMult 10\/1 there, 1\/1 here/);
      assert.match(e.message, /param other is missing/);
      assert.match(e.message, /param head\/b is not in this model/);
      return true;
    },
  );
  assert.deepEqual(b.state(), before);
});

test('update with a missing or mis-sized gradient throws and changes nothing', () => {
  const opt = new SgdMomentum(SPECS, { lr: 0.01 });
  const p = freshParams(2);
  const copy = new Map([...p].map(([k, v]) => [k, v.slice()]));
  const g = gradsFor(0);
  assert.throws(
    () => opt.update(p, { ...g, 'head/b': new Float32Array(4) }),
    /gradient of head\/b has 4 values, expected 5/,
  );
  const { 'conv/b': _, ...missing } = g;
  assert.throws(() => opt.update(p, missing), /gradient of conv\/b is missing/);
  assert.deepEqual(p, copy);
  assert.equal(opt.stepCount, 0);
  assert.throws(
    () => new SgdMomentum(SPECS, { lr: -1 }),
    /learning rate must be a finite number in \[0, Infinity\], got -1/,
  );
  assert.throws(() => new SgdMomentum(SPECS, { lr: 0.1, momentum: 1 }), /momentum must be .* got 1/);
  assert.throws(() => new SgdMomentum([SPECS[0], SPECS[0]], { lr: 0.1 }), /conv\/w listed twice/);
});

test('firstNonFinite finds the first NaN or infinity', () => {
  const a = new Float32Array(1001).fill(1.5);
  assert.equal(firstNonFinite(a), -1);
  a[1000] = Infinity;
  assert.equal(firstNonFinite(a), 1000);
  a[7] = NaN;
  assert.equal(firstNonFinite(a), 7);
  a[3] = -Infinity;
  assert.equal(firstNonFinite(a), 3);
  assert.equal(firstNonFinite(Float32Array.of(3.4e38, -3.4e38)), -1);
});

test('tensor file: round trip, and bad magic / truncation / trailing bytes named', async () => {
  const t = [
    { name: 'a', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    { name: 'é', shape: [1], data: Float32Array.of(-0.25) },
  ];
  const bytes = encodeTensors(t, { kind: 'x', n: 3 });
  assert.equal(bytes.length % 4, 0);
  // the data sits at the end, little-endian float32, in header order
  assert.equal(Buffer.from(bytes).readFloatLE(bytes.length - 4), -0.25);
  assert.equal(Buffer.from(bytes).readFloatLE(bytes.length - 28), 1);
  const back = decodeTensors(bytes, 'f.bin');
  assert.deepEqual(back.meta, { kind: 'x', n: 3 });
  assert.deepEqual(
    back.tensors.map((x) => [x.name, x.shape, [...x.data]]),
    [
      ['a', [2, 3], [1, 2, 3, 4, 5, 6]],
      ['é', [1], [-0.25]],
    ],
  );
  // A view at an odd offset decodes too (data is copied out, not viewed).
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual([...decodeTensors(shifted.subarray(1), 'g').tensors[1].data], [-0.25]);

  assert.throws(
    () => decodeTensors(bytes.subarray(0, bytes.length - 3), 'f.bin'),
    new RegExp(`f\\.bin: truncated: expected ${bytes.length} bytes, got ${bytes.length - 3}`),
  );
  assert.throws(() => decodeTensors(Buffer.concat([bytes, Buffer.alloc(4)]), 'f.bin'), /f\.bin: has trailing bytes/);
  assert.throws(
    () => decodeTensors(Buffer.from('hello world, not tensors'), 'h.bin'),
    /h\.bin: not a dermtl tensor file/,
  );
  assert.throws(() => decodeTensors(bytes.subarray(0, 20), 'f.bin'), /f\.bin: truncated \(header says/);

  const dir = await mkdtemp(join(tmpdir(), 'dermtl-tf-'));
  await writeFile(join(dir, 'opt.bin'), bytes);
  await assert.rejects(readSgdState(join(dir, 'opt.bin')), /opt\.bin: not an SGD optimizer state/);
  await assert.rejects(readSgdState(join(dir, 'none.bin')), /cannot read .*none\.bin: file is missing/);
  assert.equal((await readFile(join(dir, 'opt.bin'))).length, bytes.length);
});
