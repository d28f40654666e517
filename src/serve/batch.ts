/**
 * `dermtl predict` as a function: expand the arguments (folders -> their images, sorted, recursive), predict each
 * image, and hand one result per image to the caller in argument order. A bad image is a result with `error`,
 * never the end of the batch.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { DermtlError } from '../util/errors.ts';
import type { DermtlModel, LabelScore, PredictOptions, SiteUse } from './api.ts';

/** Extensions picked up inside a folder argument (a file named on the command line is tried whatever its name). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff'];

export type BatchLine =
  | { image: string; lesions: LabelScore[]; location: LabelScore[]; site?: SiteUse }
  | { image: string; error: string };

/** One entry per image to predict; an argument that cannot become images is an entry with its error. */
export type BatchItem = { image: string; error?: string };

export async function expandImageArgs(args: readonly string[]): Promise<BatchItem[]> {
  const items: BatchItem[] = [];
  for (const arg of args) {
    const s = await stat(arg).catch(() => null);
    if (!s) items.push({ image: arg, error: `${arg}: no such file or folder` });
    else if (!s.isDirectory()) items.push({ image: arg });
    else {
      const found = await imagesUnder(arg);
      if (found.length) items.push(...found.map((image) => ({ image })));
      else items.push({ image: arg, error: `${arg}: folder has no images (${IMAGE_EXTENSIONS.join(' ')})` });
    }
  }
  return items;
}

/** Image files under `dir`, recursively, sorted by path (code-unit order, the same on every machine). */
async function imagesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase()))
    .map((e) => join(e.parentPath, e.name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface BatchOptions extends Pick<PredictOptions, 'tta' | 'top' | 'location'> {
  /** Images decoded ahead while the model runs (default 2). */
  prefetch?: number;
  onLine: (line: BatchLine) => void;
  onProgress?: (done: number, total: number) => void;
}

/** Predicts every item; lines come out in item order. Returns how many failed. */
export async function predictBatch(
  model: DermtlModel,
  items: readonly BatchItem[],
  opts: BatchOptions,
): Promise<number> {
  const window = Math.max(1, opts.prefetch ?? 2);
  const pending: Promise<BatchLine>[] = [];
  const start = (item: BatchItem): Promise<BatchLine> => {
    if (item.error) return Promise.resolve({ image: item.image, error: item.error });
    return model.predict(item.image, { tta: opts.tta, top: opts.top, location: opts.location }).then(
      (p) => ({ image: item.image, lesions: p.lesions, location: p.location, ...(p.site ? { site: p.site } : {}) }),
      (e: unknown) => {
        if (!(e instanceof DermtlError)) throw e; // a bug, not a bad image
        return { image: item.image, error: e.message };
      },
    );
  };
  let failed = 0;
  let next = 0;
  for (let done = 0; done < items.length; done++) {
    while (next < items.length && pending.length < window) pending.push(start(items[next++]));
    const line = await pending.shift()!;
    if ('error' in line) failed++;
    opts.onLine(line);
    opts.onProgress?.(done + 1, items.length);
  }
  return failed;
}
