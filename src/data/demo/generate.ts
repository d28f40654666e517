import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeDirAtomic } from '../../util/atomic.ts';
import { DermtlError } from '../../util/errors.ts';
import { Rng } from '../../util/rng.ts';
import { writeManifest } from '../manifest.ts';
import type { ManifestRow } from '../types.ts';
import { planDemo, type DemoScene } from './plan.ts';
import type { PixelBox } from './canvas.ts';
import { drawScene, encodeView, renderView, sceneBoxInView } from './scene.ts';
import { LESION_WEIGHTS, LESIONS, SITES } from './table.ts';

/** Marker file that identifies a folder written by this generator (and so safe to replace). */
export const DEMO_MARKER = 'demo.json';
const DEMO_VERSION = 1;

export interface DemoOptions {
  /** Number of images. */
  n: number;
  seed: number;
  /** Photo width in pixels (some photos are a little less tall than wide). */
  size: number;
  /** Called after each written image with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface DemoResult {
  dir: string;
  manifest: string;
  images: number;
  groups: number;
  ms: number;
}

/**
 * Writes a SYNTHETIC dataset to `dir`: images/*.jpg, manifest.csv, README.txt and the demo.json marker.
 * The folder is built next to `dir` and renamed into place, so a failed run leaves nothing half-written.
 * Refuses a non-empty folder that is not a previous demo folder, so real data is never overwritten.
 */
export async function generateDemo(dir: string, opts: DemoOptions): Promise<DemoResult> {
  checkOptions(opts);
  const out = resolve(dir);
  await assertReplaceable(out);
  const t0 = performance.now();
  const scenes = planDemo(opts.n, opts.seed);
  await writeDirAtomic(out, async (tmp) => {
    await mkdir(join(tmp, 'images'));
    await writeImages(tmp, scenes, opts);
    await writeManifest(join(tmp, 'manifest.csv'), manifestRows(scenes));
    await writeFile(join(tmp, 'README.txt'), readme(opts));
    await writeFile(join(tmp, DEMO_MARKER), JSON.stringify(marker(opts), null, 2) + '\n');
  });
  return {
    dir: out,
    manifest: join(out, 'manifest.csv'),
    images: opts.n,
    groups: scenes.length,
    ms: performance.now() - t0,
  };
}

function checkOptions(o: DemoOptions): void {
  if (!Number.isInteger(o.n) || o.n < 1 || o.n > 1_000_000)
    throw new DermtlError(`--n must be an integer from 1 to 1000000, got ${o.n}`);
  if (!Number.isInteger(o.seed)) throw new DermtlError(`--seed must be an integer, got ${o.seed}`);
  if (!Number.isInteger(o.size) || o.size < 64 || o.size > 2048)
    throw new DermtlError(`--size must be an integer from 64 to 2048, got ${o.size}`);
}

/** A missing or empty folder, or one holding our marker, may be (re)written; anything else is someone's data. */
async function assertReplaceable(dir: string): Promise<void> {
  let entries: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new DermtlError(`--out ${dir} exists and is not a folder`);
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (entries.length === 0 || (await isDemoDir(dir))) return;
  throw new DermtlError(
    `--out ${dir} is not empty and was not written by 'dermtl demo-data' (no ${DEMO_MARKER}); refusing to overwrite it. ` +
      'Choose a new or empty folder.',
  );
}

/** True when `dir` holds a marker written by this generator. */
export async function isDemoDir(dir: string): Promise<boolean> {
  try {
    const m = JSON.parse(await readFile(join(dir, DEMO_MARKER), 'utf8'));
    return m?.generator === 'dermtl demo-data';
  } catch {
    return false;
  }
}

/**
 * Draws scene by scene (synchronous JS) while the JPEG encodes and file writes of earlier views run on
 * libuv's thread pool; at most `inFlight` of them are pending. Every view's pixels depend only on the
 * seed and its scene, so the order the writes finish in cannot change any byte.
 */
async function writeImages(tmp: string, scenes: DemoScene[], opts: DemoOptions): Promise<void> {
  const total = scenes.reduce((s, sc) => s + sc.views.length, 0);
  const pending = new Set<Promise<void>>();
  let done = 0;
  for (const scene of scenes) {
    const canvas = drawScene(scene, opts.seed, opts.size);
    for (const [v, view] of scene.views.entries()) {
      const raw = renderView(canvas, view, opts.size, Rng.derive(opts.seed, 'view-noise', scene.index, v));
      const p: Promise<void> = encodeView(raw, view)
        .then((jpg) => writeFile(join(tmp, view.image), jpg))
        .then(() => {
          pending.delete(p);
          opts.onProgress?.(++done, total);
        });
      pending.add(p);
      if (pending.size >= 8) await Promise.race(pending);
    }
  }
  await Promise.all(pending);
}

function manifestRows(scenes: DemoScene[]): ManifestRow[] {
  return scenes.flatMap((s) =>
    s.views.map((v) => ({ image: v.image, lesions: s.lesions, location: s.site, group: s.group })),
  );
}

function marker(o: DemoOptions) {
  return { generator: 'dermtl demo-data', version: DEMO_VERSION, synthetic: true, n: o.n, seed: o.seed, size: o.size };
}

function readme(o: DemoOptions): string {
  const table = SITES.map(
    (s) => `  ${s.padEnd(6)} ${LESIONS.map((l) => String(LESION_WEIGHTS[s][l]).padStart(4)).join(' ')}`,
  );
  return [
    'SYNTHETIC DEMO DATA -- NOT REAL PATIENT IMAGES, NOT FOR ANY MEDICAL USE.',
    '',
    `Generated by 'dermtl demo-data --n ${o.n} --seed ${o.seed} --size ${o.size}'. Real dermatology photographs`,
    'cannot be shipped with dermtl, so these pictures are drawn by a program: skin whose tone, texture and',
    'hair depend on the body site, with simple drawn lesions (papule, plaque, scale, crust, macule, vesicle,',
    'erosion, nodule, ulcer, telangiectasia). Each group is one drawn scene photographed 1-3 times with a',
    'different framing, rotation and lighting. The same options always give byte-identical files.',
    '',
    'manifest.csv columns: image,lesions,location,group (lesions separated by ";").',
    '',
    'Lesion weights per site (each image has 0-3 lesion types drawn with these weights):',
    `         ${LESIONS.map((l) => l.slice(0, 4).padStart(4)).join(' ')}`,
    ...table,
    '',
  ].join('\n');
}

/** Where one drawn lesion is in one photo of a demo dataset: its type and box in photo pixels (continuous edges). */
export interface DemoLesionBox {
  lesion: string;
  box: { x0: number; y0: number; x1: number; y1: number };
}

/**
 * The lesion boxes of every photo of the demo dataset `generateDemo(.., { n, seed, size })` writes, by manifest image
 * path (redrawing each scene; the pixels are not written). A lesion outside a photo's frame is left out of it.
 */
export function demoLesionBoxes(
  opts: Pick<DemoOptions, 'n' | 'seed' | 'size'>,
  only?: ReadonlySet<string>,
): Map<string, DemoLesionBox[]> {
  checkOptions(opts);
  const out = new Map<string, DemoLesionBox[]>();
  for (const scene of planDemo(opts.n, opts.seed)) {
    if (only && !scene.views.some((v) => only.has(v.image))) continue;
    const boxes: PixelBox[] = [];
    const canvas = drawScene(scene, opts.seed, opts.size, boxes);
    for (const view of scene.views) {
      const inView = boxes.flatMap((b, i) => {
        const box = b.x0 <= b.x1 ? sceneBoxInView(b, view, opts.size, canvas.width) : null;
        return box ? [{ lesion: scene.lesions[i], box }] : [];
      });
      out.set(view.image, inView);
    }
  }
  return out;
}
