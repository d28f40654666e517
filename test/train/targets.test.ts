// Labels, the grouped validation split, targets, padded partial batches (exact gradient) and seeded dropout masks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Sample } from '../../src/data/types.ts';
import { buildTrainingGraph, GraphSession } from '../../src/graph/index.ts';
import { HEAD_TENSORS } from '../../src/models/heads.ts';
import type { NetworkSpec } from '../../src/models/network.ts';
import { buildFeaturesNetwork, FEATURES_INPUT } from '../../src/train/frozen.ts';
import {
  checkTrainable,
  dropoutMasks,
  encodeTargets,
  labelFeeds,
  labelsFor,
  noDropout,
  validationSplit,
} from '../../src/train/targets.ts';
import { Rng } from '../../src/util/rng.ts';

const sample = (image: string, lesions: string[], location: string, group = image): Sample => ({
  image,
  path: `/x/${image}`,
  lesions,
  location,
  group,
  line: 2,
  extra: {},
});

const SAMPLES = [
  sample('a', ['scale', 'crust'], 'leg', 'g1'),
  sample('b', [], 'arm', 'g1'),
  sample('c', ['papule'], 'leg', 'g2'),
  sample('d', ['scale'], 'face', 'g3'),
];

test('label lists come from every manifest image, sorted; a task keeps only its head', () => {
  assert.deepEqual(labelsFor('mtl', SAMPLES), {
    lesion: ['crust', 'papule', 'scale'],
    location: ['arm', 'face', 'leg'],
  });
  assert.deepEqual(labelsFor('lesion', SAMPLES), { lesion: ['crust', 'papule', 'scale'], location: [] });
  assert.deepEqual(labelsFor('location', SAMPLES), { lesion: [], location: ['arm', 'face', 'leg'] });
});

test('a task with nothing to learn in the training part is a clear error', () => {
  const labels = labelsFor('mtl', SAMPLES);
  assert.throws(
    () => checkTrainable('lesion', labels, [SAMPLES[1]], 'm.csv fold 0'),
    /m\.csv fold 0: task lesion needs lesion labels, but no training image has one/,
  );
  assert.throws(
    () => checkTrainable('mtl', labels, [SAMPLES[0], SAMPLES[2]], 'here'),
    /needs at least 2 body locations among the training images, they all show "leg"/,
  );
  assert.throws(
    () => checkTrainable('location', labelsFor('location', [SAMPLES[0]]), [SAMPLES[0]], 'here'),
    /the manifest has 1 \(leg\)/,
  );
  assert.throws(() => checkTrainable('location', labels, [], 'here'), /the training part has no images/);
  checkTrainable('mtl', labels, SAMPLES, 'ok');
});

test('validation split: whole groups, about the fraction, seeded, at least one group each side', () => {
  const many = Array.from({ length: 60 }, (_, i) =>
    sample(`i${i}`, ['scale'], i % 2 ? 'leg' : 'arm', `g${Math.floor(i / 3)}`),
  );
  const s = validationSplit(many, 0.1, 7);
  assert.equal(s.validation.length, 6, '2 of 20 groups x 3 images');
  assert.equal(s.train.length + s.validation.length, 60);
  const vg = new Set(s.validation.map((x) => x.group));
  assert.equal(vg.size, 2);
  assert.ok(s.train.every((x) => !vg.has(x.group)));
  assert.deepEqual(validationSplit(many, 0.1, 7), s);
  assert.notDeepEqual(validationSplit(many, 0.1, 8).validation, s.validation);
  assert.equal(validationSplit(SAMPLES, 0.01, 0).validation.length > 0, true, 'at least one group');
  assert.equal(validationSplit(SAMPLES, 0.9, 0).train.length > 0, true, 'at least one group left to train on');
  assert.deepEqual(validationSplit(many, 0, 1).validation, []);
  assert.throws(() => validationSplit([SAMPLES[0], SAMPLES[1]], 0.1, 0), /at least 2 groups/);
});

test('targets and padded label feeds: weights scaled by B/r, padding has weight 0 and location -1', () => {
  const labels = labelsFor('mtl', SAMPLES);
  const t = encodeTargets(SAMPLES, labels);
  assert.deepEqual([...t.lesion], [1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
  assert.deepEqual([...t.lesionKnown], [1, 0, 1, 1], 'no lesion label: unknown, masked');
  assert.deepEqual([...t.location], [2, 0, 2, 1]);
  const f = labelFeeds(t, labels, [3, 1], 5);
  assert.deepEqual([...(f[HEAD_TENSORS.lesionWeights] as Float32Array)], [2.5, 0, 0, 0, 0]);
  assert.deepEqual([...(f[HEAD_TENSORS.locationWeights] as Float32Array)], [2.5, 2.5, 0, 0, 0]);
  assert.deepEqual([...(f[HEAD_TENSORS.locationTargets] as BigInt64Array)], [1n, 0n, -1n, -1n, -1n]);
  assert.deepEqual([...(f[HEAD_TENSORS.lesionTargets] as Float32Array)].slice(0, 6), [0, 0, 1, 0, 0, 0]);
  assert.ok([...(f[HEAD_TENSORS.lesionTargets] as Float32Array)].slice(6).every((v) => v === 0));
});

test('a padded partial batch gives exactly the loss and gradient of the same samples in a graph of their own size', async () => {
  const labels = labelsFor('mtl', SAMPLES);
  const spec: NetworkSpec = {
    trunk: { depth: 'tiny' },
    imageSize: 32,
    seed: 3,
    heads: { lesion: 3, location: 3, shared: { hidden: 6, dropout: 0.5 } },
  };
  const dim = 5;
  const rng = Rng.seeded(1);
  const feats = Float32Array.from({ length: 3 * dim }, () => rng.normal());
  const t = encodeTargets(SAMPLES, labels);
  const rows = [0, 2, 3];
  const run = async (batch: number) => {
    const net = buildFeaturesNetwork(spec, dim, batch, 'train');
    const g = buildTrainingGraph(net.graph, net.losses);
    const s = await GraphSession.fromGraph(g, { threads: 1 });
    const padded = new Float32Array(batch * dim);
    padded.set(feats);
    const masks = dropoutMasks(net.heads.dropoutMasks, 5, 0, 0);
    // the same mask rows for the real samples in both graphs
    const m = masks.shared_dropout_mask as Float32Array;
    const params = Object.fromEntries(net.graph.params({ trainable: true }).map((p) => [p.name, p.data]));
    const out = await s.run({
      ...params,
      [FEATURES_INPUT]: padded,
      ...labelFeeds(t, labels, rows, batch),
      shared_dropout_mask: Float32Array.from({ length: batch * 6 }, (_, i) => (i < 3 * 6 ? m[i] : 0)),
    });
    await s.release();
    return out;
  };
  const exact = await run(3);
  const padded = await run(8);
  for (const name of Object.keys(exact).filter((k) => k.endsWith('_loss') || k.startsWith('grad/'))) {
    const a = exact[name].data as Float32Array;
    const b = padded[name].data as Float32Array;
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++)
      assert.ok(Math.abs(a[i] - b[i]) <= 1e-6 * Math.max(1, Math.abs(a[i])), `${name}[${i}]: ${a[i]} vs ${b[i]}`);
    assert.ok(
      a.some((v) => v !== 0),
      `${name} is not trivially zero`,
    );
  }
});

test('dropout masks: a function of (seed, epoch, step), values 0 or 1/(1-p), about p zeros; ones for validation', () => {
  const masks = [{ input: 'shared_dropout_mask', ratio: 0.25, shape: [40, 50] }];
  const a = dropoutMasks(masks, 1, 2, 3).shared_dropout_mask as Float32Array;
  assert.deepEqual(dropoutMasks(masks, 1, 2, 3).shared_dropout_mask, a);
  assert.notDeepEqual(dropoutMasks(masks, 1, 2, 4).shared_dropout_mask, a);
  assert.notDeepEqual(dropoutMasks(masks, 1, 3, 3).shared_dropout_mask, a);
  assert.ok(a.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
  const zeros = a.filter((v) => v === 0).length / a.length;
  assert.ok(zeros > 0.2 && zeros < 0.3, `${zeros}`);
  assert.ok((noDropout(masks).shared_dropout_mask as Float32Array).every((v) => v === 1));
});
