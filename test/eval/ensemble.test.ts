import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensembleMax } from '../../src/eval/ensemble.ts';
import { evaluate } from '../../src/metrics/metrics.ts';
import type { ScoreTable } from '../../src/metrics/scores.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { sample } from './helpers.ts';

const a: ScoreTable = {
  images: ['x.jpg', 'y.jpg'],
  lesionLabels: ['dots', 'veil'],
  locationLabels: ['back', 'face', 'palm'],
  lesion: [Float64Array.of(0.1, 0.9), Float64Array.of(0.6, 0.2)],
  location: [Float64Array.of(0.7, 0.2, 0.1), Float64Array.of(0.2, 0.5, 0.3)],
};
// same content as a second model would give it, rows and columns in another order
const b: ScoreTable = {
  images: ['y.jpg', 'x.jpg'],
  lesionLabels: ['veil', 'dots'],
  locationLabels: ['palm', 'back', 'face'],
  lesion: [Float64Array.of(0.4, 0.3), Float64Array.of(0.5, 0.8)],
  location: [Float64Array.of(0.1, 0.1, 0.8), Float64Array.of(0.0, 0.6, 0.4)],
};

test("ensembleMax takes the per-image, per-label maximum, aligned by name, in the first table's order", () => {
  const e = ensembleMax(a, b);
  assert.deepEqual(e.images, ['x.jpg', 'y.jpg']);
  assert.deepEqual(e.lesionLabels, ['dots', 'veil']);
  assert.deepEqual(e.locationLabels, ['back', 'face', 'palm']);
  assert.deepEqual(e.lesion, [Float64Array.of(0.8, 0.9), Float64Array.of(0.6, 0.4)]);
  assert.deepEqual(e.location, [Float64Array.of(0.7, 0.4, 0.1), Float64Array.of(0.2, 0.8, 0.3)]);
  // the inputs are left alone
  assert.deepEqual(a.lesion[0], Float64Array.of(0.1, 0.9));
});

test('a max-ensembled location row need not sum to 1, and top-k still ranks it', () => {
  const e = ensembleMax(a, b);
  const sum = e.location[1].reduce((s, x) => s + x, 0);
  assert.ok(Math.abs(sum - 1.3) < 1e-12);
  const ev = evaluate([sample('x.jpg', ['dots'], 'back'), sample('y.jpg', [], 'palm')], e);
  assert.equal(ev.location?.top1, 0.5); // x: back .7 first; y: palm .3 behind face .8
  assert.equal(ev.location?.top3, 1);
});

test('ensembleMax: different images or labels are one error listing the differences', () => {
  const other: ScoreTable = { ...b, images: ['y.jpg', 'z.jpg'], lesionLabels: ['veil', 'globules'] };
  assert.throws(
    () => ensembleMax(a, other, ['mtl.csv', 'lesion.csv']),
    (e: unknown) =>
      e instanceof DermtlError &&
      /cannot ensemble mtl\.csv and lesion\.csv: they must score the same images and labels \(4 problems\)/.test(
        e.message,
      ) &&
      e.message.includes('image(s) only in mtl.csv: x.jpg') &&
      e.message.includes('image(s) only in lesion.csv: z.jpg') &&
      e.message.includes('column(s) only in mtl.csv: lesion:dots') &&
      e.message.includes('column(s) only in lesion.csv: lesion:globules'),
  );
  // a lesion-only model cannot be combined with a two-head one
  assert.throws(
    () => ensembleMax(a, { ...b, locationLabels: [], location: [] }),
    /column\(s\) only in first: location:back, location:face, location:palm/,
  );
});
