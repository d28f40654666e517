// Shared by the study tests (not a test): a small SYNTHETIC demo set and a frozen-mode config on the TINY random
// trunk at 32x32, so a whole 3-fold study (9 trainings of 2 epochs) takes about a second and downloads nothing.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDemo } from '../../src/data/demo/generate.ts';

export interface StudyDemo {
  root: string;
  manifest: string;
  cache: string;
}

let demo: Promise<StudyDemo> | null = null;

/** 36 demo images of 64 px, generated once per test file into a temp folder. */
export function studyDemo(): Promise<StudyDemo> {
  demo ??= (async () => {
    const root = await mkdtemp(join(tmpdir(), 'dermtl-study-'));
    const d = await generateDemo(join(root, 'demo'), { n: 36, seed: 3, size: 64 });
    return { root, manifest: d.manifest, cache: join(root, 'cache') };
  })();
  return demo;
}

export function tempDir(prefix = 'dermtl-study-out-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Frozen mode on the tiny trunk; one ORT thread, so trainings are bit-reproducible. */
export function tinyStudyConfig(cacheDir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    trunk: 'tiny',
    image: { size: 32, resizeShorter: 36, jitter: { min: 36, max: 48 } },
    batchSize: 8,
    frozen: { epochs: 2, views: 2, shared: { hidden: 16, dropout: 0.5 } },
    cacheDir,
    runtime: { threads: 1, loaderWorkers: 0 },
    ...extra,
  };
}
