// The task heads: shapes and names, init, losses against fp64 references of eq. 5 / eq. 7 (masks and task
// weights included), learning-rate multipliers, and a few SGD steps of the whole tiny multi-task network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphSession, buildTrainingGraph } from '../../src/graph/index.ts';
import { addHeadLosses, buildHeads, glorotUniform, HEAD_PREFIX, HEAD_TENSORS } from '../../src/models/heads.ts';
import { buildNetwork, type NetworkSpec } from '../../src/models/network.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';
import { sigmoidCrossEntropy, softmaxCrossEntropy, tensor } from '../graph/reference.ts';

const randn = (seed: number, n: number, sd = 1) => {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: n }, () => r.normal(0, sd));
};

test('MTL heads with a shared layer: names, shapes, param order, init; dropout only in training graphs', async () => {
  const build = (training: boolean) => {
    const g = new Graph();
    const f = g.input('features', [3, 16]);
    const h = buildHeads(g, f, {
      lesion: 5,
      location: 4,
      shared: { hidden: 8, dropout: 0.5 },
      featureDropout: 0.2,
      seed: 9,
      training,
      trainable: false,
    });
    return { g, h };
  };
  const { g, h } = build(false);
  assert.deepEqual(h.params, [
    'heads/shared/weight',
    'heads/shared/bias',
    'heads/lesion/weight',
    'heads/lesion/bias',
    'heads/location/weight',
    'heads/location/bias',
  ]);
  assert.deepEqual(h.lesionProbs!.shape, [3, 5]);
  assert.deepEqual(h.locationProbs!.shape, [3, 4]);
  assert.equal(h.lesionProbs!.name, 'lesion_probs');
  assert.equal(h.locationProbs!.name, 'location_probs');
  const p = new Map(g.params().map((x) => [x.name, x]));
  assert.deepEqual(p.get('heads/shared/weight')!.shape, [8, 16]);
  assert.deepEqual(p.get('heads/lesion/weight')!.shape, [5, 8]);
  assert.ok(p.get('heads/lesion/bias')!.data.every((v) => v === 0));
  const a = Math.sqrt(6 / (8 + 5));
  const lw = p.get('heads/lesion/weight')!.data;
  assert.ok(lw.every((v) => Math.abs(v) <= a) && Math.max(...lw.map(Math.abs)) > a / 2, 'Glorot uniform bound');
  assert.deepEqual(lw, glorotUniform(Rng.derive(9, 'heads', 'lesion'), [5, 8]));
  assert.equal(g.nodes.filter((n) => n.opType === 'Dropout').length, 0, 'inference: dropout is Identity');
  assert.equal(build(true).g.nodes.filter((n) => n.opType === 'Dropout').length, 2);

  g.output(h.lesionProbs!);
  g.output(h.locationProbs!);
  const s = await GraphSession.fromGraph(g);
  const out = await s.run({ features: randn(1, 48) });
  await s.release();
  const les = out.lesion_probs.data as Float32Array;
  const loc = out.location_probs.data as Float32Array;
  assert.ok(les.every((v) => v > 0 && v < 1));
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(loc.subarray(i * 4, i * 4 + 4).reduce((x, y) => x + y, 0) - 1) < 1e-6);
});

test('losses: eq. 5 (per-sample weights mask) and eq. 7 (label -1 contributes 0) match fp64 references; task weights kept', async () => {
  const N = 4,
    D = 6,
    P = 3,
    Q = 5;
  const g = new Graph();
  const f = g.input('features', [N, D]);
  const values = new Map([
    ['heads/lesion/weight', randn(2, P * D)],
    ['heads/lesion/bias', randn(3, P)],
    ['heads/location/weight', randn(4, Q * D)],
    ['heads/location/bias', randn(5, Q)],
  ]);
  const h = buildHeads(g, f, { lesion: P, location: Q, seed: 0, training: true, values, requireValues: true });
  const l = addHeadLosses(g, h, { location: 0.5 });
  assert.deepEqual(
    l.losses.map((x) => [x.tensor.name, x.weight]),
    [
      ['lesion_loss', 1],
      ['location_loss', 0.5],
    ],
  );
  assert.deepEqual(
    g.inputs.filter((i) => !i.name.startsWith('heads/')).map((i) => [i.name, i.dtype, i.shape.join('x')]),
    [
      ['features', 'float32', '4x6'],
      ['lesion_targets', 'float32', '4x3'],
      ['lesion_weights', 'float32', '4'],
      ['location_targets', 'int64', '4'],
      ['location_weights', 'float32', '4'],
    ],
  );
  g.output(h.lesionLogits!);
  g.output(h.locationLogits!);
  g.output(l.lesionLoss!);
  g.output(l.locationLoss!);
  const params = Object.fromEntries([...values].map(([k, v]) => [k, v]));
  const feeds = {
    features: randn(6, N * D),
    lesion_targets: [1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0],
    lesion_weights: [1, 0, 1, 2],
    location_targets: [2, -1, 4, 0],
    location_weights: [1, 1, 0, 1],
    ...params,
  };
  const s = await GraphSession.fromGraph(g);
  const out = await s.run(feeds);
  await s.release();
  const lesionLogits = tensor([N, P], out[HEAD_TENSORS.lesionLogits].data as Float32Array);
  const locationLogits = tensor([N, Q], out[HEAD_TENSORS.locationLogits].data as Float32Array);
  // the logits themselves: x W^T + b
  const x = feeds.features;
  const w = values.get('heads/lesion/weight')!;
  const b = values.get('heads/lesion/bias')!;
  let expect = b[2];
  for (let d = 0; d < D; d++) expect += x[1 * D + d] * w[2 * D + d];
  assert.ok(Math.abs(lesionLogits.data[1 * P + 2] - expect) < 1e-5);
  const e5 = sigmoidCrossEntropy(
    lesionLogits,
    tensor([N, P], feeds.lesion_targets),
    tensor([N], feeds.lesion_weights),
  ).loss;
  const e7 = softmaxCrossEntropy(locationLogits, feeds.location_targets, tensor([N], feeds.location_weights)).loss;
  assert.ok(
    Math.abs((out.lesion_loss.data[0] as number) - e5) < 1e-5 * Math.max(1, e5),
    `lesion ${out.lesion_loss.data[0]} vs ${e5}`,
  );
  assert.ok(
    Math.abs((out.location_loss.data[0] as number) - e7) < 1e-5 * Math.max(1, e7),
    `location ${out.location_loss.data[0]} vs ${e7}`,
  );
  assert.ok(e5 > 0.1 && e7 > 0.1);
});

const SPEC: NetworkSpec = { trunk: { depth: 'tiny' }, imageSize: 32, heads: { lesion: 4, location: 3 }, seed: 5 };

test('single-task networks have only their head, output and loss', () => {
  const lesionOnly = buildNetwork({ ...SPEC, heads: { lesion: 4, location: 0 } }, { batch: 2, mode: 'train' });
  assert.deepEqual(
    lesionOnly.graph.outputs.map((o) => o.name),
    ['lesion_probs'],
  );
  assert.deepEqual(
    lesionOnly.losses.map((l) => l.tensor.name),
    ['lesion_loss'],
  );
  const locOnly = buildNetwork({ ...SPEC, heads: { lesion: 0, location: 3 } }, { batch: 2, mode: 'inference' });
  assert.deepEqual(
    locOnly.graph.outputs.map((o) => o.name),
    ['location_probs'],
  );
  assert.equal(locOnly.losses.length, 0);
});

test('bad head configurations are DermtlErrors', () => {
  const bad = (heads: NetworkSpec['heads'], re: RegExp) =>
    assert.throws(
      () => buildNetwork({ ...SPEC, heads }, { batch: 1, mode: 'train' }),
      (e) => e instanceof DermtlError && re.test(e.message),
    );
  bad({ lesion: 0, location: 0 }, /both have 0 classes/);
  bad({ lesion: 3, location: 1 }, /at least 2 body locations/);
  bad({ lesion: 2.5, location: 3 }, /lesion labels must be a whole number/);
  bad({ lesion: 3, location: 3, featureDropout: 1 }, /feature dropout must be in \[0, 1\)/);
  bad({ lesion: 3, location: 3, shared: { hidden: 0, dropout: 0 } }, /hidden layer size/);
  assert.throws(
    () => buildNetwork({ ...SPEC, imageSize: 16 }, { batch: 1, mode: 'train' }),
    /image size must be a whole number >= 32/,
  );
});

test('tiny MTL network: every trainable param gets a gradient, and SGD with the multipliers lowers both losses on a fixed batch', async () => {
  const N = 4;
  const net = buildNetwork(
    { ...SPEC, heads: { lesion: 4, location: 3, shared: { hidden: 16, dropout: 0 } } },
    { batch: N, mode: 'train' },
  );
  const tg = buildTrainingGraph(net.graph, net.losses);
  const params = new Map(net.graph.params({ trainable: true }).map((p) => [p.name, Float32Array.from(p.data)]));
  assert.equal(tg.outputs.filter((o) => o.name.startsWith('grad/')).length, params.size);
  const data = {
    image: randn(8, N * 3 * 32 * 32, 50),
    lesion_targets: [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1],
    lesion_weights: [1, 1, 1, 1],
    location_targets: [0, 2, 1, 2],
    location_weights: [1, 1, 1, 1],
  };
  const s = await GraphSession.fromGraph(tg, { training: true });
  const losses: number[][] = [];
  try {
    for (let step = 0; step < 10; step++) {
      const out = await s.run({ ...data, ...Object.fromEntries(params) });
      losses.push([out.lesion_loss.data[0] as number, out.location_loss.data[0] as number]);
      for (const [name, v] of params) {
        const grad = out[`grad/${name}`].data as Float32Array;
        // Small: without BatchNorm conv1's gradient is ~1e4x its weights' scale at Caffe pixel magnitudes.
        // the paper's multipliers (train/trainTask.ts multipliersOf): head weights x10, head biases x20, trunk x1
        const lr = 3e-4 * (!name.startsWith(HEAD_PREFIX) ? 1 : name.endsWith('/bias') ? 20 : 10);
        for (let i = 0; i < v.length; i++) v[i] -= lr * grad[i];
      }
    }
  } finally {
    await s.release();
  }
  const [first, last] = [losses[0], losses[losses.length - 1]];
  assert.ok(losses.flat().every(Number.isFinite));
  assert.ok(last[0] < first[0] * 0.5, `lesion loss ${first[0]} -> ${last[0]}`);
  assert.ok(last[1] < first[1] * 0.5, `location loss ${first[1]} -> ${last[1]}`);
});
