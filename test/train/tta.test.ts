import { test } from 'node:test';
import assert from 'node:assert/strict';
import { averageViews, ttaViews } from '../../src/train/tta.ts';

test('10crop averages all ten views, center picks view 4', () => {
  assert.deepEqual(ttaViews('10crop'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(ttaViews('center'), [4]);
});

test("averageViews: per image, the mean of the picked views' rows", () => {
  // 2 images x 3 views x 2 classes
  const probs = Float32Array.from([0.1, 0.9, 0.3, 0.7, 0.5, 0.5, 1, 0, 0, 1, 0.25, 0.75]);
  const all = averageViews(probs, 2, 3, 2, [0, 1, 2]);
  assert.ok(Math.abs(all[0][0] - 0.3) < 1e-7 && Math.abs(all[0][1] - 0.7) < 1e-7);
  assert.ok(Math.abs(all[1][0] - 1.25 / 3) < 1e-7 && Math.abs(all[1][1] - 1.75 / 3) < 1e-7);
  const one = averageViews(probs, 2, 3, 2, [1]);
  assert.deepEqual(
    one.map((r) => [...r].map((v) => Math.round(v * 100) / 100)),
    [
      [0.3, 0.7],
      [0, 1],
    ],
  );
  assert.throws(() => averageViews(probs, 3, 3, 2, [0]), /12 values, expected 3 x 3 x 2/);
  assert.throws(() => averageViews(probs, 2, 3, 2, [3]), /out of 0\.\.2/);
});
