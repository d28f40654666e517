// The baselines' units of a study (`prior`, `site-prior` and `linear` per fold, see baselines.ts), like the trained models':
// STUDY/models/<prior|linear>/fold-<f>/ with scores.csv, metrics.json, (linear) linear.json with the lambda path
// and choice, and unit.json written LAST as the completion marker. A finished unit is reused on a re-run (the
// ten-crop features are then not even looked up); an unfinished or damaged one is redone.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Fold } from '../data/splits.ts';
import type { Manifest } from '../data/types.ts';
import type { TrainConfig, Tta } from '../train/config.ts';
import { checkTrainable, labelsFor } from '../train/targets.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError } from '../util/errors.ts';
import { linearBaseline, priorScores, sitePriorScores, type CropFeatures, type LinearChoice } from './baselines.ts';
import { evaluate, evaluationJson } from '../metrics/metrics.ts';
import { writeScores, type ScoreTable } from '../metrics/scores.ts';
import { readUnit, readUnitScores, unitDir, writeUnit } from './studyPlan.ts';

export type BaselineName = 'prior' | 'site-prior' | 'linear';

export interface BaselineContext {
  dir: string;
  manifest: Manifest;
  folds: Fold[];
  config: TrainConfig;
  tta: Tta;
  /** The ten-crop features of every manifest image, loaded (or computed) on first call. */
  features: () => Promise<CropFeatures>;
  /** The solver's per-fit lines (--verbose). */
  detail: (line: string) => void;
}

/** The lambdas of a linear unit, as results.json keeps them. */
export type ChoiceSummary = Pick<
  LinearChoice,
  'lesionLambda' | 'locationLambda' | 'rule' | 'reason' | 'validationImages'
>;

export type BaselineOutcome =
  | { status: 'trained' | 'reused'; table: ScoreTable; seconds: number; choice: ChoiceSummary | null }
  | { status: 'skipped'; reason: string };

const LINEAR_FILE = 'linear.json';
const LINEAR_FORMAT = 'dermtl-linear-baseline';
/** Bumped when the method changes (grid, selection rule, solver settings): older linear units are then refitted. */
export const LINEAR_VERSION = 1;

const LinearFileSchema = z
  .object({
    format: z.literal(LINEAR_FORMAT),
    version: z.literal(LINEAR_VERSION),
    choice: z
      .object({
        lesionLambda: z.number(),
        locationLambda: z.number(),
        rule: z.enum(['validation', 'default']),
        reason: z.string().optional(),
        validationImages: z.number(),
      })
      .loose(),
  })
  .loose();

/** One baseline of fold f: reused when finished, else fitted, scored and written. */
export async function baselineUnit(ctx: BaselineContext, model: BaselineName, f: number): Promise<BaselineOutcome> {
  const dir = unitDir(ctx.dir, model, f);
  const reason = unusable(ctx, f);
  if (reason) {
    await rm(dir, { recursive: true, force: true });
    return { status: 'skipped', reason };
  }
  const reused = await finished(ctx, model, f);
  if (reused) return reused;
  await rm(dir, { recursive: true, force: true }); // an unfinished attempt: nothing of it may be taken for the result
  const t0 = performance.now();
  const fold = ctx.folds[f];
  const labels = labelsFor('mtl', ctx.manifest.samples);
  let table: ScoreTable;
  let choice: LinearChoice | null = null;
  if (model === 'prior') table = priorScores(fold.train, fold.test, labels);
  else if (model === 'site-prior') table = sitePriorScores(fold.train, fold.test, labels);
  else {
    const r = await linearBaseline({
      features: await ctx.features(),
      train: fold.train,
      test: fold.test,
      labels,
      tta: ctx.tta,
      validation: { fraction: ctx.config.validation.fraction, seed: ctx.config.seed },
      threads: ctx.config.runtime.threads ?? undefined,
      log: ctx.detail,
    });
    table = r.table;
    choice = r.choice;
  }
  const seconds = (performance.now() - t0) / 1000;
  await write(ctx, model, f, table, choice, seconds);
  return { status: 'trained', table, seconds, choice: choice && summary(choice) };
}

/** The same condition as the MTL model's: both heads need something to learn from in the training part. */
function unusable(ctx: BaselineContext, f: number): string | null {
  try {
    checkTrainable('mtl', labelsFor('mtl', ctx.manifest.samples), ctx.folds[f].train, `fold ${f}'s training part`);
    return null;
  } catch (e) {
    if (e instanceof DermtlError) return e.message;
    throw e;
  }
}

async function finished(ctx: BaselineContext, model: BaselineName, f: number): Promise<BaselineOutcome | null> {
  const dir = unitDir(ctx.dir, model, f);
  const unit = await readUnit(dir, model, f);
  if (!unit || unit.tta !== ctx.tta) return null;
  const table = await readUnitScores(dir, ctx.folds[f].test);
  if (!table) return null;
  let choice: ChoiceSummary | null = null;
  if (model === 'linear') {
    const text = await readFile(join(dir, LINEAR_FILE), 'utf8').catch(() => null);
    const parsed = text === null ? null : LinearFileSchema.safeParse(safeJson(text));
    if (!parsed?.success) return null;
    choice = summary(parsed.data.choice);
  }
  return { status: 'reused', table, seconds: unit.seconds.train + unit.seconds.evaluate, choice };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

async function write(
  ctx: BaselineContext,
  model: BaselineName,
  f: number,
  table: ScoreTable,
  choice: LinearChoice | null,
  seconds: number,
): Promise<void> {
  const dir = unitDir(ctx.dir, model, f);
  const ev = evaluate(ctx.folds[f].test, table);
  await writeScores(join(dir, 'scores.csv'), table);
  const method =
    model === 'prior'
      ? 'training-part label frequencies'
      : model === 'site-prior'
        ? "training-part lesion label rates at the test image's body site, shrunk towards the label's by 10 pseudo-images"
        : 'L2 logistic regression on the ten-crop features of the trunk as initialised (lesion one-vs-rest, location softmax)';
  const json = (x: unknown) => `${JSON.stringify(x, null, 2)}\n`;
  await writeFileAtomic(
    join(dir, 'metrics.json'),
    json({
      kind: model,
      method,
      fold: f,
      tta: ctx.tta,
      ...(choice ? { lambdas: summary(choice) } : {}),
      ...evaluationJson(ev),
    }),
  );
  if (choice)
    await writeFileAtomic(
      join(dir, LINEAR_FILE),
      json({ format: LINEAR_FORMAT, version: LINEAR_VERSION, fold: f, tta: ctx.tta, choice }),
    );
  await writeUnit(dir, {
    model,
    fold: f,
    status: 'done',
    finishedAt: new Date().toISOString(),
    tta: ctx.tta,
    images: table.images.length,
    seconds: { train: seconds, evaluate: 0 },
  });
}

function summary(c: ChoiceSummary): ChoiceSummary {
  return {
    lesionLambda: c.lesionLambda,
    locationLambda: c.locationLambda,
    rule: c.rule,
    ...(c.reason ? { reason: c.reason } : {}),
    validationImages: c.validationImages,
  };
}
