// The site-corrected lesion-only scores (src/eval/siteCorrection.ts): logit p + the training part's site log-odds,
// checked by hand on a small case; an image at a site the labels do not list keeps its scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Sample } from '../../src/data/types.ts';
import { siteCorrected } from '../../src/eval/siteCorrection.ts';
import type { ScoreTable } from '../../src/metrics/scores.ts';

function sample(i: number, lesions: string[], location: string): Sample {
  return { image: `img${i}.jpg`, path: `/x/img${i}.jpg`, lesions, location, group: `g${i}`, line: i + 2, extra: {} };
}

test('siteCorrected: sigmoid(logit p + logit P(label | site) - logit P(label)), the rates from the training part', () => {
  const train = [
    sample(0, ['macule'], 'arm'),
    sample(1, ['macule', 'scale'], 'arm'),
    sample(2, ['scale'], 'back'),
    sample(3, [], 'back'), // no lesion label: not counted
  ];
  const test = [sample(4, [], 'arm'), sample(5, [], 'back'), sample(6, [], 'leg')];
  const table: ScoreTable = {
    images: test.map((s) => s.image),
    lesionLabels: ['macule', 'scale'],
    locationLabels: ['arm', 'back'],
    lesion: [Float64Array.of(0.5, 0.2), Float64Array.of(0.9, 0.5), Float64Array.of(0.3, 0.6)],
    location: test.map(() => Float64Array.of(0.5, 0.5)),
  };
  const out = siteCorrected(table, new Map(test.map((s) => [s.image, s])), train, ['arm', 'back']);
  const logit = (p: number) => Math.log(p / (1 - p));
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  // 3 counted images (arm 2, back 1): P(macule) = (2+1)/5, P(scale) = (2+1)/5; rates shrunk by 10 pseudo-images
  const prior = 3 / 5;
  const rate = {
    macule: { arm: (2 + 10 * prior) / 12, back: (0 + 10 * prior) / 11 },
    scale: { arm: (1 + 10 * prior) / 12, back: (1 + 10 * prior) / 11 },
  };
  const want = [
    [
      sigmoid(logit(0.5) + logit(rate.macule.arm) - logit(prior)),
      sigmoid(logit(0.2) + logit(rate.scale.arm) - logit(prior)),
    ],
    [
      sigmoid(logit(0.9) + logit(rate.macule.back) - logit(prior)),
      sigmoid(logit(0.5) + logit(rate.scale.back) - logit(prior)),
    ],
    [0.3, 0.6], // a site not among the locations: unchanged
  ];
  out.lesion.forEach((row, r) =>
    row.forEach((x, i) => assert.ok(Math.abs(x - want[r][i]) < 1e-6, `${r},${i}: ${x} vs ${want[r][i]}`)),
  );
  assert.ok(out.lesion[0][0] > 0.5, 'macule is commoner on the arm than overall: its score rises there');
  assert.ok(out.lesion[1][0] < 0.9, 'and falls on the back');
  assert.deepEqual(out.locationLabels, []);
  assert.deepEqual(out.images, table.images);
  assert.deepEqual(Array.from(table.lesion[0]), [0.5, 0.2], 'the input table is left as it was');
});
