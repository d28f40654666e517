// Late fusion of the body location into the lesion head (models/fusion.ts): a known site adds U's column of that
// site to the lesion logits, an unknown one U times the model's own location distribution; the lesion loss never
// reaches the location head (stopGradient) and U's gradient is probe^T z. A fused head ensemble merges exactly.
// The training feeds (train/targets.ts siteBatchFeeds): site dropout, seeded per update.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Sample } from '../../src/data/types.ts';
import { Graph, GraphSession, buildTrainingGraph, type Feed } from '../../src/graph/index.ts';
import { SITE_TENSORS, SITE_WEIGHT, siteFeeds } from '../../src/models/fusion.ts';
import {
  addHeadLosses,
  buildHeads,
  HEAD_TENSORS,
  LESION_BASE_LOGITS,
  type HeadsConfig,
} from '../../src/models/heads.ts';
import { buildMemberHeads, mergedHeadsConfig, mergeMembers } from '../../src/models/members.ts';
import { encodeTargets, labelFeeds, siteBatchFeeds } from '../../src/train/targets.ts';
import { Rng } from '../../src/util/rng.ts';
import { runProbe } from '../graph/helpers.ts';

const N = 4,
  D = 6,
  P = 3,
  Q = 4;
const randn = (seed: number, n: number) => {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: n }, () => r.normal(0, 1));
};
const VALUES = new Map([
  ['heads/lesion/weight', randn(2, P * D)],
  ['heads/lesion/bias', randn(3, P)],
  ['heads/location/weight', randn(4, Q * D)],
  ['heads/location/bias', randn(5, Q)],
  [SITE_WEIGHT, randn(6, P * Q)],
]);
const FEATURES = randn(7, N * D);
// rows 0 and 1 known (sites 2 and 0), rows 2 and 3 unknown (row 3's site exists but is not revealed)
const SITES = siteFeeds([2, 0, -1, 1], [true, true, true, false], N, Q);

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-5): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('siteFeeds: one-hot rows and known flags for the revealed known sites; the rest (and padding) zeros', () => {
  assert.deepEqual([...SITES[SITE_TENSORS.locationKnown]], [1, 1, 0, 0]);
  assert.deepEqual([...SITES[SITE_TENSORS.locationGiven]], [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const padded = siteFeeds([3], [true], 3, Q);
  assert.deepEqual([...padded[SITE_TENSORS.locationKnown]], [1, 0, 0]);
  assert.deepEqual([...padded[SITE_TENSORS.locationGiven]], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(
    [...siteFeeds([Q], [true], 1, Q)[SITE_TENSORS.locationKnown]],
    [0],
    'an out-of-range site is unknown',
  );
});

test('fusion: known site -> base + U[:, site]; unknown -> base + U softmax(location logits); U gets probe^T z; no lesion gradient reaches the location head', async () => {
  const g = new Graph();
  const h = buildHeads(g, g.input('features', [N, D]), {
    lesion: P,
    location: Q,
    fusion: true,
    seed: 0,
    training: true,
    values: VALUES,
    requireValues: true,
  });
  assert.deepEqual(h.params, [
    'heads/lesion/weight',
    'heads/lesion/bias',
    'heads/location/weight',
    'heads/location/bias',
    SITE_WEIGHT,
  ]);
  assert.equal(h.lesionLogits!.name, HEAD_TENSORS.lesionLogits);
  assert.equal(h.lesionProbs!.name, HEAD_TENSORS.lesionProbs);
  assert.deepEqual(
    g.inputs.filter((i) => !i.name.startsWith('heads/')).map((i) => [i.name, i.shape.join('x')]),
    [
      ['features', '4x6'],
      [SITE_TENSORS.locationGiven, '4x4'],
      [SITE_TENSORS.locationKnown, '4x1'],
    ],
  );
  g.output(g.tensor(LESION_BASE_LOGITS));
  g.output(h.locationProbs!);
  const params = Object.fromEntries(VALUES);
  const probe = await runProbe(g, h.lesionLogits!, [SITE_WEIGHT, 'heads/lesion/weight'], {
    features: FEATURES,
    ...SITES,
    ...params,
  });
  // the forward values, from a plain inference session of the same graph
  const s = await GraphSession.fromGraph(g, { threads: 1 });
  const out = await s.run({ features: FEATURES, ...SITES, ...params });
  await s.release();
  const base = out[LESION_BASE_LOGITS].data as Float32Array;
  const probs = out[HEAD_TENSORS.locationProbs].data as Float32Array;
  const U = VALUES.get(SITE_WEIGHT)!;
  // z per row: the one-hot of the known site, else the predicted distribution
  const z = [0, 1, 2, 3].map((n) =>
    n === 0 ? [0, 0, 1, 0] : n === 1 ? [1, 0, 0, 0] : Array.from(probs.subarray(n * Q, (n + 1) * Q)),
  );
  const expected = new Float64Array(N * P);
  for (let n = 0; n < N; n++)
    for (let p = 0; p < P; p++) {
      expected[n * P + p] = base[n * P + p] + z[n].reduce((a, zq, q) => a + zq * U[p * Q + q], 0);
    }
  close(probe.y, expected, 'fused lesion logits');
  close(
    probe.y.subarray(0, P),
    [0, 1, 2].map((p) => base[p] + U[p * Q + 2]),
    'row 0: base + U[:, 2]',
  );
  // d/dU of sum(y * R) = R^T z
  const dU = new Float64Array(P * Q);
  for (let p = 0; p < P; p++)
    for (let q = 0; q < Q; q++) for (let n = 0; n < N; n++) dU[p * Q + q] += probe.probe.data[n * P + p] * z[n][q];
  close(probe.grads[SITE_WEIGHT], dU, 'grad U');
  // the lesion head's own weights: R^T x as without fusion
  const dW = new Float64Array(P * D);
  for (let p = 0; p < P; p++)
    for (let d = 0; d < D; d++)
      for (let n = 0; n < N; n++) dW[p * D + d] += probe.probe.data[n * P + p] * FEATURES[n * D + d];
  close(probe.grads['heads/lesion/weight'], dW, 'grad lesion weight');

  // the lesion LOSS reaches U and the lesion layer, never the location head (stopGradient)
  const lg = new Graph();
  const lh = buildHeads(lg, lg.input('features', [N, D]), {
    lesion: P,
    location: Q,
    fusion: true,
    seed: 0,
    training: true,
    values: VALUES,
    requireValues: true,
  });
  const losses = addHeadLosses(lg, lh);
  assert.throws(
    () => buildTrainingGraph(lg, [losses.lesionLoss!], { wrt: ['heads/location/weight'] }),
    /no loss depends on heads\/location\/weight/,
  );
  const tg = buildTrainingGraph(lg, [losses.lesionLoss!], { wrt: [...VALUES.keys()], unused: 'zeros' });
  const ts = await GraphSession.fromGraph(tg, { training: true, threads: 1 });
  const labels: Record<string, Feed> = {
    lesion_targets: [1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0],
    lesion_weights: [1, 1, 1, 1],
    location_targets: [2, 0, 1, 1],
    location_weights: [1, 1, 1, 1],
  };
  const t = await ts.run({ features: FEATURES, ...SITES, ...params, ...labels });
  await ts.release();
  const grad = (name: string) => t[`grad/${name}`].data as Float32Array;
  for (const name of ['heads/location/weight', 'heads/location/bias'])
    assert.ok(
      grad(name).every((v) => v === 0),
      `${name} gets no lesion gradient`,
    );
  for (const name of [SITE_WEIGHT, 'heads/lesion/weight'])
    assert.ok(
      grad(name).some((v) => Math.abs(v) > 1e-4),
      `${name} does`,
    );
});

test('a fused head ensemble: members share U, each member trains on its own fused logits, and the merged heads compute the same', async () => {
  const K = 2;
  const config: HeadsConfig = { lesion: P, location: Q, shared: { hidden: 5, dropout: 0 }, fusion: true };
  const init = new Graph();
  const ih = buildMemberHeads(init, init.input('features', [N, D]), { ...config, seed: 4, training: true }, K);
  assert.equal(ih.params.filter((p) => p === SITE_WEIGHT).length, 1, 'one U for all members');
  const values = new Map(
    init
      .params()
      .map((p) => [
        p.name,
        p.name === SITE_WEIGHT || p.name.endsWith('/bias') ? randn(p.name.length, p.data.length) : p.data,
      ]),
  );
  const merged = mergeMembers(values, K);
  assert.ok(merged.get(SITE_WEIGHT) === values.get(SITE_WEIGHT), 'U passes through the merge');

  const logits = async (g: Graph, h: ReturnType<typeof buildHeads>, extra: string[] = []) => {
    g.output(h.lesionLogits!);
    for (const e of extra) g.output(g.tensor(e));
    const s = await GraphSession.fromGraph(g, { threads: 1 });
    const out = await s.run({ features: FEATURES, ...SITES });
    await s.release();
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  };
  const mg = new Graph();
  const members = buildMemberHeads(
    mg,
    mg.input('features', [N, D]),
    { ...config, seed: 4, training: false, trainable: false, values, requireValues: true },
    K,
  );
  const a = await logits(
    mg,
    members,
    members.members!.map((m) => m.lesionLogits!.name),
  );
  const sg = new Graph();
  const b = await logits(
    sg,
    buildHeads(sg, sg.input('features', [N, D]), {
      ...mergedHeadsConfig(config, K),
      seed: 4,
      training: false,
      trainable: false,
      values: merged,
      requireValues: true,
    }),
  );
  close(a[HEAD_TENSORS.lesionLogits], b[HEAD_TENSORS.lesionLogits], 'merged = members');
  // the ensemble's fused logits are the mean of the members' fused ones
  const [m0, m1] = members.members!.map((m) => a[m.lesionLogits!.name]);
  close(
    a[HEAD_TENSORS.lesionLogits],
    m0.map((v, i) => (v + m1[i]) / 2),
    "mean of the members' fused logits",
  );
});

const sample = (image: string, location: string): Sample => ({
  image,
  path: `/x/${image}`,
  lesions: ['scale'],
  location,
  group: image,
  line: 2,
  extra: {},
});

test('siteBatchFeeds: dropout 0 shows every known site, 1 none, unknown sites never; seeded per (seed, epoch, step); about 1 - dropout shown', () => {
  const labels = { lesion: ['scale'], location: ['arm', 'leg', 'face'] };
  const samples = Array.from({ length: 64 }, (_, i) => sample(`i${i}`, i % 8 === 7 ? 'tail' : labels.location[i % 3]));
  const t = encodeTargets(samples, labels);
  const rows = samples.map((_, i) => i);
  const known = (f: Record<string, Feed>) => [...(f[SITE_TENSORS.locationKnown] as Float32Array)];
  const given = (f: Record<string, Feed>) => f[SITE_TENSORS.locationGiven] as Float32Array;
  const isKnown = rows.map((i) => t.location[i] >= 0);
  assert.equal(isKnown.filter((k) => !k).length, 8);

  const at = (dropout: number, seed = 1, epoch = 0, step = 0) =>
    siteBatchFeeds(t, labels, rows, 70, { dropout, seed, epoch, step });
  const all = at(0);
  assert.deepEqual(
    known(all),
    [...isKnown.map((k) => (k ? 1 : 0)), 0, 0, 0, 0, 0, 0],
    'dropout 0: every known site, no padding row',
  );
  rows.forEach((i) => {
    const row = Array.from(given(all).subarray(i * 3, i * 3 + 3));
    assert.deepEqual(
      row,
      [0, 1, 2].map((c) => (c === t.location[i] ? 1 : 0)),
      `row ${i}`,
    );
  });
  assert.ok(known(at(1)).every((v) => v === 0) && given(at(1)).every((v) => v === 0), 'dropout 1: none');
  assert.deepEqual(
    known(siteBatchFeeds(t, labels, rows, 64, 'given')),
    isKnown.map((k) => (k ? 1 : 0)),
  );
  assert.ok(known(siteBatchFeeds(t, labels, rows, 64, 'unknown')).every((v) => v === 0));

  const half = known(at(0.5, 3, 2, 5));
  assert.deepEqual(half, known(at(0.5, 3, 2, 5)), 'reproducible');
  assert.ok(
    half.every((v, i) => v === 0 || isKnown[i]),
    'an unknown site is never revealed',
  );
  for (const other of [at(0.5, 4, 2, 5), at(0.5, 3, 3, 5), at(0.5, 3, 2, 6)])
    assert.notDeepEqual(known(other), half, 'another seed, epoch or step draws again');
  // the fraction shown, over many updates: 1 - dropout of the known sites
  for (const dropout of [0.25, 0.5, 0.8]) {
    let shown = 0;
    for (let step = 0; step < 50; step++) shown += known(at(dropout, 9, 0, step)).reduce((a, b) => a + b, 0);
    const fraction = shown / (50 * 56);
    assert.ok(Math.abs(fraction - (1 - dropout)) < 0.03, `dropout ${dropout}: ${fraction.toFixed(3)} shown`);
  }
  // labelFeeds adds them only for a fusion model (a SiteReveal given)
  assert.ok(!(SITE_TENSORS.locationKnown in labelFeeds(t, labels, rows, 64)));
  assert.deepEqual(
    known(labelFeeds(t, labels, rows, 64, 'given')),
    known(siteBatchFeeds(t, labels, rows, 64, 'given')),
  );
});
