import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confusion, predictedClass } from '../../src/metrics/confusion.ts';

test('confusion matrix and balanced accuracy by hand; a tie with the true class counts against it', () => {
  const scores = [
    [0.7, 0.2, 0.1],
    [0.5, 0.5, 0],
    [0.1, 0.8, 0.1],
    [0.3, 0.3, 0.4],
  ];
  const c = confusion(['a', 'b', 'c'], [0, 1, 1, 0], scores);
  assert.deepEqual(c.matrix, [
    [1, 0, 1],
    [1, 1, 0],
    [0, 0, 0],
  ]);
  assert.deepEqual(c.recall, { a: 0.5, b: 0.5, c: null });
  assert.equal(c.balancedAccuracy, 0.5);
  assert.equal(predictedClass([0.5, 0.5], 1), 0);
  assert.equal(predictedClass([0.5, 0.5], 0), 1);
  assert.equal(predictedClass([0.5, 0.5, 0.2], 2), 0);
});
