// Head ensembles: the merged single heads compute exactly the members' mean logits, and training K members side
// by side updates each exactly as training it alone would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphSession } from '../../src/graph/index.ts';
import { addHeadLosses, buildHeads, HEAD_TENSORS, type HeadsConfig } from '../../src/models/heads.ts';
import { buildMemberHeads, mergedHeadsConfig, mergeMembers } from '../../src/models/members.ts';
import { Trainer } from '../../src/train/step.ts';
import { dropoutMasks } from '../../src/train/targets.ts';
import { Rng } from '../../src/util/rng.ts';

const N = 4;
const D = 6;
const randn = (seed: number, n: number) => {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: n }, () => r.normal(0, 1));
};

async function probs(g: Graph, features: Float32Array): Promise<Record<string, Float32Array>> {
  const s = await GraphSession.fromGraph(g, { threads: 1 });
  try {
    const out = await s.run({ features: { data: features, dims: [N, D] } });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

for (const shared of [{ hidden: 5, dropout: 0.5 }, null]) {
  test(`merged heads = the members' mean logits (${shared ? 'shared layer' : 'no shared layer'}, MTL, 3 members)`, async () => {
    const config: HeadsConfig = { lesion: 3, location: 4, shared, featureDropout: 0 };
    const K = 3;
    const init = new Graph();
    buildMemberHeads(init, init.input('features', [N, D]), { ...config, seed: 4, training: true }, K);
    // Biases start at 0: give them values so the merge of biases is tested too.
    const values = new Map(
      init.params().map((p) => [p.name, p.name.endsWith('/bias') ? randn(p.name.length, p.data.length) : p.data]),
    );
    assert.equal(values.size, K * (shared ? 6 : 4));

    const members = new Graph();
    const h = buildMemberHeads(
      members,
      members.input('features', [N, D]),
      { ...config, seed: 4, training: false, trainable: false, values, requireValues: true },
      K,
    );
    members.output(h.lesionProbs!);
    members.output(h.locationProbs!);
    const merged = new Graph();
    const m = buildHeads(merged, merged.input('features', [N, D]), {
      ...mergedHeadsConfig(config, K),
      seed: 4,
      training: false,
      trainable: false,
      values: mergeMembers(values, K),
      requireValues: true,
    });
    merged.output(m.lesionProbs!);
    merged.output(m.locationProbs!);
    if (shared) assert.deepEqual(merged.params().find((p) => p.name === 'heads/shared/weight')!.shape, [K * 5, D]);

    const x = randn(1, N * D);
    const a = await probs(members, x);
    const b = await probs(merged, x);
    for (const name of [HEAD_TENSORS.lesionProbs, HEAD_TENSORS.locationProbs]) {
      assert.equal(a[name].length, b[name].length);
      a[name].forEach((v, i) => assert.ok(Math.abs(v - b[name][i]) < 1e-5, `${name}[${i}]: ${v} vs ${b[name][i]}`));
    }
    // The ensemble's probabilities are not any single member's.
    const one = new Graph();
    const o = buildHeads(one, one.input('features', [N, D]), {
      ...config,
      seed: 4,
      training: false,
      trainable: false,
      values,
      requireValues: true,
      scope: 'm0',
    });
    one.output(o.lesionProbs!);
    const single = (await probs(one, x))[`${HEAD_TENSORS.lesionProbs}_m0`];
    assert.ok(single.some((v, i) => Math.abs(v - a[HEAD_TENSORS.lesionProbs][i]) > 1e-3));
  });
}

test('two members trained side by side: each update equals training that member alone (dropout masks included)', async () => {
  const config: HeadsConfig = { lesion: 3, location: 4, shared: { hidden: 5, dropout: 0.5 }, featureDropout: 0 };
  const train = (build: (g: Graph, f: ReturnType<Graph['input']>) => ReturnType<typeof buildHeads>) => {
    const g = new Graph();
    const heads = build(g, g.input('features', [N, D]));
    const losses = addHeadLosses(g, heads, { lesion: 1, location: 0.5 }).losses;
    return { g, heads, losses: losses.map((l) => ({ name: l.tensor.name, weight: l.weight })) };
  };
  const opts = { ...config, seed: 11, training: true, dropoutMasks: true };
  const both = train((g, f) => buildMemberHeads(g, f, opts, 2));
  const r = Rng.seeded(3);
  const feeds = {
    features: randn(2, N * D),
    [HEAD_TENSORS.lesionTargets]: Float32Array.from({ length: N * 3 }, () => (r.float() < 0.4 ? 1 : 0)),
    [HEAD_TENSORS.lesionWeights]: new Float32Array(N).fill(1),
    [HEAD_TENSORS.locationTargets]: BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 4)),
    [HEAD_TENSORS.locationWeights]: new Float32Array(N).fill(1),
    ...dropoutMasks(both.heads.dropoutMasks, 5, 0, 0),
  };
  const sgd = { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 };
  const step = async (t: { g: Graph; losses: { name: string; weight: number | undefined }[] }) => {
    const trainer = await Trainer.create({ forward: t.g, losses: t.losses, sgd, threads: 1 });
    try {
      const inputs = new Set(t.g.inputs.map((i) => i.name));
      const mine = Object.fromEntries(Object.entries(feeds).filter(([k]) => inputs.has(k)));
      await trainer.step(mine);
      await trainer.step(mine);
      return new Map([...trainer.params].map(([k, v]) => [k, v.slice()]));
    } finally {
      await trainer.release();
    }
  };
  const together = await step(both);
  for (const k of [0, 1]) {
    const alone = await step(train((g, f) => buildHeads(g, f, { ...opts, scope: `m${k}` })));
    assert.equal(alone.size, 6);
    for (const [name, v] of alone) {
      const w = together.get(name)!;
      const err = Math.max(...v.map((x, i) => Math.abs(x - w[i])));
      assert.ok(err < 1e-5, `${name}: max difference ${err}`);
    }
  }
});
