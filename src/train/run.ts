// The run folder of `dermtl train` (and of `dermtl ensemble`): everything needed to know what was trained and to
// evaluate or resume it.
//
//   RUN/run.json        what this run is: format/version, kind, status, task, mode, seed, manifest + hash, fold,
//                       label lists, the train/validation/test split, the backbone, timings
//   RUN/config.json     the resolved training config (defaults + --config file + flags)
//   RUN/history.json    per epoch: training losses, validation losses and metrics, learning rate
//   RUN/checkpoints/    weights + optimizer + scheduler + data-order position (latest.json pointer); with
//                       selected.bin (the best epoch's params) only kept while training: a finished run deletes them
//   RUN/model/          the final model folder (saveModel / loadModel), written last; a frozen-trunk run's holds
//                       the heads only and names the ImageNet trunk (models/trunkReference.ts; dermtl export
//                       writes the whole network as one model.onnx)
//   RUN/scores.csv, RUN/metrics.json   written by `dermtl eval`
import { readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError } from '../util/errors.ts';
import { parseWith } from '../util/jsonFile.ts';
import { TrainConfigSchema, type TrainConfig } from './config.ts';

export const RUN_FORMAT = 'dermtl-run';
/** Bump when a run folder written by this code could be misread by an older reader (or vice versa). */
export const RUN_VERSION = 1;

export const RUN_FILES = {
  run: 'run.json',
  config: 'config.json',
  history: 'history.json',
  checkpoints: 'checkpoints',
  model: 'model',
  scores: 'scores.csv',
  metrics: 'metrics.json',
} as const;

export interface RunLabels {
  lesion: string[];
  location: string[];
}

/** Per-epoch record of history.json. Losses are means over the epoch's images (validation: over its images). */
export interface EpochRecord {
  epoch: number;
  /** Updates applied at the end of this epoch. */
  step: number;
  /** Learning rate used during the epoch (its last update). */
  lr: number;
  train: Record<string, number>;
  validation: Record<string, number | null> | null;
  /** The plateau scheduler lowered the lr after this epoch. */
  lrReduced: boolean;
}

const labelsSchema = z.object({ lesion: z.array(z.string()), location: z.array(z.string()) });

const runSchema = z.object({
  format: z.literal(RUN_FORMAT),
  version: z.number(),
  kind: z.enum(['model', 'ensemble']),
  status: z.enum(['training', 'done']),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  task: z.enum(['mtl', 'lesion', 'location']),
  labels: labelsSchema,
  manifest: z.object({ file: z.string(), hash: z.string(), images: z.number() }),
  folds: z.object({ file: z.string(), fold: z.number().int() }).nullable(),
  mode: z.enum(['frozen', 'finetune']).nullable(),
  seed: z.number().nullable(),
  config: z.unknown().nullable(),
  split: z.object({ train: z.number(), validation: z.array(z.string()), test: z.number() }).nullable(),
  backbone: z.object({ id: z.string() }).loose().nullable(),
  members: z.array(z.string()).nullable(),
  /** The epoch kept by model selection on the validation part (absent or null: the last epoch). */
  selection: z.object({ epoch: z.number().int(), metric: z.string(), score: z.number() }).nullable().optional(),
  /** An MTL run's task weights: as configured, learned (uncertainty) or chosen on validation (tuned). */
  taskWeights: z
    .object({
      kind: z.enum(['fixed', 'uncertainty', 'tuned']),
      lesion: z.number(),
      location: z.number(),
      /** uncertainty: the learned log-variances s_t (weights exp(-s_t)). */
      logVariance: z.object({ lesion: z.number(), location: z.number() }).optional(),
      /** tuned: each grid value's validation lesion mAP-class at its kept epoch. */
      candidates: z
        .array(z.object({ location: z.number(), score: z.number().nullable(), epoch: z.number().int().nullable() }))
        .optional(),
    })
    .nullable()
    .optional(),
  timings: z.record(z.string(), z.number()),
});

export type TaskWeightsRecord = NonNullable<z.infer<typeof runSchema>['taskWeights']>;

export type RunInfo = z.infer<typeof runSchema>;

export function runFile(dir: string, name: keyof typeof RUN_FILES): string {
  return join(dir, RUN_FILES[name]);
}

export async function writeRunInfo(dir: string, info: RunInfo): Promise<void> {
  await writeFileAtomic(runFile(dir, 'run'), `${JSON.stringify(info, null, 2)}\n`);
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** run.json of `dir`, or undefined when `dir` does not exist or has no run.json (a fresh run). */
export async function readRunInfoIfAny(dir: string): Promise<RunInfo | undefined> {
  const file = runFile(dir, 'run');
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw new DermtlError(`${file}: cannot read it (${e.code})`);
  });
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DermtlError(`${file}: not valid JSON (${(e as Error).message}); the run folder is damaged`);
  }
  const head = z.object({ format: z.string(), version: z.number() }).loose().safeParse(raw);
  if (!head.success || head.data.format !== RUN_FORMAT)
    throw new DermtlError(`${file}: not a dermtl run (no "format": "${RUN_FORMAT}")`);
  if (head.data.version !== RUN_VERSION) {
    throw new DermtlError(
      `${dir}: run folder format version ${head.data.version}; this dermtl reads version ${RUN_VERSION}. Train the run again with this version.`,
    );
  }
  return parseWith(runSchema, raw, file);
}

/**
 * A finished run folder for evaluation: it must exist, be ours, of this version, and complete (status done,
 * model folder present for a trained model).
 */
export async function readFinishedRun(dir: string): Promise<RunInfo> {
  const kind = await stat(dir).then(
    (s) => (s.isDirectory() ? 'dir' : 'file'),
    () => null,
  );
  if (kind !== 'dir')
    throw new DermtlError(
      `${dir}: ${kind ? 'not a folder' : 'no such folder'}; expected a run folder written by dermtl train or dermtl ensemble`,
    );
  const info = await readRunInfoIfAny(dir);
  if (!info) throw new DermtlError(`${dir} is not a dermtl run folder (it has no ${RUN_FILES.run})`);
  if (info.status !== 'done') {
    throw new DermtlError(
      `${dir}: the run is incomplete (status "${info.status}": training was interrupted or is still going); finish it with dermtl train ... --out ${dir} --resume`,
    );
  }
  if (info.kind === 'model') {
    const model = runFile(dir, 'model');
    if (
      !(await stat(join(model, 'dermtl.json')).then(
        (s) => s.isFile(),
        () => false,
      ))
    ) {
      throw new DermtlError(`${dir}: the run is incomplete: ${model} is missing (it is written when training ends)`);
    }
  }
  return info;
}

/**
 * Deletes what only a resume needs (checkpoints/ and `files`, e.g. the selected params) from a run whose run.json
 * says done: its model folder holds the kept params. A crash half-way leaves some of it, which is harmless.
 */
export async function pruneFinishedRun(dir: string, files: readonly string[]): Promise<void> {
  await rm(runFile(dir, 'checkpoints'), { recursive: true, force: true });
  for (const f of files) await rm(join(dir, f), { force: true });
}

/** The resolved config stored in a run (checked: an edited or foreign config.json is refused). */
export function storedConfig(dir: string, info: RunInfo): TrainConfig {
  const r = TrainConfigSchema.safeParse(info.config);
  if (!r.success)
    throw new DermtlError(
      `${runFile(dir, 'run')}: its config does not parse with this dermtl (${r.error.issues[0]?.message}); train the run again`,
    );
  return r.data;
}

export function absolute(p: string): string {
  return resolve(p);
}
