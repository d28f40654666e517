import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ECE_BINS, lesionCalibration, locationCalibration, reliability } from '../../src/metrics/calibration.ts';

const close = (actual: number | null | undefined, expected: number, eps = 1e-12) =>
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) <= eps, `expected ${expected}, got ${actual}`);

test('reliability: 15 equal-width bins, ECE and MCE by hand', () => {
  // bin 1 ([1/15, 2/15)): .1, .1 with outcomes 1, 0 -> conf .1, acc .5; bin 14: .95, 1 (1 falls in the last bin), both hits
  const r = reliability([0.1, 0.1, 0.95, 1], [true, false, true, true]);
  assert.equal(r.bins.length, ECE_BINS);
  assert.equal(r.n, 4);
  close(r.bins[1].confidence, 0.1);
  close(r.bins[1].accuracy, 0.5);
  assert.equal(r.bins[1].count, 2);
  close(r.bins[14].confidence, 0.975);
  assert.equal(r.bins[0].confidence, null);
  close(r.ece, 0.5 * 0.4 + 0.5 * 0.025);
  close(r.mce, 0.4);
  assert.throws(() => reliability([1.5], [true]), /not a probability/);
});

test('lesion calibration pools every (image, label) pair; location uses the top probability (ties count against)', () => {
  const l = lesionCalibration(
    ['a', 'b'],
    [['a'], []],
    [
      [0.8, 0.2],
      [0.4, 0.1],
    ],
  );
  assert.ok(l);
  close(l.brier, (0.04 + 0.04 + 0.16 + 0.01) / 4);
  assert.equal(l.n, 4);
  // pairs: .8 (y1) bin 12, .2 (y0) bin 3, .4 (y0) bin 6, .1 (y0) bin 1: ECE = (.2 + .2 + .4 + .1) / 4
  close(l.ece, 0.9 / 4);
  assert.equal(lesionCalibration(['a'], [['a']], [[2.5]]), null, 'logits are not probabilities');

  const c = locationCalibration(
    [0, 1, 2],
    [
      [0.6, 0.3, 0.1],
      [0.5, 0.5, 0],
      [0.2, 0.2, 0.6],
    ],
  );
  assert.ok(c);
  // image 1 ties .5/.5 with its true class: not correct; confidence .5
  close(c.brier, (0.16 + 0.09 + 0.01 + (0.25 + 0.25 + 0) + (0.04 + 0.04 + 0.16)) / 3);
  // bins: .6 hit (bin 9) -> .4, .5 miss (bin 7) -> .5, .6 hit (bin 9): bin 9 conf .6 acc 1
  close(c.ece, (2 / 3) * 0.4 + (1 / 3) * 0.5);
});
