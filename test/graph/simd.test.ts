import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Float32Arena, kernelModuleBytes } from '../../src/graph/simd.ts';
import { sgdKernel } from '../../src/train/optimizer.ts';
import { Rng } from '../../src/util/rng.ts';

function arena(floats: number, arrays: number): Float32Arena {
  const a = Float32Arena.create(floats, arrays);
  assert.ok(a, 'Node 20 has WebAssembly SIMD');
  return a;
}

test('the generated module is valid WebAssembly and exports the two kernels', () => {
  const bytes = kernelModuleBytes();
  assert.deepEqual([...bytes.subarray(0, 8)], [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  assert.ok(WebAssembly.validate(bytes));
  const exports = WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => `${e.name}:${e.kind}`);
  assert.deepEqual(exports, ['sgd:function', 'nonFinite:function']);
});

test('SIMD SGD update is bit-identical to the JS kernel (odd lengths, unaligned sub-arrays, wide value range)', () => {
  const n = 1003;
  const a = arena(3 * n, 3);
  const [w, v, g] = [a.alloc(n), a.alloc(n), a.alloc(n)];
  const rng = Rng.seeded(11);
  for (let i = 0; i < n; i++) {
    w[i] = rng.normal(0, 1);
    v[i] = rng.normal(0, 1e-3);
    g[i] = rng.normal(0, 1) * Math.exp(rng.uniform(-20, 20));
  }
  const [w0, w2, v2, g2] = [w.slice(), w.slice(), v.slice(), g.slice()];
  // whole arrays, then sub-arrays starting 1 float past a 16-byte boundary with a 3-float tail (the per-channel path)
  const spans: [number, number][] = [
    [0, n],
    [1, 1 + 4 * 37 + 3],
    [5, 6],
    [200, 200],
  ];
  for (const [mu, rate, decay] of [
    [0.9, 1e-3, 1e-4],
    [0.9, 2e-2, 0],
    [0, 0.5, 3.7e-3],
  ]) {
    for (const [s, e] of spans) {
      a.sgd(w.subarray(s, e), v.subarray(s, e), g.subarray(s, e), mu, rate, decay);
      sgdKernel(w2.subarray(s, e), v2.subarray(s, e), g2.subarray(s, e), mu, rate, decay);
    }
  }
  assert.deepEqual(Buffer.from(w.slice().buffer), Buffer.from(w2.buffer));
  assert.deepEqual(Buffer.from(v.slice().buffer), Buffer.from(v2.buffer));
  assert.ok(w.filter((x, i) => x !== w0[i]).length > n / 2, 'the updates changed most weights');
});

test('SIMD finite scan finds NaN and +-Inf anywhere (blocks of 16 and the tail), never a finite value', () => {
  const n = 70;
  const a = arena(n + 17, 2);
  const x = a.alloc(n);
  x.set(Float32Array.from({ length: n }, (_, i) => (i % 2 ? -3.4e38 : 1e-45)));
  assert.equal(a.hasNonFinite(x), false);
  assert.equal(a.hasNonFinite(x.subarray(3, 3)), false);
  for (const at of [0, 15, 16, 47, 63, 64, 69]) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const keep = x[at];
      x[at] = bad;
      assert.equal(a.hasNonFinite(x), true, `${bad} at ${at}`);
      assert.equal(a.hasNonFinite(x.subarray(at)), true, `${bad} at the start of a sub-array`);
      x[at] = keep;
    }
  }
  assert.equal(a.hasNonFinite(x), false);
});

test('arena arrays are zeroed, 16-byte aligned, owned, and the arena refuses to overflow', () => {
  const a = arena(10, 2);
  const p = a.alloc(5);
  const q = a.alloc(5);
  assert.equal(p.byteOffset % 16, 0);
  assert.equal(q.byteOffset % 16, 0);
  assert.ok(q.byteOffset >= p.byteOffset + 20);
  assert.deepEqual([...q], [0, 0, 0, 0, 0]);
  assert.ok(a.owns(p) && !a.owns(new Float32Array(5)));
  assert.throws(() => a.alloc(65536), /no room for 65536 more floats/);
});

test('no arena for more floats than a 32-bit WebAssembly memory holds (callers fall back to plain arrays)', () => {
  assert.equal(Float32Arena.create(2 ** 30, 1), undefined);
  assert.ok(Float32Arena.create(2 ** 20, 1));
});
