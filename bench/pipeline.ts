// Decode + augment throughput of the image pipeline on the derm7pt clinical photos (~480x320 JPEGs).
//   node --import tsx bench/pipeline.ts [--n 300] [--mode train|tenCrop|center] [--batch 16] [--workers 0,1,2]
//                                       [--data /path/to/derm7pt]
// Each worker count gets a fresh loader, a warm-up pass (worker start-up, sharp/JIT warm-up), then a timed pass
// over n images whose batches are consumed as fast as they come. Not a test: run it on an otherwise idle machine.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { ImageLoader, type LoaderItem } from '../src/image/loader.ts';
import { VIEW_MODES, type ViewMode } from '../src/image/views.ts';

const DEFAULT_DATA = new URL('../../shared/datasets/derm7pt', import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '300' },
    mode: { type: 'string', default: 'train' },
    batch: { type: 'string', default: '16' },
    workers: { type: 'string', default: '1,2' },
    data: { type: 'string', default: DEFAULT_DATA },
  },
});
const n = Number(values.n);
const batchSize = Number(values.batch);
const mode = values.mode as ViewMode;
const workerCounts = values.workers.split(',').map(Number);
if (!VIEW_MODES.includes(mode)) throw new Error(`--mode must be one of ${VIEW_MODES.join(', ')}`);
if (!(n > 0 && batchSize > 0 && workerCounts.every((w) => Number.isInteger(w) && w >= 0)))
  throw new Error('bad --n/--batch/--workers');

function clinicalImages(root: string): LoaderItem[] {
  const rows = parse(readFileSync(join(root, 'meta/meta.csv')), { columns: true }) as Record<string, string>[];
  const unique = [...new Set(rows.map((r) => r.clinic))];
  return unique.map((p) => ({ path: join(root, 'images', p) }));
}

async function pass(
  loader: ImageLoader,
  items: LoaderItem[],
  epoch: number,
): Promise<{ images: number; views: number; ms: number }> {
  const t0 = performance.now();
  let images = 0;
  let views = 0;
  for await (const b of loader.batches(items, { mode, batchSize, seed: 1, epoch, shuffle: false })) {
    images += b.n;
    views += b.n * b.views;
  }
  return { images, views, ms: performance.now() - t0 };
}

const all = clinicalImages(values.data);
const items = Array.from({ length: n }, (_, i) => all[i % all.length]);
const warm = items.slice(0, Math.min(n, 2 * batchSize));
console.log(`derm7pt clinical images: ${n} (of ${all.length}), mode ${mode}, batch ${batchSize}`);
const rows: string[][] = [['workers', 'images/s', 'views/s', 'ms/image', 'seconds']];
for (const workers of workerCounts) {
  const loader = new ImageLoader({ workers });
  try {
    await pass(loader, warm, 0);
    const r = await pass(loader, items, 1);
    const s = r.ms / 1000;
    rows.push([
      workers === 0 ? '0 (inline)' : String(workers),
      (r.images / s).toFixed(1),
      (r.views / s).toFixed(1),
      (r.ms / r.images).toFixed(2),
      s.toFixed(2),
    ]);
  } finally {
    await loader.close();
  }
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c])).join('  '));
