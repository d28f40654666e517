// Shared by the fusion serving tests (not a test): a tiny late-fusion MTL model (config fusion.enabled; its lesion head
// takes the body site) trained on the synthetic demo set like test/train/trainTask.test.ts, frozen tiny trunk at 32x32,
// once per test file (about a second). A higher frozen lr than the default so the site weights move visibly.
import { join } from 'node:path';
import { trainRun } from '../../src/train/trainTask.ts';
import { demoSet, tempDir, tinyConfig, type Demo } from '../train/fixture.ts';

export interface FusionModel {
  demo: Demo;
  /** The run folder (dermtl train --out). */
  run: string;
  /** Its model folder: heads.onnx, the tiny trunk by reference. */
  model: string;
}

let trained: Promise<FusionModel> | null = null;

export const FUSION_CONFIG = {
  fusion: { enabled: true },
  frozen: { epochs: 6, views: 3, lr: 0.01, members: 1, shared: { hidden: 32, dropout: 0.5 } },
};

export function fusionModel(): Promise<FusionModel> {
  trained ??= (async () => {
    const demo = await demoSet();
    const run = join(await tempDir('dermtl-fusion-'), 'run');
    const r = await trainRun({
      manifest: demo.manifest,
      out: run,
      task: 'mtl',
      folds: demo.folds,
      fold: 0,
      config: tinyConfig(join(demo.root, 'cache'), FUSION_CONFIG),
      progress: false,
      log: () => {},
    });
    if (r.status !== 'done') throw new Error(`fusion training ended ${r.status}`);
    return { demo, run, model: join(run, 'model') };
  })();
  return trained;
}
