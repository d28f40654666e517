// The activation cache of partial fine-tuning: for each image and view, the activation that enters the first
// trainable stage (what the frozen trunk below it computes), computed ONCE and kept on disk in float16. It is keyed
// like the feature cache (features.ts): image content (sha256), view set (views, seed, jitter, preprocessing) and
// backbone id, plus the stage it enters:
//
//   <dir>/<backbone id>/below-stage<K>-v<version>/<view set id>/<sha[0:2]>/<sha>.f16
//     header  magic 'DMTA', format, views, C, H, W (uint32 LE), sha256 of the entry key (32 bytes)
//     data    views x C x H x W float16, view-major
//
// A ResNet-50 stage-5 input is 1024x14x14 (392 KiB per view), so training reads it STREAMED: one view of each image
// of a batch, straight from its file. A damaged entry (short, wrong magic) is recomputed; an entry whose key names
// other weights, views or preprocessing (a copied or foreign folder) is an error, found before any work starts.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Preprocessing } from '../image/index.ts';
import type { TrunkStage } from '../models/resnet.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { decodeHalf, encodeHalf } from '../util/float16.ts';
import { backboneId, loadTrunkWeights, type BackboneSpec, type TrunkWeights } from './backbone.ts';
import { ContentHashes, readImage, renderViewSet, viewSetId, viewsOf, type ViewSet } from './features.ts';
import { lowerTrunkShape, openLowerTrunk, type LowerTrunk } from './lowerTrunk.ts';

/** Bump when the activations of the same trunk, stage and views would change. */
const ACTIVATION_VERSION = 1;
const MAGIC = 0x41544d44; // 'DMTA'
const FORMAT = 1;
const HEADER = 24 + 32;

export interface ActivationCacheOptions {
  /** Cache folder (the feature cache's: config.cacheDir or defaultFeatureDir()). */
  dir: string;
  backbone: BackboneSpec;
  /** The first trainable stage: its input is what is cached. */
  stage: TrunkStage;
  prep: Preprocessing;
  threads?: number;
  /** Views per trunk run when computing (default 10). */
  batchViews?: number;
  /** The trunk's weights, asked for only when something must be computed (default: loadTrunkWeights). */
  weights?: () => Promise<TrunkWeights>;
  progress?: (label: string) => ((done: number, total: number) => void) & { stop?: () => void };
  /** Stops computing after the current image (what is done stays cached) with a DermtlError, exit code 130. */
  signal?: AbortSignal;
}

/** A list of images whose activations for `set` are all on disk: what `read` takes. */
export interface CachedViews {
  set: ViewSet;
  views: number;
  /** Content hash of image i. */
  hashes: string[];
}

export interface ActivationRequest {
  images: readonly { path: string }[];
  set: ViewSet;
  /** Progress label while computing. */
  label: string;
}

export class ActivationCache {
  readonly stats = { hits: 0, misses: 0 };
  /** Which weights and cut made these activations (the folder under the cache root). */
  readonly id: string;
  readonly shape: [number, number, number];
  /** Floats per view: C x H x W. */
  readonly viewLength: number;
  private readonly hashes = new ContentHashes();
  private trunk: Promise<LowerTrunk> | null = null;

  constructor(readonly opts: ActivationCacheOptions) {
    this.id = `${backboneId(opts.backbone)}/below-stage${opts.stage}-v${ACTIVATION_VERSION}`;
    this.shape = lowerTrunkShape(opts.backbone, opts.stage);
    this.viewLength = this.shape[0] * this.shape[1] * this.shape[2];
  }

  entryPath(contentHash: string, set: ViewSet): string {
    return join(this.opts.dir, this.id, viewSetId(set, this.opts.prep), contentHash.slice(0, 2), `${contentHash}.f16`);
  }

  /** sha256 of a file's bytes (memoised per path). */
  contentHash(path: string): Promise<string> {
    return this.hashes.of(path);
  }

  /**
   * Makes sure every request's activations are on disk: checks ALL entries first (a foreign one is an error before
   * anything is computed), then computes the missing ones. Returns what `read` needs, per request.
   */
  async prepare(requests: readonly ActivationRequest[]): Promise<CachedViews[]> {
    const plans = [];
    for (const r of requests) plans.push(await this.plan(r));
    const foreign = plans.flatMap((p) => p.foreign);
    if (foreign.length) {
      throw errorList(
        `the activation cache under ${join(this.opts.dir, this.id)} holds entries written for other weights, views or preprocessing (a copied or foreign folder?); delete that folder and run again`,
        foreign,
        5,
      );
    }
    for (const p of plans) {
      this.stats.hits += p.cached.hashes.length - p.missing.length;
      this.stats.misses += p.missing.length;
      if (p.missing.length)
        await this.compute(
          p.missing.map((i) => ({ path: p.request.images[i].path, hash: p.cached.hashes[i] })),
          p.request.set,
          p.request.label,
        );
    }
    return plans.map((p) => p.cached);
  }

  /**
   * Reads, for each row, view `view` of image `image` of `cached` into `out` (row r at r x viewLength): one read
   * per row, straight from its file, so memory stays at one batch whatever the data set.
   */
  async read(cached: CachedViews, rows: readonly { image: number; view: number }[], out: Float32Array): Promise<void> {
    const len = this.viewLength;
    if (out.length < rows.length * len)
      throw new Error(
        `activation batch buffer holds ${out.length} floats, ${rows.length} views need ${rows.length * len}`,
      );
    await Promise.all(
      rows.map(async ({ image, view }, r) => {
        const half = new Uint16Array(len);
        const path = this.entryPath(cached.hashes[image], cached.set);
        const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
          throw new DermtlError(
            `activation cache entry ${path} is gone (${e.code}); was the cache deleted during training? Run again to recompute it`,
          );
        });
        try {
          const { bytesRead } = await fh.read(new Uint8Array(half.buffer), 0, len * 2, HEADER + view * len * 2);
          if (bytesRead !== len * 2)
            throw new DermtlError(`activation cache entry ${path} is truncated; delete it and run again`);
        } finally {
          await fh.close();
        }
        decodeHalf(half, out, r * len);
      }),
    );
  }

  async close(): Promise<void> {
    const t = this.trunk;
    this.trunk = null;
    if (t) await (await t).release();
  }

  /** The entry key: everything that fixes the numbers of an entry, hashed into its header. */
  private keyOf(set: ViewSet): Uint8Array {
    const key = { id: this.id, viewSet: viewSetId(set, this.opts.prep), shape: this.shape, views: viewsOf(set) };
    return createHash('sha256').update(JSON.stringify(key)).digest();
  }

  private async plan(request: ActivationRequest) {
    const hashes: string[] = [];
    for (const im of request.images) hashes.push(await this.contentHash(im.path));
    const key = this.keyOf(request.set);
    const states: ('ok' | 'missing' | 'foreign')[] = [];
    // A bounded number of open files at a time (a study checks every image of the data set).
    for (let s = 0; s < hashes.length; s += 64)
      states.push(...(await Promise.all(hashes.slice(s, s + 64).map((h) => this.entryState(h, request.set, key)))));
    return {
      request,
      cached: { set: request.set, views: viewsOf(request.set), hashes } as CachedViews,
      missing: states.flatMap((s, i) => (s === 'missing' ? [i] : [])),
      foreign: states.flatMap((s, i) =>
        s === 'foreign' ? [`${this.entryPath(hashes[i], request.set)} (image ${request.images[i].path})`] : [],
      ),
    };
  }

  private async entryState(hash: string, set: ViewSet, key: Uint8Array): Promise<'ok' | 'missing' | 'foreign'> {
    const fh = await open(this.entryPath(hash, set), 'r').catch(() => null);
    if (!fh) return 'missing';
    try {
      const head = new Uint8Array(HEADER);
      const { bytesRead } = await fh.read(head, 0, HEADER, 0);
      const size = (await fh.stat()).size;
      const v = new DataView(head.buffer);
      // Not our format, or cut short: a damaged entry, recomputed and replaced.
      if (bytesRead < HEADER || v.getUint32(0, true) !== MAGIC || v.getUint32(4, true) !== FORMAT) return 'missing';
      if (!Buffer.from(head.subarray(24)).equals(key)) return 'foreign';
      return size === HEADER + viewsOf(set) * this.viewLength * 2 ? 'ok' : 'missing';
    } finally {
      await fh.close();
    }
  }

  private async compute(todo: { path: string; hash: string }[], set: ViewSet, label: string): Promise<void> {
    this.trunk ??= (async () =>
      openLowerTrunk(
        this.opts.backbone,
        this.opts.stage,
        await (this.opts.weights ?? (() => loadTrunkWeights(this.opts.backbone.trunk)))(),
        this.opts.threads,
      ))();
    const trunk = await this.trunk;
    const bar = this.opts.progress?.(`${label}: ${todo.length} image(s) x ${viewsOf(set)} views (${this.id})`);
    const render = (item: { path: string; hash: string }) =>
      readImage(item.path).then((bytes) => renderViewSet(bytes, item, set, this.opts.prep));
    try {
      // Decode/crop the next image (sharp runs on the libuv pool) while the trunk runs on this one.
      let next = render(todo[0]);
      for (let i = 0; i < todo.length; i++) {
        if (this.opts.signal?.aborted) {
          await next.catch(() => {});
          throw new DermtlError(
            `stopped while caching activations: ${i} of ${todo.length} image(s) done (they stay cached); run the same command again (with --resume for dermtl train) to continue`,
            130,
          );
        }
        const pixels = await next;
        if (i + 1 < todo.length) next = render(todo[i + 1]);
        await this.write(todo[i].hash, set, await this.runTrunk(trunk, pixels, viewsOf(set)));
        bar?.(i + 1, todo.length);
      }
    } finally {
      bar?.stop?.();
    }
  }

  /** All views of one image through the lower trunk, as float16. */
  private async runTrunk(trunk: LowerTrunk, pixels: Float32Array, views: number): Promise<Uint16Array> {
    const n = pixels.length / views;
    const batch = this.opts.batchViews ?? 10;
    const len = this.viewLength;
    const out = new Uint16Array(views * len);
    for (let s = 0; s < views; s += batch) {
      const b = Math.min(batch, views - s);
      encodeHalf(await trunk.run(pixels.subarray(s * n, (s + b) * n), b), out.subarray(s * len, (s + b) * len));
    }
    return out;
  }

  private async write(hash: string, set: ViewSet, data: Uint16Array): Promise<void> {
    const buf = new Uint8Array(HEADER + data.byteLength);
    const head = new DataView(buf.buffer, 0, HEADER);
    [MAGIC, FORMAT, viewsOf(set), ...this.shape].forEach((x, i) => head.setUint32(4 * i, x, true));
    buf.set(this.keyOf(set), 24);
    buf.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), HEADER);
    await writeFileAtomic(this.entryPath(hash, set), buf);
  }
}
