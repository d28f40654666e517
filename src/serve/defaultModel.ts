// Which model `dermtl predict` / `dermtl serve` use when no --model is given: the multi-task model of fold 0 of
// the study that `npm start` writes. The study runner owns that layout; this constant is the one place to align.
import { resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import { DermtlError } from '../util/errors.ts';

/** Model folder of the most recent `npm start` study (MTL, fold 0), relative to the working directory. */
export const DEFAULT_MODEL_PATH = 'demo/study/models/mtl/fold-0/model';

export function defaultModelPath(cwd = process.cwd()): string {
  return resolve(cwd, DEFAULT_MODEL_PATH);
}

/** The --model argument, or the default model when it exists; else a one-line DermtlError saying how to get one. */
export async function resolveModelPath(given: string | undefined, cwd = process.cwd()): Promise<string> {
  if (given) return given;
  const path = defaultModelPath(cwd);
  if (
    await stat(path).then(
      () => true,
      () => false,
    )
  )
    return path;
  throw new DermtlError(`no model at ./${DEFAULT_MODEL_PATH}: run npm start first, or pass --model DIR`);
}
