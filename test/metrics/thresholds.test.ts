import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxF1Threshold, operatingPoint, pooledOperatingPoint } from '../../src/metrics/thresholds.ts';

test('max-F1 threshold: the best cut by hand, placed between validation scores', () => {
  // ranks: .9+ .8- .7+ .4+ .2-: cut at .9 F1 2/4; at .8 2/5; at .7 4/6; at .4 6/7; at .2 6/8 -> .4, midpoint with .2
  const r = maxF1Threshold([true, false, true, true, false], [0.9, 0.8, 0.7, 0.4, 0.2]);
  assert.deepEqual(r, { threshold: 0.30000000000000004, f1: 6 / 7 });
  // the lowest score wins: the threshold is that score itself
  assert.deepEqual(maxF1Threshold([true, true], [0.3, 0.1]), { threshold: 0.1, f1: 1 });
  // ties form one cut
  assert.equal(maxF1Threshold([true, false], [0.5, 0.5])?.f1, 2 / 3);
  assert.equal(maxF1Threshold([false, false], [0.5, 0.1]), null);
});

test('operating point: present when >= threshold', () => {
  const p = operatingPoint([true, false, true, false], [0.9, 0.5, 0.5, 0.1], 0.5);
  assert.deepEqual(p, { threshold: 0.5, sensitivity: 1, specificity: 0.5 });
  assert.deepEqual(operatingPoint([false], [0.9], 0.5), { threshold: 0.5, sensitivity: null, specificity: 0 });
});

test('pooled operating point: each part at its own threshold, counts summed', () => {
  const p = pooledOperatingPoint([
    { relevant: [true, false, true], scores: [0.6, 0.4, 0.2], threshold: 0.5 }, // TP 1 of 2, TN 1 of 1
    { relevant: [true, false], scores: [0.3, 0.35], threshold: 0.25 }, // TP 1 of 1, TN 0 of 1
  ]);
  assert.deepEqual(p, { sensitivity: 2 / 3, specificity: 1 / 2 });
});
