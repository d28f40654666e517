// The step loop: resume from the latest checkpoint, run updates, validate every so often (feeding the
// plateau scheduler), checkpoint every so often, stop cleanly on an abort signal. Batches are a pure
// function of the update index, so a resumed run sees exactly the batches the interrupted one would have.
// Bit-identical resume also needs the graph to be deterministic: active Dropout draws its masks from a
// generator ORT seeds once per session, so a resumed run (new session) replays masks from the start.
import { DermtlError } from '../util/errors.ts';
import { restoreCheckpoint, saveCheckpoint } from './checkpoint.ts';
import type { Feeds, StepResult, Trainer } from './step.ts';

export interface LoopOptions {
  /** Total updates of the whole run (a resumed run continues up to it). */
  steps: number;
  /** Feeds for update `index` (0-based). Must depend only on index and fixed seeds (e.g. epoch = index / stepsPerEpoch). */
  batch: (index: number) => Feeds | Promise<Feeds>;
  checkpoint?: {
    root: string;
    /** Save after every `every` updates (and when stopped by the signal). */
    every: number;
    keep?: number;
    /** Continue from the checkpoint under root when there is one; default true. */
    resume?: boolean;
  };
  validate?: {
    /** Validate after every `every` updates. */
    every: number;
    /** The validation loss (e.g. mean of trainer.evalLoss over the validation batches). */
    loss: (trainer: Trainer) => Promise<number>;
  };
  /** Caller's JSON saved in each checkpoint (seeds, config); the step count is saved anyway. */
  progress?: (step: number) => unknown;
  onStep?: (r: StepResult) => void;
  onValidate?: (step: number, loss: number, lrReduced: boolean) => void;
  /** Finishes the current update, checkpoints, and returns. */
  signal?: AbortSignal;
}

export interface LoopResult {
  /** Updates applied in total (including those before a resume). */
  step: number;
  /** The step the run resumed from, when it did. */
  resumedFrom?: number;
  /** The progress JSON of the checkpoint resumed from. */
  resumedProgress?: unknown;
  stopped: boolean;
}

export async function runTraining(trainer: Trainer, opts: LoopOptions): Promise<LoopResult> {
  for (const [k, v] of [
    ['steps', opts.steps],
    ['checkpoint every', opts.checkpoint?.every ?? 1],
    ['validate every', opts.validate?.every ?? 1],
  ] as const) {
    if (!(Number.isInteger(v) && v >= (k === 'steps' ? 0 : 1)))
      throw new DermtlError(`${k} must be a whole number${k === 'steps' ? '' : ' >= 1'}, got ${v}`);
  }
  const ck = opts.checkpoint;
  const result: LoopResult = { step: trainer.stepCount, stopped: false };
  if (ck && (ck.resume ?? true)) {
    const info = await restoreCheckpoint(ck.root, trainer);
    if (info) Object.assign(result, { step: info.step, resumedFrom: info.step, resumedProgress: info.progress });
  }
  let saved = result.step;
  const save = async (step: number) => {
    if (ck && saved !== step) await saveCheckpoint(ck.root, trainer, opts.progress?.(step) ?? null, { keep: ck.keep });
    saved = step;
  };
  while (trainer.stepCount < opts.steps) {
    if (opts.signal?.aborted) {
      result.stopped = true;
      break;
    }
    const r = await trainer.step(await opts.batch(trainer.stepCount));
    opts.onStep?.(r);
    if (opts.validate && r.step % opts.validate.every === 0) {
      const loss = await opts.validate.loss(trainer);
      const reduced = trainer.scheduler?.observe(loss) ?? false;
      opts.onValidate?.(r.step, loss, reduced);
    }
    if (ck && r.step % ck.every === 0) await save(r.step);
  }
  result.step = trainer.stepCount;
  await save(result.step);
  return result;
}
