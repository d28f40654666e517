// Shared by the train / eval / CLI tests of `dermtl train|eval|ensemble` (not a test): a small SYNTHETIC demo set
// (40 images of 64 px, src/data/demo), a 3-fold file, and a config with the TINY random trunk at 32x32, so nothing
// is downloaded and a whole frozen run takes well under a second.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDemo } from '../../src/data/demo/generate.ts';
import { loadManifest } from '../../src/data/manifest.ts';
import { makeFolds, writeFolds } from '../../src/data/splits.ts';
import type { Manifest } from '../../src/data/types.ts';
import { loadModel } from '../../src/models/modelFile.ts';

export interface Demo {
  root: string;
  manifest: string;
  folds: string;
  loaded: Manifest;
}

let demo: Promise<Demo> | null = null;

/** The demo set, generated once per test file (process) into a temp folder. */
export function demoSet(): Promise<Demo> {
  demo ??= (async () => {
    const root = await mkdtemp(join(tmpdir(), 'dermtl-train-'));
    const d = await generateDemo(join(root, 'demo'), { n: 40, seed: 1, size: 64 });
    const loaded = await loadManifest(d.manifest);
    const folds = join(root, 'folds.json');
    await writeFolds(folds, makeFolds(loaded, 3, 0));
    return { root, manifest: d.manifest, folds, loaded };
  })();
  return demo;
}

export function tempDir(prefix = 'dermtl-run-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A frozen-mode config on the tiny trunk; `cacheDir` keeps each test's feature cache apart. */
export function tinyConfig(cacheDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    trunk: 'tiny',
    image: { size: 32, resizeShorter: 36, jitter: { min: 36, max: 48 } },
    batchSize: 8,
    frozen: { epochs: 4, views: 3, shared: { hidden: 32, dropout: 0.5 } },
    finetune: { epochs: 1 },
    cacheDir,
    runtime: { threads: 1, loaderWorkers: 0 },
    ...extra,
  };
}

/** Every param of a run's saved model (a frozen run's heads on the rebuilt trunk). */
export async function modelParams(runDir: string): Promise<Map<string, Float32Array>> {
  return (await loadModel(join(runDir, 'model'), { session: false })).params();
}
