/**
 * One batch of views, rendered the same way in a worker thread or inline: per-image randomness comes from
 * Rng.derive(seed, epoch, imageIndex) only, so the result never depends on which thread ran it or when.
 */
import { Rng } from '../util/rng.ts';
import type { ScaleJitterRange, ViewParams } from './crops.ts';
import { viewLength, type Preprocessing } from './preprocess.ts';
import { renderViewsInto, viewsPerImage, type ViewMode } from './views.ts';

/** Fixed for the life of a worker (sent once as workerData). */
export interface WorkerConfig {
  prep: Preprocessing;
  jitter: ScaleJitterRange;
  maxPixels: number;
  /** Images of a batch decoded at the same time within one thread (overlaps decoding with packing). */
  concurrency: number;
}

export interface BatchTask {
  id: number;
  mode: ViewMode;
  seed: number;
  epoch: number;
  /** index: position of the item in the list given to the loader (the key of its random stream). */
  items: { index: number; path: string }[];
}

export interface RenderedBatch {
  /** [items.length * views, 3, size, size] */
  data: Float32Array;
  params: ViewParams[][];
}

export type WorkerReply =
  | ({ id: number; ok: true } & RenderedBatch)
  | { id: number; ok: false; message: string; userError: boolean };

export async function renderBatch(task: BatchTask, config: WorkerConfig): Promise<RenderedBatch> {
  const per = viewsPerImage(task.mode) * viewLength(config.prep);
  const data = new Float32Array(task.items.length * per);
  const params: ViewParams[][] = new Array(task.items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < task.items.length) {
      const i = next++;
      const { index, path } = task.items[i];
      const rng = task.mode === 'train' ? Rng.derive(task.seed, task.epoch, index) : null;
      params[i] = await renderViewsInto(path, task.mode, rng, config, data, i * per);
    }
  };
  const lanes = Math.max(1, Math.min(config.concurrency, task.items.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  return { data, params };
}
