/**
 * ImageLoader: decodes and augments images in worker threads, a bounded number of batches ahead of the consumer,
 * so decoding overlaps the training or evaluation step. Results are byte-identical whatever the worker count.
 */
import 'sharp'; // sharp's docs: on glibc Linux the main thread must load sharp before any worker thread does
import { availableParallelism } from 'node:os';
import { Rng } from '../util/rng.ts';
import { DermtlError } from '../util/errors.ts';
import { HE_SCALE_JITTER, type ScaleJitterRange, type ViewParams } from './crops.ts';
import { DEFAULT_MAX_PIXELS } from './decode.ts';
import { CAFFE_PREPROCESSING, type Preprocessing } from './preprocess.ts';
import { VIEW_MODES, viewsPerImage, type ViewMode } from './views.ts';
import { renderBatch, type BatchTask, type RenderedBatch, type WorkerConfig } from './batch.ts';
import { WorkerPool } from './pool.ts';

export interface LoaderOptions {
  /** Worker threads (default: available cores). 0 renders on the calling thread (no overlap; for debugging). */
  workers?: number;
  /**
   * Batches prepared ahead of the consumer (default: max(2, workers)). Memory held is about
   * prefetch x batchSize x views x 602 KB (one 3x224x224 float32 view).
   */
  prefetch?: number;
  /** Images of one batch decoded concurrently inside one worker (default 2). */
  concurrency?: number;
  prep?: Preprocessing;
  jitter?: ScaleJitterRange;
  maxPixels?: number;
}

export interface LoaderItem {
  path: string;
}

export interface BatchOptions {
  mode: ViewMode;
  batchSize: number;
  seed: number;
  epoch?: number;
  /** Shuffle the order each epoch (default: true for 'train', false otherwise). */
  shuffle?: boolean;
  /** Drop a last, smaller batch (default false). */
  dropLast?: boolean;
  /**
   * Skip the first `startBatch` batches of the epoch's plan (default 0): a training run resumed mid-epoch gets
   * exactly the batches, and the augmentations, the interrupted run would have seen next.
   */
  startBatch?: number;
}

export interface Batch {
  /** Positions in the item list, in batch order. */
  indices: number[];
  /** Images in the batch. */
  n: number;
  /** Views per image (1, or 10 for tenCrop); image i owns rows i*views .. i*views+views-1. */
  views: number;
  /** NCHW float32, [n * views, 3, size, size]. */
  data: Float32Array;
  /** Where each view was cut: params[i][k] for image i, view k. */
  params: ViewParams[][];
}

/** The batches of an epoch as item indices: shuffled by Rng.derive(seed, 'order', epoch) when asked. */
export function batchOrder(count: number, opts: BatchOptions): number[][] {
  const all = Array.from({ length: count }, (_, i) => i);
  const shuffle = opts.shuffle ?? opts.mode === 'train';
  const order = shuffle ? Rng.derive(opts.seed, 'order', opts.epoch ?? 0).shuffle(all) : all;
  const out: number[][] = [];
  for (let i = 0; i < order.length; i += opts.batchSize) out.push(order.slice(i, i + opts.batchSize));
  if (opts.dropLast && out.length && out[out.length - 1].length < opts.batchSize) out.pop();
  return out;
}

export class ImageLoader {
  readonly workers: number;
  readonly prefetch: number;
  private readonly config: WorkerConfig;
  private pool: WorkerPool | null = null;
  private nextId = 0;
  private closed = false;

  constructor(opts: LoaderOptions = {}) {
    this.workers = opts.workers ?? availableParallelism();
    this.prefetch = opts.prefetch ?? Math.max(2, this.workers);
    checkInt('workers', this.workers, 0);
    checkInt('prefetch', this.prefetch, 1);
    const prep = opts.prep ?? CAFFE_PREPROCESSING;
    const jitter = opts.jitter ?? HE_SCALE_JITTER;
    if (jitter.min < prep.size || jitter.max < jitter.min) {
      throw new DermtlError(
        `scale jitter range [${jitter.min}, ${jitter.max}] must satisfy ${prep.size} <= min <= max`,
      );
    }
    if (prep.resizeShorter < prep.size)
      throw new DermtlError(`resizeShorter ${prep.resizeShorter} is below the crop size ${prep.size}`);
    this.config = {
      prep: {
        ...prep,
        mean: [...prep.mean],
        std: prep.std ? [...prep.std] : null,
        alphaBackground: [...prep.alphaBackground],
      },
      jitter: { ...jitter },
      maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS,
      concurrency: opts.concurrency ?? 2,
    };
    checkInt('concurrency', this.config.concurrency, 1);
  }

  /**
   * The epoch's batches, in order. Work starts at the first next() and stays `prefetch` batches ahead.
   * A bad image rejects with a DermtlError naming the file. Breaking out early is fine.
   */
  async *batches(items: readonly LoaderItem[], opts: BatchOptions): AsyncGenerator<Batch> {
    checkBatchOptions(opts);
    const plan = batchOrder(items.length, opts).slice(opts.startBatch ?? 0);
    const views = viewsPerImage(opts.mode);
    const pending: { indices: number[]; id: number; result: Promise<RenderedBatch> }[] = [];
    let next = 0;
    const fill = (): void => {
      while (next < plan.length && pending.length < this.prefetch) {
        const indices = plan[next++];
        const task: BatchTask = {
          id: this.nextId++,
          mode: opts.mode,
          seed: opts.seed,
          epoch: opts.epoch ?? 0,
          items: indices.map((index) => ({ index, path: itemPath(items, index) })),
        };
        const result = this.render(task);
        result.catch(() => {}); // awaited in order below; this only stops 'unhandled rejection' meanwhile
        pending.push({ indices, id: task.id, result });
      }
    };
    try {
      fill();
      while (pending.length) {
        const head = pending.shift()!;
        const r = await head.result;
        fill();
        yield { indices: head.indices, n: head.indices.length, views, data: r.data, params: r.params };
      }
    } finally {
      this.pool?.cancelQueued(new Set(pending.map((p) => p.id)));
    }
  }

  /** Stops the worker threads. The loader cannot be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
    this.pool = null;
  }

  private render(task: BatchTask): Promise<RenderedBatch> {
    if (this.closed) return Promise.reject(new Error('the image loader was closed'));
    if (this.workers === 0) return renderBatch(task, this.config);
    // A pool that lost a worker is replaced on the next batch rather than failing every later epoch.
    if (!this.pool || this.pool.failure) this.pool = new WorkerPool(this.workers, this.config);
    return this.pool.run(task);
  }
}

function itemPath(items: readonly LoaderItem[], index: number): string {
  const p = items[index]?.path;
  if (typeof p !== 'string' || !p) throw new DermtlError(`image item ${index} has no path`);
  return p;
}

function checkBatchOptions(opts: BatchOptions): void {
  if (!VIEW_MODES.includes(opts.mode)) {
    throw new DermtlError(`unknown view mode '${opts.mode}' (expected ${VIEW_MODES.join(', ')})`);
  }
  checkInt('batchSize', opts.batchSize, 1);
  checkInt('seed', opts.seed, -(2 ** 31));
  checkInt('epoch', opts.epoch ?? 0, 0);
  checkInt('startBatch', opts.startBatch ?? 0, 0);
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new DermtlError(`${name} must be an integer >= ${min}, got ${v}`);
}
