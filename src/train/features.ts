// The feature cache of frozen-trunk training: each image's pooled trunk features for a set of views, computed
// ONCE and kept on disk, keyed by
//   - the image CONTENT (sha256 of the file bytes: a renamed or copied file is a hit, an edited one a miss),
//   - the view set (kind, count, view seed, scale-jitter range, every preprocessing field), and
//   - the backbone id (which weights produced the features),
// so a cross-validation study computes every image's features once across folds, tasks and seeds.
//
//   <dir>/<backbone id>/<view set id>/<sha[0:2]>/<sha>.f32    header (magic, version, views, dim) + float32 data
//
// View sets: 'train' = V scaleJitter views, view k drawn from Rng.derive(viewSeed, 'trainView', content, k), so
// the same image gets the same views whatever list it is in; 'tenCrop' = the ten test views (corners + centre,
// then mirrored); 'center' = the single centre view of `--tta center`, which is tenCrop view 4 (the same box of
// the same resize). Partial fine-tuning's activation cache (activations.ts) renders its views here too.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from '../models/pretrained.ts';
import { viewLength, type Preprocessing, type ScaleJitterRange } from '../image/index.ts';
import { renderViewsInto } from '../image/views.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError } from '../util/errors.ts';
import { Rng } from '../util/rng.ts';
import { openBackbone, sha12, type Backbone, type BackboneSpec, backboneId } from './backbone.ts';

/** 'center': the one centre crop, the same pixels as tenCrop view CENTER_VIEW (validation needs no more). */
export type ViewSet =
  | { kind: 'train'; views: number; seed: number; jitter: ScaleJitterRange }
  | { kind: 'tenCrop' }
  | { kind: 'center' };

/** Index of the centre crop among the ten test views. */
export const CENTER_VIEW = 4;
export const TEN_CROP_VIEWS = 10;

export function viewsOf(set: ViewSet): number {
  return set.kind === 'train' ? set.views : set.kind === 'center' ? 1 : TEN_CROP_VIEWS;
}

/** Default cache folder: <dermtl cache root>/features. */
export function defaultFeatureDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'features');
}

/** The folder name of a view set: readable kind and count, plus a hash of everything that changes the pixels. */
export function viewSetId(set: ViewSet, prep: Preprocessing): string {
  const p = {
    size: prep.size,
    resizeShorter: prep.resizeShorter,
    kernel: prep.kernel,
    alphaBackground: prep.alphaBackground,
    channelOrder: prep.channelOrder,
    mean: prep.mean,
    std: prep.std,
    layout: prep.layout,
  };
  const key = set.kind === 'train' ? { ...set, prep: p } : { kind: set.kind, prep: p };
  return `${set.kind}${viewsOf(set)}-${sha12(JSON.stringify(key))}`;
}

/** Features of a list of images: image i, view k is data[(i * views + k) * dim ...+dim]. */
export interface ViewFeatures {
  views: number;
  dim: number;
  data: Float32Array;
}

export interface FeatureCacheOptions {
  /** Cache folder (see defaultFeatureDir). */
  dir: string;
  backbone: BackboneSpec;
  prep: Preprocessing;
  threads?: number;
  /** Views per trunk run (default 10). */
  batchViews?: number;
  /** Progress of computing missing features: images done, images to do. */
  progress?: (label: string) => ((done: number, total: number) => void) & { stop?: () => void };
  /** Opens the backbone when something must be computed (tests may count the calls). */
  openBackbone?: (spec: BackboneSpec) => Promise<Backbone>;
  /** Stops computing after the current image (what is done stays cached) with a DermtlError, exit code 130. */
  signal?: AbortSignal;
}

/** The cache key of an image: sha256 of its file's bytes, memoised per path (the feature and activation caches). */
export class ContentHashes {
  private readonly known = new Map<string, string>();

  async of(path: string): Promise<string> {
    const known = this.known.get(path);
    if (known) return known;
    const h = createHash('sha256')
      .update(await readImage(path))
      .digest('hex');
    this.known.set(path, h);
    return h;
  }
}

const MAGIC = 0x46544d44; // 'DMTF'
const FORMAT = 1;
const HEADER = 16;

export class FeatureCache {
  readonly stats = { hits: 0, misses: 0 };
  readonly backboneId: string;
  private readonly hashes = new ContentHashes();
  private backbone: Promise<Backbone> | null = null;

  constructor(readonly opts: FeatureCacheOptions) {
    this.backboneId = backboneId(opts.backbone);
  }

  /** File of one image's features. */
  entryPath(contentHash: string, set: ViewSet): string {
    return join(
      this.opts.dir,
      this.backboneId,
      viewSetId(set, this.opts.prep),
      contentHash.slice(0, 2),
      `${contentHash}.f32`,
    );
  }

  /** sha256 of a file's bytes (memoised per path for the life of this cache object). */
  contentHash(path: string): Promise<string> {
    return this.hashes.of(path);
  }

  /** Features of every image for `set`: read from the cache, the missing ones computed (and stored) first. */
  async features(images: readonly { path: string }[], set: ViewSet, label = 'features'): Promise<ViewFeatures> {
    const views = viewsOf(set);
    const hashes: string[] = [];
    for (const im of images) hashes.push(await this.contentHash(im.path));
    const found: (Float32Array | null)[] = await Promise.all(hashes.map((h) => this.read(h, set)));
    const missing = found.flatMap((f, i) => (f ? [] : [i]));
    this.stats.hits += images.length - missing.length;
    this.stats.misses += missing.length;
    let dim = found.find((f) => f)?.length;
    if (missing.length) {
      const computed = await this.compute(
        missing.map((i) => ({ path: images[i].path, hash: hashes[i] })),
        set,
        label,
      );
      missing.forEach((i, k) => (found[i] = computed[k]));
      dim = computed[0].length;
    }
    const d = (dim ?? 0) / views;
    const data = new Float32Array(images.length * views * d);
    found.forEach((f, i) => data.set(f!, i * views * d));
    return { views, dim: d, data };
  }

  async close(): Promise<void> {
    const b = this.backbone;
    this.backbone = null;
    if (b) await (await b).release();
  }

  private async read(hash: string, set: ViewSet): Promise<Float32Array | null> {
    const buf = await readFile(this.entryPath(hash, set)).catch(() => null);
    if (!buf || buf.length < HEADER) return null;
    const head = new DataView(buf.buffer, buf.byteOffset, HEADER);
    const views = head.getUint32(8, true);
    const dim = head.getUint32(12, true);
    // A damaged or foreign file is a miss (recomputed and replaced), never an error or a wrong feature.
    if (
      head.getUint32(0, true) !== MAGIC ||
      head.getUint32(4, true) !== FORMAT ||
      views !== viewsOf(set) ||
      buf.length !== HEADER + views * dim * 4
    )
      return null;
    const out = new Float32Array(views * dim);
    new Uint8Array(out.buffer).set(buf.subarray(HEADER));
    return out;
  }

  private async compute(todo: { path: string; hash: string }[], set: ViewSet, label: string): Promise<Float32Array[]> {
    this.backbone ??= (
      this.opts.openBackbone ?? ((s: BackboneSpec) => openBackbone(s, { threads: this.opts.threads }))
    )(this.opts.backbone);
    const backbone = await this.backbone;
    const bar = this.opts.progress?.(`${label}: ${todo.length} image(s) x ${viewsOf(set)} views (${this.backboneId})`);
    const out: Float32Array[] = [];
    try {
      // Decode/crop the next image (sharp runs on the libuv pool) while the trunk runs on this one.
      let next = this.render(todo[0], set);
      for (let i = 0; i < todo.length; i++) {
        if (this.opts.signal?.aborted) {
          await next.catch(() => {});
          throw new DermtlError(
            `stopped while caching features: ${i} of ${todo.length} image(s) done (they stay cached); run the same command again (with --resume for dermtl train) to continue`,
            130,
          );
        }
        const pixels = await next;
        if (i + 1 < todo.length) next = this.render(todo[i + 1], set);
        const f = await this.runTrunk(backbone, pixels, viewsOf(set));
        await this.write(todo[i].hash, set, f, backbone.featureDim);
        out.push(f);
        bar?.(i + 1, todo.length);
      }
    } finally {
      bar?.stop?.();
    }
    return out;
  }

  private render(item: { path: string; hash: string }, set: ViewSet): Promise<Float32Array> {
    return readImage(item.path).then((bytes) => renderViewSet(bytes, item, set, this.opts.prep));
  }

  private async runTrunk(backbone: Backbone, pixels: Float32Array, views: number): Promise<Float32Array> {
    const n = viewLength(this.opts.prep);
    const batch = this.opts.batchViews ?? 10;
    const out = new Float32Array(views * backbone.featureDim);
    for (let s = 0; s < views; s += batch) {
      const b = Math.min(batch, views - s);
      out.set(await backbone.run(pixels.subarray(s * n, (s + b) * n), b), s * backbone.featureDim);
    }
    return out;
  }

  private async write(hash: string, set: ViewSet, f: Float32Array, dim: number): Promise<void> {
    const buf = new Uint8Array(HEADER + f.byteLength);
    const head = new DataView(buf.buffer, 0, HEADER);
    head.setUint32(0, MAGIC, true);
    head.setUint32(4, FORMAT, true);
    head.setUint32(8, viewsOf(set), true);
    head.setUint32(12, dim, true);
    buf.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), HEADER);
    await writeFileAtomic(this.entryPath(hash, set), buf);
  }
}

/**
 * The views of `set` for one image ([views, 3, size, size]). Training view k comes from
 * Rng.derive(seed, 'trainView', content key, k): the same image gets the same views in every cache that uses them.
 */
export async function renderViewSet(
  bytes: Buffer,
  item: { path: string; hash: string },
  set: ViewSet,
  prep: Preprocessing,
): Promise<Float32Array> {
  const n = viewLength(prep);
  const out = new Float32Array(viewsOf(set) * n);
  if (set.kind !== 'train') {
    await renderViewsInto(bytes, set.kind, null, { prep, name: item.path }, out, 0);
    return out;
  }
  const key = Number.parseInt(item.hash.slice(0, 8), 16) | 0;
  for (let k = 0; k < set.views; k++) {
    await renderViewsInto(
      bytes,
      'train',
      Rng.derive(set.seed, 'trainView', key, k),
      { prep, jitter: set.jitter, name: item.path },
      out,
      k * n,
    );
  }
  return out;
}

export async function readImage(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new DermtlError(`cannot read image ${path} (${(e as NodeJS.ErrnoException).code})`);
  }
}
