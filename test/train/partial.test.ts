// Partial fine-tuning's network: the graph cut at stage K (input = the activation entering K) has exactly the
// gradients of the full network with the stages below K frozen, for every trainable param (tiny trunk at stages
// 3, 4, 5; the real ImageNet ResNet-50 at stage 5 on a small input when its weights are at hand), and the same
// outputs; the lower trunk's output shape is what stageInputShape says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTrainingGraph, GraphSession, type Graph, type Loss } from '../../src/graph/index.ts';
import { loadFoldedResNet50, type FoldedResNet50 } from '../../src/models/foldBatchNorm.ts';
import { HEAD_TENSORS } from '../../src/models/heads.ts';
import {
  ACTIVATIONS_INPUT,
  buildNetwork,
  buildNetworkFrom,
  IMAGE_INPUT,
  type NetworkSpec,
} from '../../src/models/network.ts';
import { ensurePretrainedResNet50, RegistryUnreachableError } from '../../src/models/pretrained.ts';
import { stageInputShape, trunkLayout, type TrunkStage } from '../../src/models/resnet.ts';
import { openLowerTrunk } from '../../src/train/lowerTrunk.ts';
import { trainableStage } from '../../src/train/partial.ts';
import { Rng } from '../../src/util/rng.ts';
import { relErr } from '../graph/reference.ts';

const B = 3;
const P = 4;
const Q = 3;

function spec(depth: 50 | 'tiny', size: number): NetworkSpec {
  return {
    trunk: { depth },
    imageSize: size,
    seed: 7,
    heads: { lesion: P, location: Q, shared: { hidden: 16, dropout: 0.5 }, featureDropout: 0 },
  };
}

/** Labels, loss weights and the shared layer's dropout mask: fed identically to both graphs. */
function dataFeeds(): Record<string, Float32Array | BigInt64Array> {
  const r = Rng.seeded(11);
  return {
    [HEAD_TENSORS.lesionTargets]: Float32Array.from({ length: B * P }, () => (r.bool(0.4) ? 1 : 0)),
    [HEAD_TENSORS.lesionWeights]: Float32Array.from([1, 0, 1]),
    [HEAD_TENSORS.locationTargets]: BigInt64Array.from([0n, 2n, 1n]),
    [HEAD_TENSORS.locationWeights]: Float32Array.from([1, 1, 0.5]),
    shared_dropout_mask: Float32Array.from({ length: B * 16 }, () => (r.bool(0.5) ? 0 : 2)),
  };
}

/** Loss values and every gradient of a forward graph's trainable params. */
async function gradients(
  forward: Graph,
  losses: Loss[],
  feeds: Record<string, Float32Array | BigInt64Array>,
): Promise<Map<string, Float32Array>> {
  const tg = buildTrainingGraph(forward, losses);
  const s = await GraphSession.fromGraph(tg, { training: true, threads: 1 });
  try {
    const params = Object.fromEntries(forward.params({ trainable: true }).map((p) => [p.name, p.data]));
    const known = new Set(s.inputNames);
    const out = await s.run({ ...Object.fromEntries(Object.entries(feeds).filter(([k]) => known.has(k))), ...params });
    return new Map(
      Object.entries(out)
        .filter(([k]) => k.startsWith('grad/') || k.endsWith('_loss'))
        .map(([k, v]) => [k, v.data as Float32Array]),
    );
  } finally {
    await s.release();
  }
}

/** What the activation cache stores (before float16): the production lower-trunk session's output. */
async function lowerActivations(
  sp: NetworkSpec,
  stage: TrunkStage,
  weights: FoldedResNet50 | 'random',
  image: Float32Array,
): Promise<Float32Array> {
  const trunk = await openLowerTrunk(
    { trunk: sp.trunk.depth === 50 ? 'resnet50' : 'tiny', imageSize: sp.imageSize, seed: sp.seed },
    stage,
    weights,
    1,
  );
  try {
    const a = await trunk.run(image, B);
    assert.deepEqual(trunk.shape, stageInputShape(trunkLayout(sp.trunk.depth), stage, sp.imageSize));
    assert.equal(
      a.length,
      B * trunk.shape[0] * trunk.shape[1] * trunk.shape[2],
      'stageInputShape is the lower trunk output shape',
    );
    return a;
  } finally {
    await trunk.release();
  }
}

/** Full network with the trunk below `stage` frozen vs the network cut at `stage` fed the lower trunk's output. */
async function compare(
  sp: NetworkSpec,
  stage: TrunkStage,
  weights: FoldedResNet50 | 'random',
  tol: number,
): Promise<void> {
  const r = Rng.seeded(5);
  const image = Float32Array.from({ length: B * 3 * sp.imageSize * sp.imageSize }, () => r.normal(0, 50));
  const upper = (name: string) => Number(/^res(\d)/.exec(name)?.[1] ?? 0) >= stage;
  const common = { batch: B, mode: 'train' as const, weights, dropoutMasks: true };
  const full = buildNetwork(sp, { ...common, trainable: upper });
  const cut = buildNetworkFrom(sp, stage, { ...common, trainable: 'all' });
  const names = (g: Graph) =>
    g
      .params({ trainable: true })
      .map((p) => p.name)
      .sort();
  assert.deepEqual(names(cut.graph), names(full.graph), 'the same trainable params');
  assert.ok(
    names(cut.graph).some((n) => n.startsWith(`res${stage}`)) &&
      !names(cut.graph).some((n) => n.startsWith(`res${stage - 1}`)),
  );

  const feeds = dataFeeds();
  const gFull = await gradients(full.graph, full.losses, { ...feeds, [IMAGE_INPUT]: image });
  const gCut = await gradients(cut.graph, cut.losses, {
    ...feeds,
    [ACTIVATIONS_INPUT]: await lowerActivations(sp, stage, weights, image),
  });
  assert.deepEqual([...gCut.keys()].sort(), [...gFull.keys()].sort());
  for (const [name, ref] of gFull) {
    assert.ok(
      ref.some((v) => v !== 0),
      `${name} is not trivially zero`,
    );
    const err = relErr(gCut.get(name)!, ref);
    assert.ok(err < tol, `${name}: relative difference ${err.toExponential(2)}`);
  }
}

test('trainableStage: "all" is the whole network, "stageK" cuts before stage K', () => {
  assert.equal(trainableStage('all'), null);
  assert.equal(trainableStage('stage5'), 5);
  assert.equal(trainableStage('stage4'), 4);
  assert.equal(trainableStage('stage3'), 3);
});

for (const stage of [5, 4, 3] as const) {
  test(`tiny trunk cut at stage ${stage}: the same losses and gradients as the full network with the stages below frozen`, async () => {
    await compare(spec('tiny', 64), stage, 'random', 1e-5);
  });
}

test('ImageNet ResNet-50 cut at stage 5 (64x64 input): the same gradients as the full network with conv1..conv4_x frozen', async (t) => {
  let folded: FoldedResNet50;
  try {
    folded = await loadFoldedResNet50(await ensurePretrainedResNet50({ progress: false }));
  } catch (e) {
    if (e instanceof RegistryUnreachableError) return t.skip(e.message);
    throw e;
  }
  await compare(spec(50, 64), 5, folded, 1e-5);
});
