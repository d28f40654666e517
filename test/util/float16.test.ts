// Half precision: every one of the 65,536 halves round-trips; float32 values go to the NEAREST half (ties to even),
// checked against the decoded neighbours; the special values and known constants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHalf, encodeHalf, fromHalf, toHalf } from '../../src/util/float16.ts';
import { Rng } from '../../src/util/rng.ts';

test('known values: 1, -2, 65504 (max), 2^-14 (min normal), 2^-24 (min subnormal), 0, -0, Infinity, NaN', () => {
  assert.equal(toHalf(1), 0x3c00);
  assert.equal(toHalf(-2), 0xc000);
  assert.equal(toHalf(65504), 0x7bff);
  assert.equal(toHalf(2 ** -14), 0x0400);
  assert.equal(toHalf(2 ** -24), 0x0001);
  assert.equal(toHalf(0), 0);
  assert.equal(toHalf(-0), 0x8000);
  assert.equal(toHalf(Infinity), 0x7c00);
  assert.equal(toHalf(-Infinity), 0xfc00);
  assert.equal(toHalf(65520), 0x7c00, 'halfway above the max rounds to Infinity');
  assert.equal(toHalf(1e-9), 0, 'far below the smallest subnormal');
  assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
  assert.equal(fromHalf(0x3555), 0.333251953125);
});

test('every half round-trips exactly (NaNs stay NaN)', () => {
  for (let h = 0; h < 65536; h++) {
    const x = fromHalf(h);
    if (Number.isNaN(x)) assert.ok(Number.isNaN(fromHalf(toHalf(x))));
    else assert.equal(toHalf(x), h, `half 0x${h.toString(16)} = ${x}`);
  }
});

test('float32 values go to the nearest half, ties to even; the bulk functions agree with the scalar ones', () => {
  const r = Rng.seeded(3);
  const xs = new Float32Array(20000);
  for (let i = 0; i < xs.length; i++) xs[i] = r.normal(0, 1) * 2 ** r.int(-26, 17);
  // ties: halfway between two neighbouring halves (1 + k/1024 + 1/2048)
  xs[0] = 1 + 1 / 2048; // between 0x3c00 (even) and 0x3c01 -> 0x3c00
  xs[1] = 1 + 3 / 2048; // between 0x3c01 and 0x3c02 (even) -> 0x3c02
  const h = new Uint16Array(xs.length);
  encodeHalf(xs, h);
  assert.equal(h[0], 0x3c00);
  assert.equal(h[1], 0x3c02);
  for (let i = 0; i < xs.length; i++) {
    assert.equal(h[i], toHalf(xs[i]));
    const x = xs[i];
    const err = Math.abs(fromHalf(h[i]) - x);
    if (!Number.isFinite(fromHalf(h[i]))) continue;
    for (const n of [h[i] - 1, h[i] + 1]) {
      const other = fromHalf(n & 0xffff);
      if (Number.isFinite(other) && (n & 0x7c00) !== 0x7c00)
        assert.ok(err <= Math.abs(other - x), `${x}: 0x${h[i].toString(16)} is not the nearest half`);
    }
  }
  const back = new Float32Array(xs.length + 2);
  decodeHalf(h, back, 2);
  for (let i = 0; i < xs.length; i++) assert.equal(back[i + 2], fromHalf(h[i]));
});
