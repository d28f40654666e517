import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  averagePrecision,
  evaluate,
  evaluationJson,
  lesionMetrics,
  locationMetrics,
  rankOfTrue,
} from '../../src/metrics/metrics.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';
import { sample } from '../eval/helpers.ts';

const close = (actual: number | null, expected: number, eps = 1e-12) =>
  assert.ok(actual !== null && Math.abs(actual - expected) <= eps, `expected ${expected}, got ${actual}`);
const ap = (labels: number[], scores: number[]) => averagePrecision(labels.map(Boolean), scores);

test('AP: hand-checked vectors (scikit-learn average_precision_score semantics)', () => {
  // .8(+) .4(-) .35(+) .1(-): 1/2 * 1 + 1/2 * 2/3
  close(ap([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 5 / 6);
  // one threshold .5 holds both positives among 3 items: recall 1 at precision 2/3
  close(ap([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.1]), 2 / 3);
  // every item relevant: precision 1 everywhere
  close(ap([1, 1, 1], [0.3, 0.9, 0.1]), 1);
  // one positive at rank k of distinct scores: AP = 1/k
  close(ap([0, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]), 1 / 3);
  close(ap([1, 0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4, 0.5]), 1 / 5);
  // all four scores tied, one positive: a single threshold with precision 1/4
  close(ap([0, 1, 0, 0], [0.5, 0.5, 0.5, 0.5]), 1 / 4);
  // positives ranked last (4th and 5th of 5): 1/2 * 1/4 + 1/2 * 2/5
  close(ap([1, 1, 0, 0, 0], [0.1, 0.2, 0.3, 0.4, 0.5]), 0.325);
  // perfect ranking
  close(ap([0, 1, 0, 1, 0], [0.1, 0.9, 0.2, 0.8, 0.3]), 1);
  // infinite scores order like any others; +Infinity ties with itself
  close(ap([1, 0], [Infinity, -Infinity]), 1);
  close(ap([0, 1], [Infinity, Infinity]), 1 / 2);
  // -0 and 0 are one threshold
  close(ap([1, 0], [-0, 0]), 1 / 2);
});

test('AP: no positive is undefined (null); a NaN score is a user error; lengths must agree', () => {
  assert.equal(ap([0, 0, 0], [0.1, 0.2, 0.3]), null);
  assert.equal(ap([], []), null);
  assert.throws(
    () => ap([1, 0, 1], [0.2, NaN, 0.3]),
    (e: unknown) => e instanceof DermtlError && /score 1 is NaN/.test(e.message),
  );
  assert.throws(() => ap([1, 0], [0.2]), /2 labels but 1 scores/);
});

/** Brute force, written independently: mean over positives of the precision at that positive's score, counting every tied item. */
function bruteForceAp(labels: boolean[], scores: number[]): number | null {
  const precisions: number[] = [];
  labels.forEach((pos, i) => {
    if (!pos) return;
    let retrieved = 0;
    let relevant = 0;
    scores.forEach((s, j) => {
      if (s >= scores[i]) {
        retrieved++;
        if (labels[j]) relevant++;
      }
    });
    precisions.push(relevant / retrieved);
  });
  return precisions.length ? precisions.reduce((a, b) => a + b, 0) / precisions.length : null;
}

test('AP equals an independent brute force on random data with many ties, and ignores input order', () => {
  const rng = Rng.seeded(17);
  let withTies = 0;
  for (let trial = 0; trial < 300; trial++) {
    const n = rng.int(1, 40);
    const levels = rng.int(1, 6); // few distinct values: lots of ties
    const scores = Array.from({ length: n }, () => rng.int(0, levels) / levels);
    const labels = Array.from({ length: n }, () => rng.bool(0.3));
    const expected = bruteForceAp(labels, scores);
    const got = averagePrecision(labels, scores);
    if (expected === null) assert.equal(got, null);
    else close(got, expected, 1e-12);
    if (new Set(scores).size < n) withTies++;
    const order = rng.shuffle(scores.map((_, i) => i));
    const shuffled = averagePrecision(
      order.map((i) => labels[i]),
      order.map((i) => scores[i]),
    );
    assert.equal(shuffled, got, 'AP must not depend on the order of the items');
  }
  assert.ok(withTies > 200, `the random cases must exercise ties (${withTies})`);
});

test('rankOfTrue: ties with the true class count against it', () => {
  assert.equal(rankOfTrue([0.7, 0.1, 0.2], 0), 1);
  assert.equal(rankOfTrue([0.5, 0.5, 0.0], 0), 2);
  assert.equal(rankOfTrue([0.5, 0.5, 0.0], 1), 2);
  assert.equal(rankOfTrue([0.25, 0.25, 0.25, 0.25], 3), 4);
  assert.equal(rankOfTrue([1], 0), 1);
  assert.throws(() => rankOfTrue([0.1, NaN], 0), DermtlError);
  assert.throws(() => rankOfTrue([0.1, 0.2], 2), /outside 0\.\.1/);
});

test('location top-1/top-3 with ties, and positives per location', () => {
  const labels = ['x', 'y', 'z', 'w'];
  const m = locationMetrics(
    labels,
    ['x', 'y', 'z', 'w', 'x'],
    [
      [0.7, 0.1, 0.1, 0.1], // rank 1
      [0.5, 0.5, 0, 0], // y ties with x: rank 2 (top-3 only)
      [0.3, 0.3, 0.3, 0.1], // rank 3
      [0.25, 0.25, 0.25, 0.25], // all tied: rank 4, a miss
      [0.1, 0.2, 0.3, 0.4], // rank 4
    ],
  );
  assert.equal(m.top1, 1 / 5);
  assert.equal(m.top3, 3 / 5);
  assert.equal(m.n, 5);
  assert.deepEqual(m.positives, { x: 2, y: 1, z: 1, w: 1 });
  // with two classes every image is in the top 3
  assert.equal(
    locationMetrics(
      ['a', 'b'],
      ['a', 'b'],
      [
        [0, 1],
        [0, 1],
      ],
    ).top3,
    1,
  );
  assert.throws(() => locationMetrics(['a', 'b'], ['c'], [[0, 1]]), /true location "c" of image 0 has no score column/);
});

test('lesion metrics on a small hand example: AP per class, mapClass, mapImage, skipped', () => {
  const labels = ['a', 'b', 'c', 'd'];
  const truth = [['a'], ['b', 'c'], [], ['a']];
  const scores = [
    [0.9, 0.1, 0.2, 0], // image AP 1
    [0.8, 0.7, 0.1, 0], // b at rank 2, c at rank 3: (1/2 + 2/3) / 2 = 7/12
    [0.3, 0.3, 0.3, 0], // no lesion: not in mapImage
    [0.5, 0.5, 0.5, 0], // a tied with b, c: 1/3
  ];
  const m = lesionMetrics(labels, truth, scores);
  // a: .9(+) .8 .5(+) .3 -> 1/2 + 1/2 * 2/3; b: img2 first -> 1; c: img2 last of 4 -> 1/4
  close(m.ap.a, 5 / 6);
  close(m.ap.b, 1);
  close(m.ap.c, 1 / 4);
  assert.deepEqual(Object.keys(m.ap), ['a', 'b', 'c']);
  assert.deepEqual(m.skipped, ['d']);
  assert.deepEqual(m.positives, { a: 2, b: 1, c: 1, d: 0 });
  close(m.mapClass, (5 / 6 + 1 + 1 / 4) / 3); // 25/36
  close(m.mapImage, (1 + 7 / 12 + 1 / 3) / 3); // 23/36
  assert.equal(m.mapImageCount, 3);
  assert.equal(m.n, 4);
  // no positives at all: both means undefined
  const none = lesionMetrics(['a'], [[], []], [[0.1], [0.2]]);
  assert.equal(none.mapClass, null);
  assert.equal(none.mapImage, null);
  assert.deepEqual(none.skipped, ['a']);
});

test('evaluate joins samples and scores; evaluationJson keeps only what the columns allow', () => {
  const samples = [sample('i1.jpg', ['a'], 'x'), sample('i2.jpg', [], 'y')];
  const lesionOnly = evaluate(samples, {
    images: ['i1.jpg', 'i2.jpg'],
    lesionLabels: ['a'],
    locationLabels: [],
    lesion: [Float64Array.of(0.2), Float64Array.of(0.9)],
    location: [new Float64Array(0), new Float64Array(0)],
  });
  assert.equal(lesionOnly.location, undefined);
  const doc = evaluationJson(lesionOnly, ['zz']);
  assert.deepEqual(Object.keys(doc).sort(), [
    'ap',
    'auc',
    'calibration',
    'mapClass',
    'mapImage',
    'mapImageImages',
    'meanAuc',
    'n',
    'positives',
    'skipped',
  ]);
  assert.deepEqual(doc.auc, { a: 0 });
  assert.deepEqual(Object.keys(doc.calibration as object), ['lesion']);
  assert.deepEqual(doc.ap, { a: 0.5 });
  assert.deepEqual(doc.skipped, [{ label: 'zz', reason: 'no score column' }]);
  const locationOnly = evaluationJson(
    evaluate(samples, {
      images: ['i1.jpg', 'i2.jpg'],
      lesionLabels: [],
      locationLabels: ['y', 'x'],
      lesion: [],
      location: [Float64Array.of(0.1, 0.9), Float64Array.of(0.6, 0.4)],
    }),
  );
  const { calibration, ...rest } = locationOnly;
  assert.deepEqual(rest, {
    n: 2,
    top1: 1,
    top3: 1,
    balancedAccuracy: 1,
    locationAuc: { y: 1, x: 1 },
    macroAuc: 1,
    confusion: {
      labels: ['y', 'x'],
      matrix: [
        [1, 0],
        [0, 1],
      ],
    },
    skipped: [],
    positives: { location: { y: 1, x: 1 } },
  });
  assert.deepEqual(Object.keys(calibration as object), ['location']);
  assert.throws(
    () =>
      evaluate(samples, {
        images: ['i2.jpg', 'i1.jpg'],
        lesionLabels: ['a'],
        locationLabels: [],
        lesion: [],
        location: [],
      }),
    /row 0 scores i2\.jpg/,
  );
});

test('a perfect ranking gives AP exactly 1, never 1 + 1 ulp', () => {
  // Summing per-threshold fractions first used to give 1.0000000000000002 for some sizes.
  for (let positives = 1; positives <= 60; positives++) {
    for (const negatives of [0, 1, 7, 50]) {
      const relevant = [...Array(positives).fill(true), ...Array(negatives).fill(false)];
      const scores = relevant.map((_, i) => 1 - i / (relevant.length + 1));
      assert.equal(averagePrecision(relevant, scores), 1);
    }
  }
});
