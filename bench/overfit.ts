// Issue 8's "can it learn at all?" check of the whole-network fine-tuning path on the real ImageNet ResNet-50
// (BatchNorm folded, per-channel lr scales, the paper's recipe: SGD 0.9, lr 1e-3, x10/x20 heads): train on a handful
// of synthetic demo photos, one fixed view each (no jitter), and print the training losses per epoch. A correct
// backward pass + optimizer memorises them (losses near 0); a broken one stays flat or diverges.
//   node --import tsx bench/overfit.ts [images=8] [epochs=30] [lr=1e-3] [headMult=10]   (head biases get 2 x headMult)
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDemo } from '../src/data/demo/generate.ts';
import { trainRun } from '../src/train/trainTask.ts';

const images = Number(process.argv[2] ?? 8);
const epochs = Number(process.argv[3] ?? 30);
const lr = Number(process.argv[4] ?? 1e-3);
const headMult = Number(process.argv[5] ?? 10);
const root = await mkdtemp(join(tmpdir(), 'dermtl-overfit-'));
const demo = await generateDemo(join(root, 'demo'), { n: Math.max(images, 12), seed: 3, size: 256 });
const t0 = performance.now();
const losses: string[] = [];
const r = await trainRun({
  manifest: demo.manifest,
  out: join(root, 'run'),
  task: 'mtl',
  mode: 'finetune',
  progress: false,
  log: (l) => losses.push(l),
  config: {
    trunk: 'resnet50',
    batchSize: images,
    optimizer: { lr, lrMult: { trunk: 1, headWeight: headMult, headBias: 2 * headMult } },
    validation: { fraction: 0 },
    image: { size: 224, resizeShorter: 256, jitter: { min: 256, max: 256 } },
    finetune: { epochs, subset: images },
    runtime: { loaderWorkers: 0 },
  },
});
console.log(losses.filter((l) => l.startsWith('epoch')).join('\n'));
for (const h of r.history)
  console.log(
    `epoch ${String(h.epoch).padStart(3)}  lesion ${h.train.lesion_loss.toFixed(4)}  location ${h.train.location_loss.toFixed(4)}`,
  );
console.log(`${images} images, ${r.step} updates, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
