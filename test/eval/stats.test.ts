import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mean, pairedDifference, sampleStd, summarize, tQuantile } from '../../src/eval/stats.ts';
import { DermtlError } from '../../src/util/errors.ts';

const near = (actual: number, expected: number, eps: number) =>
  assert.ok(Math.abs(actual - expected) <= eps, `expected ${expected} +- ${eps}, got ${actual}`);

test('t quantile matches printed table values', () => {
  // two-sided 95% for 5 folds: t_{0.975,4}
  near(tQuantile(0.975, 4), 2.776, 5e-4);
  near(tQuantile(0.975, 1), 12.706, 5e-4);
  near(tQuantile(0.95, 10), 1.812, 5e-4);
  near(tQuantile(0.975, 30), 2.042, 5e-4);
  near(tQuantile(0.995, 5), 4.032, 5e-4);
  near(tQuantile(0.975, 1e6), 1.95996, 1e-4); // -> the normal quantile
  near(tQuantile(0.025, 4), -2.776, 5e-4);
  assert.equal(tQuantile(0.5, 3), 0);
  assert.throws(
    () => tQuantile(1, 4),
    (e: unknown) => e instanceof DermtlError && /probability must be in \(0, 1\)/.test(e.message),
  );
  assert.throws(() => tQuantile(0.975, 0), /degrees of freedom must be a positive number, got 0/);
});

test('mean and sample standard deviation', () => {
  assert.equal(mean([2, 4, 4, 4, 5, 5, 7, 9]), 5);
  near(sampleStd([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7), 1e-12); // n-1 denominator
  assert.deepEqual(summarize([1, 3]), { n: 2, mean: 2, std: Math.SQRT2 });
  assert.throws(() => mean([]), /needs at least 1 value, got 0/);
  assert.throws(() => sampleStd([1]), /needs at least 2 values, got 1/);
  assert.throws(() => mean([1, NaN]), /value 1 is NaN, not a finite number/);
});

test('paired difference over 5 folds with a 95% t interval (hand-checked)', () => {
  const mtl = [0.7, 0.72, 0.68, 0.75, 0.71];
  const lesionOnly = [0.66, 0.7, 0.65, 0.7, 0.69];
  const d = pairedDifference(mtl, lesionOnly);
  // differences .04 .02 .03 .05 .02: mean .032, squared deviations sum 6.8e-4, std sqrt(1.7e-4)
  assert.equal(d.k, 5);
  near(d.mean, 0.032, 1e-12);
  near(d.std, Math.sqrt(1.7e-4), 1e-12);
  near(d.t, 2.7764451, 1e-6);
  near(d.halfWidth, (2.7764451 * Math.sqrt(1.7e-4)) / Math.sqrt(5), 1e-8); // 0.016189
  near(d.ci[0], 0.032 - 0.0161893, 1e-6);
  near(d.ci[1], 0.032 + 0.0161893, 1e-6);
  // a wider level gives a wider interval
  assert.ok(pairedDifference(mtl, lesionOnly, 0.99).halfWidth > d.halfWidth);
  // identical differences: zero width
  const same = pairedDifference([2, 3, 4], [1, 2, 3]);
  assert.deepEqual([same.mean, same.std, same.ci], [1, 0, [1, 1]]);
});

test('paired difference refuses unpaired, too short or non-finite input', () => {
  assert.throws(() => pairedDifference([1, 2, 3], [1, 2]), /3 values against 2/);
  assert.throws(() => pairedDifference([1], [2]), /needs at least 2 values/);
  assert.throws(() => pairedDifference([1, Infinity], [1, 2]), /value 1 is Infinity/);
  assert.throws(() => pairedDifference([1, 2], [1, 2], 1), /confidence level must be in \(0, 1\)/);
});
