// Partial fine-tuning's update at batch 20 on the ImageNet ResNet-50: the network cut at stage K (input: cached
// activations) vs the whole network, same process, alternating, after warm-up. Usage:
//   node --import tsx bench/partial-step.ts [--stages 5,4] [--steps 4] [--full]
import { parseArgs } from 'node:util';
import { loadFoldedResNet50 } from '../src/models/foldBatchNorm.ts';
import { HEAD_TENSORS } from '../src/models/heads.ts';
import {
  ACTIVATIONS_INPUT,
  buildNetwork,
  buildNetworkFrom,
  IMAGE_INPUT,
  type NetworkSpec,
} from '../src/models/network.ts';
import { ensurePretrainedResNet50 } from '../src/models/pretrained.ts';
import { stageInputShape, trunkLayout, type TrunkStage } from '../src/models/resnet.ts';
import { Trainer } from '../src/train/step.ts';
import { Rng } from '../src/util/rng.ts';

const { values } = parseArgs({
  options: {
    stages: { type: 'string', default: '5,4' },
    steps: { type: 'string', default: '4' },
    full: { type: 'boolean', default: false },
  },
});
const B = 20;
const spec: NetworkSpec = {
  trunk: { depth: 50 },
  imageSize: 224,
  seed: 0,
  heads: { lesion: 20, location: 10, shared: null, featureDropout: 0 },
};
const weights = await loadFoldedResNet50(await ensurePretrainedResNet50({ progress: false }));
const r = Rng.seeded(1);
const labels = {
  [HEAD_TENSORS.lesionTargets]: Float32Array.from({ length: B * 20 }, () => (r.bool(0.2) ? 1 : 0)),
  [HEAD_TENSORS.lesionWeights]: new Float32Array(B).fill(1),
  [HEAD_TENSORS.locationTargets]: BigInt64Array.from({ length: B }, () => BigInt(r.int(0, 9))),
  [HEAD_TENSORS.locationWeights]: new Float32Array(B).fill(1),
};

async function time(
  name: string,
  net: ReturnType<typeof buildNetwork> | ReturnType<typeof buildNetworkFrom>,
  input: string,
  shape: number[],
): Promise<void> {
  const trainer = await Trainer.create({
    forward: net.graph,
    losses: net.losses.map((l) => ({ name: l.tensor.name, weight: l.weight })),
    sgd: { lr: 1e-4, momentum: 0.9, weightDecay: 1e-4 },
  });
  const x = Float32Array.from({ length: B * shape.reduce((a, b) => a * b, 1) }, () => Math.max(0, r.normal(0, 1)));
  const steps = Number(values.steps);
  const ms: number[] = [];
  for (let i = 0; i < steps + 2; i++) {
    const t0 = performance.now();
    await trainer.step({ [input]: x, ...labels });
    if (i >= 2) ms.push(performance.now() - t0);
  }
  await trainer.release();
  ms.sort((a, b) => a - b);
  console.log(
    `${name}: median ${ms[ms.length >> 1].toFixed(0)} ms per update at batch ${B} (${(ms[ms.length >> 1] / B).toFixed(1)} ms/image); all ${ms.map((m) => m.toFixed(0)).join(' ')}; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
  );
}

for (const s of values.stages.split(',').map(Number) as TrunkStage[]) {
  const net = buildNetworkFrom(spec, s, { batch: B, mode: 'train', weights, trainable: 'all' });
  await time(`stage${s}..5 + heads`, net, ACTIVATIONS_INPUT, stageInputShape(trunkLayout(50), s, 224));
}
if (values.full)
  await time('whole network', buildNetwork(spec, { batch: B, mode: 'train', weights }), IMAGE_INPUT, [3, 224, 224]);
