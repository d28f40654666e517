import { test } from 'node:test';
import assert from 'node:assert/strict';
import { oneVsRestAuc, rocAuc } from '../../src/metrics/roc.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';

const close = (actual: number | null, expected: number, eps = 1e-12) =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= eps, `expected ${expected}, got ${actual}`);
const auc = (labels: number[], scores: number[]) => rocAuc(labels.map(Boolean), scores);

/** The definition, O(n^2): the share of (positive, negative) pairs the positive wins, a tie counting 1/2. */
function pairCount(labels: boolean[], scores: number[]): number | null {
  let wins = 0;
  let pairs = 0;
  labels.forEach((p, i) => {
    if (!p) return;
    labels.forEach((q, j) => {
      if (q) return;
      pairs++;
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    });
  });
  return pairs ? wins / pairs : null;
}

test('ROC AUC: hand-checked vectors (scikit-learn roc_auc_score values)', () => {
  close(auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75); // the scikit-learn documentation example
  close(auc([1, 0, 1, 0], [0.9, 0.8, 0.8, 0.1]), 0.875); // the tie .8/.8 counts 1/2: 3.5 of 4 pairs
  close(auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]), 0.5); // all tied: the diagonal
  close(auc([1, 1, 0], [0.1, 0.2, 0.3]), 0); // every positive below every negative
  close(auc([0, 1, 0, 1, 0], [0.1, 0.9, 0.2, 0.8, 0.3]), 1);
  close(auc([1, 0, 0], [0.3, 0.3, 0.1]), 0.75); // one win, one tie
  close(auc([1, 0], [Infinity, -Infinity]), 1);
  close(auc([1, 0], [-0, 0]), 0.5);
});

test('ROC AUC: equals the pair count on random data with many ties, in any row order', () => {
  const rng = Rng.seeded(3);
  for (let trial = 0; trial < 50; trial++) {
    const n = rng.int(2, 60);
    const labels = Array.from({ length: n }, () => rng.uniform(0, 1) < 0.3);
    // scores on a coarse grid so that ties are frequent
    const scores = Array.from({ length: n }, () => Math.round(rng.uniform(0, 1) * 6) / 6);
    const expected = pairCount(labels, scores);
    const got = rocAuc(labels, scores);
    if (expected === null) assert.equal(got, null);
    else close(got, expected, 1e-12);
  }
});

test('ROC AUC: undefined without positives or negatives; NaN is a user error', () => {
  assert.equal(auc([0, 0], [0.1, 0.2]), null);
  assert.equal(auc([1, 1], [0.1, 0.2]), null);
  assert.equal(auc([], []), null);
  assert.throws(
    () => auc([1, 0], [NaN, 0.2]),
    (e: unknown) => e instanceof DermtlError && /score 0 is NaN/.test(e.message),
  );
  assert.throws(() => auc([1, 0], [0.2]), /2 labels but 1 scores/);
});

test('one-vs-rest AUC: per class and the macro mean over classes with a test image', () => {
  const scores = [
    [0.7, 0.2, 0.1],
    [0.3, 0.6, 0.1],
    [0.5, 0.4, 0.1],
    [0.2, 0.2, 0.6],
  ];
  const truth = [0, 1, 0, 1]; // class c never occurs
  const r = oneVsRestAuc(['a', 'b', 'c'], truth, scores);
  // a: positives .7 .5 vs negatives .3 .2 -> 1; b: positives .6 .2 vs negatives .2 .4 -> (1 + 1 + .5 + 0) / 4
  close(r.auc.a, 1);
  close(r.auc.b, 0.625);
  assert.equal(r.auc.c, null);
  close(r.macro, (1 + 0.625) / 2);
});
