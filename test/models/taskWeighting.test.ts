// Uncertainty task weighting (Kendall et al. 2018, models/heads.ts): with fed log-variances s_t the objective is
// sum_t exp(-s_t) L_t + s_t of the raw losses, d/ds_t = 1 - exp(-s_t) L_t, and every head param gets exactly the
// gradient of the fixed-weight objective with task weights exp(-s_t); a head ensemble's objective is the sum of its
// members' own. The learned weights are read back and stripped from a model's params.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphSession, buildTrainingGraph, type Feed } from '../../src/graph/index.ts';
import {
  addHeadLosses,
  buildHeads,
  HEAD_TENSORS,
  learnedTaskWeights,
  LOG_VARIANCE,
  withoutTaskWeighting,
  type HeadLosses,
  type Heads,
} from '../../src/models/heads.ts';
import { buildMemberHeads } from '../../src/models/members.ts';
import { Rng } from '../../src/util/rng.ts';

const N = 4,
  D = 6,
  P = 3,
  Q = 5;
const S = { lesion: 0.3, location: -0.5 };

const randn = (seed: number, n: number) => {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: n }, () => r.normal(0, 1));
};

const FEEDS: Record<string, Feed> = {
  features: randn(6, N * D),
  lesion_targets: [1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0],
  lesion_weights: [1, 0, 1, 2],
  location_targets: [2, -1, 4, 0],
  location_weights: [1, 1, 0, 1],
};

/** Runs the training graph of `build`'s heads and losses once, every trainable param fed (values, or the graph's own). */
async function run(
  build: (g: Graph, features: ReturnType<Graph['input']>) => { heads: Heads; losses: HeadLosses },
  values: Map<string, Float32Array>,
  outputs: string[] = [],
) {
  const g = new Graph();
  const { heads, losses } = build(g, g.input('features', [N, D]));
  assert.ok(heads.lesionLogits && heads.locationLogits);
  for (const name of outputs) g.output(g.tensor(name));
  const tg = buildTrainingGraph(g, losses.losses);
  const params = g.params({ trainable: true });
  const feeds: Record<string, Feed> = { ...FEEDS };
  for (const p of params) feeds[p.name] = values.get(p.name) ?? p.data;
  const s = await GraphSession.fromGraph(tg, { training: true, threads: 1 });
  try {
    const out = await s.run(feeds);
    const value = (name: string) => out[name].data as Float32Array;
    return { losses, value, grad: (name: string) => value(`grad/${name}`), params: params.map((p) => p.name) };
  } finally {
    await s.release();
  }
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-5): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const scale = Math.max(1, ...Array.from(b, Math.abs));
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol * scale, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

const HEAD_VALUES = new Map([
  ['heads/lesion/weight', randn(2, P * D)],
  ['heads/lesion/bias', randn(3, P)],
  ['heads/location/weight', randn(4, Q * D)],
  ['heads/location/bias', randn(5, Q)],
]);
const S_VALUES = new Map([
  [LOG_VARIANCE.lesion, Float32Array.of(S.lesion)],
  [LOG_VARIANCE.location, Float32Array.of(S.location)],
]);

test('uncertainty weighting: weighted_loss = sum_t exp(-s_t) L_t + s_t, ds_t = 1 - exp(-s_t) L_t, head grads = fixed weights exp(-s_t)', async () => {
  const heads = (g: Graph, f: ReturnType<Graph['input']>) =>
    buildHeads(g, f, { lesion: P, location: Q, seed: 0, training: true, values: HEAD_VALUES, requireValues: true });
  const uw = await run(
    (g, f) => {
      const h = heads(g, f);
      return { heads: h, losses: addHeadLosses(g, h, {}, 'uncertainty') };
    },
    new Map([...HEAD_VALUES, ...S_VALUES]),
  );
  // the raw losses stay (weight 0: history only); the differentiated total is weighted_loss alone
  assert.deepEqual(
    uw.losses.losses.map((l) => [l.tensor.name, l.weight]),
    [
      [HEAD_TENSORS.lesionLoss, 0],
      [HEAD_TENSORS.locationLoss, 0],
      ['weighted_loss', 1],
    ],
  );
  assert.deepEqual(uw.params.filter((p) => p.includes('log_variance')).sort(), Object.values(LOG_VARIANCE).sort());
  const Ll = uw.value(HEAD_TENSORS.lesionLoss)[0];
  const Lc = uw.value(HEAD_TENSORS.locationLoss)[0];
  assert.ok(Ll > 0.1 && Lc > 0.1);
  const wl = Math.exp(-S.lesion),
    wc = Math.exp(-S.location);
  close(uw.value('weighted_loss'), [wl * Ll + S.lesion + wc * Lc + S.location], 'weighted_loss');
  close(uw.grad(LOG_VARIANCE.lesion), [1 - wl * Ll], 'grad s_lesion');
  close(uw.grad(LOG_VARIANCE.location), [1 - wc * Lc], 'grad s_location');

  const fixed = await run((g, f) => {
    const h = heads(g, f);
    return { heads: h, losses: addHeadLosses(g, h, { lesion: wl, location: wc }) };
  }, HEAD_VALUES);
  assert.deepEqual(fixed.params.sort(), [...HEAD_VALUES.keys()].sort(), 'the fixed graph has no log-variances');
  close(fixed.value(HEAD_TENSORS.lesionLoss), [Ll], 'same raw lesion loss');
  for (const name of HEAD_VALUES.keys()) close(uw.grad(name), fixed.grad(name), `grad ${name}`);
});

test("uncertainty weighting of a head ensemble: the sum of the members' own objectives (s shared), each member's gradient its own", async () => {
  const K = 2;
  const init = new Graph();
  buildMemberHeads(init, init.input('features', [N, D]), { lesion: P, location: Q, seed: 3, training: true }, K);
  const values = new Map(init.params().map((p) => [p.name, p.data]));
  const uw = await run(
    (g, f) => {
      const h = buildMemberHeads(
        g,
        f,
        { lesion: P, location: Q, seed: 3, training: true, values, requireValues: true },
        K,
      );
      return { heads: h, losses: addHeadLosses(g, h, {}, 'uncertainty') };
    },
    new Map([...values, ...S_VALUES]),
    [0, 1].flatMap((k) => [`${HEAD_TENSORS.lesionLoss}_m${k}`, `${HEAD_TENSORS.locationLoss}_m${k}`]),
  );
  const wl = Math.exp(-S.lesion),
    wc = Math.exp(-S.location);
  const member = (name: string) => [0, 1].map((k) => uw.value(`${name}_m${k}`)[0]);
  const Ll = member(HEAD_TENSORS.lesionLoss),
    Lc = member(HEAD_TENSORS.locationLoss);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  close(
    uw.value('weighted_loss'),
    [sum(Ll.map((l, k) => wl * l + S.lesion + wc * Lc[k] + S.location))],
    'weighted_loss',
  );
  close(uw.grad(LOG_VARIANCE.lesion), [sum(Ll.map((l) => 1 - wl * l))], 'grad s_lesion');
  close(uw.grad(LOG_VARIANCE.location), [sum(Lc.map((l) => 1 - wc * l))], 'grad s_location');
  // member 0's gradient is that of its own objective alone (fixed weights exp(-s_t))
  const own = await run((g, f) => {
    const h = buildHeads(g, f, {
      lesion: P,
      location: Q,
      seed: 3,
      training: true,
      values,
      requireValues: true,
      scope: 'm0',
    });
    return { heads: h, losses: addHeadLosses(g, h, { lesion: wl, location: wc }) };
  }, values);
  for (const name of own.params) close(uw.grad(name), own.grad(name), `grad ${name}`);
});

test('uncertainty weighting needs both heads; learnedTaskWeights and withoutTaskWeighting', () => {
  const g = new Graph();
  const h = buildHeads(g, g.input('features', [N, D]), { lesion: P, location: 0, seed: 0, training: true });
  const l = addHeadLosses(g, h, {}, 'uncertainty');
  assert.deepEqual(
    l.losses.map((x) => [x.tensor.name, x.weight]),
    [[HEAD_TENSORS.lesionLoss, 1]],
  );
  assert.ok(!g.params().some((p) => p.name.includes('log_variance')));

  const params = new Map([
    ['conv1/weight', Float32Array.of(1)],
    ['heads/lesion/weight', Float32Array.of(2)],
    ...S_VALUES,
  ]);
  const w = learnedTaskWeights(params)!;
  assert.ok(Math.abs(w.lesion - Math.exp(-S.lesion)) < 1e-6 && Math.abs(w.location - Math.exp(-S.location)) < 1e-6);
  assert.ok(Math.abs(w.logVariance.lesion - S.lesion) < 1e-6 && Math.abs(w.logVariance.location - S.location) < 1e-6);
  assert.equal(learnedTaskWeights(new Map([...HEAD_VALUES])), null);
  const stripped = withoutTaskWeighting(params);
  assert.deepEqual([...stripped.keys()], ['conv1/weight', 'heads/lesion/weight']);
  assert.equal(params.size, 4, 'the input map is left as it is');
});
