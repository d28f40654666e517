// The baselines on synthetic ten-crop features: the prior's frequencies, the linear baseline's lambda path and
// choice (validation groups, early stop, the default without validation), test-time augmentation over the crops,
// and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Sample } from '../../src/data/types.ts';
import {
  DEFAULT_LAMBDA,
  LAMBDA_GRID,
  PATIENCE,
  linearBaseline,
  priorScores,
  sitePriorScores,
  type CropFeatures,
} from '../../src/eval/baselines.ts';
import { CENTER_VIEW } from '../../src/train/features.ts';
import type { RunLabels } from '../../src/train/run.ts';
import { Rng } from '../../src/util/rng.ts';

const LABELS: RunLabels = { lesion: ['macule', 'nodule', 'scale'], location: ['arm', 'back', 'face'] };
const DIM = 6;

function sample(i: number, lesions: string[], location: string): Sample {
  return { image: `img${i}.jpg`, path: `/x/img${i}.jpg`, lesions, location, group: `g${i}`, line: i + 2, extra: {} };
}

/**
 * n images whose labels follow their features: feature 0 says nodule, feature 1 the location (arm < 0 < back,
 * face far out); each crop is the image's vector plus noise; some images have no lesion label.
 */
function dataset(n: number, seed = 1): { samples: Sample[]; features: CropFeatures } {
  const rng = Rng.derive(seed, 'baselines');
  const samples: Sample[] = [];
  const data = new Float32Array(n * 10 * DIM);
  for (let i = 0; i < n; i++) {
    const base = Array.from({ length: DIM }, () => rng.normal(0, 1));
    const lesions = base[0] > 0.3 ? ['nodule'] : base[2] > 0.5 ? ['scale', 'macule'] : base[3] > 0 ? ['macule'] : [];
    const location = base[1] > 1.2 ? 'face' : base[1] > 0 ? 'back' : 'arm';
    samples.push(sample(i, lesions, location));
    for (let k = 0; k < 10; k++)
      for (let j = 0; j < DIM; j++) data[(i * 10 + k) * DIM + j] = base[j] + rng.normal(0, 0.3);
  }
  return {
    samples,
    features: { index: new Map(samples.map((s, i) => [s.image, i])), views: { views: 10, dim: DIM, data } },
  };
}

test("prior: the training part's label frequencies, the same row for every test image", () => {
  const train = [
    sample(0, ['macule'], 'arm'),
    sample(1, ['macule', 'scale'], 'arm'),
    sample(2, [], 'back'),
    sample(3, ['nodule'], 'arm'),
  ];
  const test = [sample(4, ['scale'], 'face'), sample(5, [], 'back')];
  const t = priorScores(train, test, LABELS);
  assert.deepEqual(t.images, ['img4.jpg', 'img5.jpg']);
  // lesion shares among the 3 training images WITH a lesion label; location shares among all 4
  for (const row of t.lesion) assert.deepEqual(Array.from(row), [2 / 3, 1 / 3, 1 / 3]);
  for (const row of t.location) assert.deepEqual(Array.from(row), [3 / 4, 1 / 4, 0]);
  // no training image with a lesion label: every lesion score 0, not NaN
  assert.deepEqual(Array.from(priorScores([sample(0, [], 'arm')], test, LABELS).lesion[0]), [0, 0, 0]);
});

test("site prior: the training part's label rates at the test image's site, shrunk towards the label's by 10 pseudo-images", () => {
  const train = [
    sample(0, ['macule'], 'arm'),
    sample(1, ['macule', 'scale'], 'arm'),
    sample(2, [], 'back'), // no lesion label: not counted
    sample(3, ['nodule'], 'arm'),
    sample(4, ['nodule'], 'back'),
  ];
  const test = [sample(5, ['scale'], 'arm'), sample(6, [], 'back'), sample(7, [], 'face'), sample(8, [], 'leg')];
  const t = sitePriorScores(train, test, LABELS);
  assert.deepEqual(t.images, ['img5.jpg', 'img6.jpg', 'img7.jpg', 'img8.jpg']);
  assert.deepEqual(t.locationLabels, []);
  assert.ok(t.location.every((row) => row.length === 0));
  // P(label) with add-one over the 4 counted images: macule 3/6, nodule 3/6, scale 2/6; arm has 3 images, back 1
  const prior = [3 / 6, 3 / 6, 2 / 6];
  const close = (row: Float64Array, want: number[]) =>
    want.forEach((w, i) => assert.ok(Math.abs(row[i] - w) < 1e-12, `${row[i]} vs ${w}`));
  close(t.lesion[0], [(2 + 10 * prior[0]) / 13, (1 + 10 * prior[1]) / 13, (1 + 10 * prior[2]) / 13]);
  close(t.lesion[1], [(0 + 10 * prior[0]) / 11, (1 + 10 * prior[1]) / 11, (0 + 10 * prior[2]) / 11]);
  close(t.lesion[2], prior); // a site no training image has: the label's own rate
  close(t.lesion[3], prior); // a site the labels do not list
});

test('linear: lambdas chosen on the validation groups along the path, then refitted; it learns the signal', async () => {
  const { samples, features } = dataset(160);
  const train = samples.slice(0, 120);
  const test = samples.slice(120);
  const lines: string[] = [];
  const r = await linearBaseline({
    features,
    train,
    test,
    labels: LABELS,
    validation: { fraction: 0.25, seed: 0 },
    tta: '10crop',
    threads: 1,
    log: (l) => lines.push(l),
  });
  const c = r.choice;
  assert.equal(c.rule, 'validation');
  assert.equal(c.validationImages, 30);
  assert.deepEqual(c.grid, [...LAMBDA_GRID]);
  // the path runs from the strongest lambda and stops PATIENCE steps after both heads' best (or at the end)
  assert.deepEqual(
    c.path.map((p) => p.lambda),
    LAMBDA_GRID.slice(0, c.path.length),
  );
  const best = (values: number[], better: (a: number, b: number) => boolean) =>
    values.reduce((bi, v, i) => (better(v, values[bi]) ? i : bi), 0);
  const lesionAt = best(
    c.path.map((p) => p.lesionMapClass!),
    (a, b) => a > b + 1e-12,
  );
  const locationAt = best(
    c.path.map((p) => p.locationLogLoss),
    (a, b) => a < b - 1e-12,
  );
  assert.equal(c.lesionLambda, c.path[lesionAt].lambda);
  assert.equal(c.locationLambda, c.path[locationAt].lambda);
  assert.ok(
    c.path.length === LAMBDA_GRID.length || c.path.length - 1 - Math.max(lesionAt, locationAt) === PATIENCE,
    `path of ${c.path.length}, best at ${lesionAt}/${locationAt}`,
  );
  assert.ok(c.refit.converged);
  assert.equal(lines.length, c.path.length + 1, 'one log line per fit');
  // scores: probabilities in label order, one row per test image; the signal is learned
  assert.deepEqual(
    r.table.images,
    test.map((s) => s.image),
  );
  assert.deepEqual(r.table.lesionLabels, LABELS.lesion);
  for (const row of r.table.location) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  const nodule = test.map((s, i) => [s.lesions.includes('nodule'), r.table.lesion[i][1]] as const);
  const mean = (want: boolean) =>
    nodule.filter(([y]) => y === want).reduce((a, [, p]) => a + p, 0) / nodule.filter(([y]) => y === want).length;
  assert.ok(mean(true) > mean(false) + 0.3, `nodule ${mean(true)} vs ${mean(false)}`);
  const right = test.filter(
    (s, i) => LABELS.location[r.table.location[i].indexOf(Math.max(...r.table.location[i]))] === s.location,
  ).length;
  assert.ok(right / test.length > 0.7, `top-1 ${right / test.length}`);
});

test('linear: without a validation part lambda is the default; --tta center scores the centre crop alone', async () => {
  const { samples, features } = dataset(60, 2);
  const train = samples.slice(0, 45);
  const test = samples.slice(45);
  const opts = { features, train, test, labels: LABELS, validation: { fraction: 0, seed: 0 }, threads: 1 };
  const center = await linearBaseline({ ...opts, tta: 'center' });
  assert.deepEqual(
    [
      center.choice.rule,
      center.choice.reason,
      center.choice.lesionLambda,
      center.choice.locationLambda,
      center.choice.path,
    ],
    ['default', 'validation.fraction is 0', DEFAULT_LAMBDA, DEFAULT_LAMBDA, []],
  );
  // the same training crops; the test images' other crops replaced by noise: centre scores unchanged, 10-crop ones not
  const data = Float32Array.from(features.views.data);
  const rng = Rng.derive(3, 'noise');
  for (const s of test) {
    const i = features.index.get(s.image)!;
    for (let k = 0; k < 10; k++)
      if (k !== CENTER_VIEW) for (let j = 0; j < DIM; j++) data[(i * 10 + k) * DIM + j] = rng.normal(0, 3);
  }
  const noisy = { ...features, views: { ...features.views, data } };
  const center2 = await linearBaseline({ ...opts, features: noisy, tta: 'center' });
  assert.deepEqual(center2.table, center.table);
  const ten = await linearBaseline({ ...opts, tta: '10crop' });
  const ten2 = await linearBaseline({ ...opts, features: noisy, tta: '10crop' });
  assert.notDeepEqual(ten2.table.lesion, ten.table.lesion);
  // a single group: no validation split possible, the default with the reason
  const oneGroup = train.map((s) => ({ ...s, group: 'g' }));
  const r = await linearBaseline({ ...opts, train: oneGroup, validation: { fraction: 0.1, seed: 0 }, tta: 'center' });
  assert.equal(r.choice.rule, 'default');
  assert.match(r.choice.reason!, /needs at least 2 groups/);
});

test('linear: an image without cached features is a bug report, not a silent zero', async () => {
  const { samples, features } = dataset(20, 4);
  const stranger = sample(99, [], 'arm');
  await assert.rejects(
    linearBaseline({
      features,
      train: samples,
      test: [stranger],
      labels: LABELS,
      validation: { fraction: 0, seed: 0 },
      tta: '10crop',
      threads: 1,
    }),
    /no ten-crop features for img99\.jpg/,
  );
});
