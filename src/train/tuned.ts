// taskWeighting 'tuned' (issue 9): the MTL location-loss weight chosen per run on its validation part. One ordinary
// MTL run per grid value (lesion weight 1) in RUN/tune/location-<w>/, the same split and seed; the winner is the one
// whose kept epoch has the best validation lesion mAP-class (the test part is never looked at), and its model
// folder and history become the run's. Every candidate's score is recorded in run.json (taskWeights.candidates).
import { cp, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../util/atomic.ts';
import { DermtlError } from '../util/errors.ts';
import type { TrainConfig } from './config.ts';
import { readRunInfoIfAny, runFile, writeRunInfo, type RunInfo, type TaskWeightsRecord } from './run.ts';
import type { TrainOptions, TrainResult } from './trainContext.ts';

export const TUNE_DIR = 'tune';

export interface TunedCandidate {
  location: number;
  /** Validation lesion mAP-class at the candidate's kept epoch (null: no validation part). */
  score: number | null;
  epoch: number | null;
}

/** The candidate folder of grid value `w`. */
export function candidateDir(dir: string, w: number): string {
  return join(dir, TUNE_DIR, `location-${w}`);
}

/**
 * Trains every candidate of config.taskWeighting.grid with `trainRun` (passed in: trainTask imports this file),
 * then finishes the run in `dir` (already prepared by trainRun) as a copy of the best one.
 */
export async function trainTuned(
  dir: string,
  info: RunInfo,
  config: TrainConfig,
  opts: TrainOptions,
  trainRun: (o: TrainOptions) => Promise<TrainResult>,
): Promise<TrainResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const candidates: TunedCandidate[] = [];
  const timings: Record<string, number> = {};
  // a value given twice is one candidate (a second run into its folder would be refused as "already holds a run")
  for (const w of [...new Set(config.taskWeighting.grid)]) {
    const out = candidateDir(dir, w);
    log(`tuned task weighting: candidate location weight ${w} (lesion 1) in ${out}`);
    const exists = await stat(runFile(out, 'run')).then(
      () => true,
      () => false,
    );
    const sub = await trainRun({
      ...opts,
      out,
      configFile: undefined,
      resume: exists && opts.resume,
      config: {
        ...config,
        taskWeighting: { ...config.taskWeighting, kind: 'fixed' },
        taskWeights: { lesion: 1, location: w },
      },
    });
    if (sub.status === 'stopped') return { ...sub, dir, info };
    const subInfo = await readRunInfoIfAny(out);
    for (const [k, v] of Object.entries(subInfo?.timings ?? {})) timings[k] = (timings[k] ?? 0) + v;
    candidates.push({ location: w, ...(await keptLesionScore(out)) });
  }
  const best = bestCandidate(candidates);
  const from = candidateDir(dir, best.location);
  await writeDirAtomic(runFile(dir, 'model'), (tmp) => cp(runFile(from, 'model'), tmp, { recursive: true }));
  await writeFileAtomic(runFile(dir, 'history'), await readFile(runFile(from, 'history')));
  const winner = await readRunInfoIfAny(from);
  const taskWeights: TaskWeightsRecord = { kind: 'tuned', lesion: 1, location: best.location, candidates };
  const done: RunInfo = {
    ...info,
    status: 'done',
    finishedAt: new Date().toISOString(),
    timings,
    backbone: winner?.backbone ?? info.backbone,
    selection: winner?.selection ?? null,
    taskWeights,
  };
  await writeRunInfo(dir, done);
  const list = candidates.map((c) => `${c.location}: ${c.score === null ? 'n/a' : c.score.toFixed(4)}`).join(', ');
  log(
    `tuned task weighting: validation lesion mAP-class per location weight ${list}; kept ${best.location} -> ${runFile(dir, 'model')}`,
  );
  return { dir, status: 'done', info: done, history: [], step: 0, stepMs: null };
}

/** The best validation score; ties (and no scores at all) go to the larger weight, the plain MTL end of the grid. */
export function bestCandidate(candidates: readonly TunedCandidate[]): TunedCandidate {
  if (!candidates.length) throw new DermtlError('taskWeighting.grid is empty');
  return candidates.reduce((a, b) =>
    (b.score ?? -Infinity) > (a.score ?? -Infinity) ||
    ((b.score ?? -Infinity) === (a.score ?? -Infinity) && b.location > a.location)
      ? b
      : a,
  );
}

/** The validation lesion mAP-class of a finished run's kept model (its model folder's metrics.json). */
async function keptLesionScore(dir: string): Promise<{ score: number | null; epoch: number | null }> {
  const file = join(runFile(dir, 'model'), 'metrics.json');
  const m = JSON.parse(await readFile(file, 'utf8')) as {
    validation?: { mapClass?: number } | null;
    selection?: { epoch: number } | null;
    epochs?: number;
  };
  const score = m.validation?.mapClass;
  return {
    score: typeof score === 'number' && Number.isFinite(score) ? score : null,
    epoch: m.selection?.epoch ?? m.epochs ?? null,
  };
}
