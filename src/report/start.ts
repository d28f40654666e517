import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generateDemo } from '../data/demo/generate.ts';
import { loadManifest } from '../data/manifest.ts';
import { formatStats, manifestStats, type ManifestStats } from '../data/statistics.ts';
import { writeFigure1 } from './figure1.ts';

export interface StartOptions {
  /** Dataset folder with a manifest.csv; synthetic demo data is generated there when it has none. */
  data: string;
  /** Where the figures go. */
  out: string;
  /** Demo-data settings, used only when the data is generated. */
  n: number;
  seed: number;
  size: number;
  /** Image-generation progress (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Where the readable report lines go (default: stdout). */
  log?: (line: string) => void;
}

export interface StartResult {
  manifest: string;
  generated: boolean;
  stats: ManifestStats;
  figures: { svg: string; png: string; json: string };
}

/**
 * What `npm start` does: make sure there is a dataset (the synthetic demo one by default), summarise it,
 * and draw Figure 1. Kept as a plain sequence of steps so later studies (cross-validation, training)
 * can be appended here.
 */
export async function runStart(opts: StartOptions): Promise<StartResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const manifestFile = join(resolve(opts.data), 'manifest.csv');
  const generated = !(await exists(manifestFile));
  if (generated) {
    log(`no dataset at ${opts.data}: generating ${opts.n} SYNTHETIC demo images (seed ${opts.seed})`);
    const r = await generateDemo(opts.data, { n: opts.n, seed: opts.seed, size: opts.size, onProgress: opts.onProgress });
    log(`generated ${r.images} images in ${r.groups} groups in ${(r.ms / 1000).toFixed(1)} s`);
  } else {
    log(`using the dataset at ${opts.data}`);
  }
  const manifest = await loadManifest(manifestFile);
  const stats = manifestStats(manifest);
  log('');
  log(`dataset ${manifestFile}`);
  for (const line of formatStats(stats)) log(line);

  const out = resolve(opts.out);
  const figures = { svg: join(out, 'figure1.svg'), png: join(out, 'figure1.png'), json: join(out, 'figure1.json') };
  await writeFigure1(manifest, figures);
  log('');
  log('Figure 1 (lesion x location co-occurrence):');
  for (const p of Object.values(figures)) log(`  ${p}`);
  return { manifest: manifestFile, generated, stats, figures };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
