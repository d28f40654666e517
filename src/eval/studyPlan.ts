// The folder of a cross-validation study (`dermtl cv`) and the small records in it:
//
//   STUDY/study.json                the settings the study was started with (manifest hash, folds, seed, mode, tta,
//                                   resolved config): a re-run with other settings is refused, never mixed in
//   STUDY/folds.json                the grouped stratified folds (dermtl split format)
//   STUDY/models/<m>/fold-<f>/      one run folder per trained model m (lesion, location, mtl) and fold f, with
//                                   scores.csv + metrics.json of its held-out part and unit.json, written LAST: the
//                                   completion marker. models/ensemble/fold-<f>/ holds the max-ensemble's scores;
//                                   models/prior/fold-<f>/ and models/linear/fold-<f>/ the baselines' (the linear
//                                   one with linear.json: the lambda path and choice; baselineUnits.ts).
//   STUDY/results.json, table1.md, figure1/figure3 (.svg, .png), report.html   (REPORT_FILES; studyResults.ts is
//                                   results.json, src/report/study writes the report: StudyOptions.writeReport)
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { MODEL_NAMES, type ModelName } from './studyResults.ts';
import type { Sample } from '../data/types.ts';
import { readScores, type ScoreTable } from '../metrics/scores.ts';
import type { TrainConfig, TrainMode, Task, Tta } from '../train/config.ts';

export const STUDY_FORMAT = 'dermtl-study';
export const STUDY_VERSION = 1;
export const STUDY_FILES = {
  settings: 'study.json',
  folds: 'folds.json',
  models: 'models',
  unit: 'unit.json',
} as const;

/** The files of a study report (written by report/study/writeReport.ts), relative to the study folder. */
export const REPORT_FILES = {
  results: 'results.json',
  table1: 'table1.md',
  figure1Svg: 'figure1.svg',
  figure1Png: 'figure1.png',
  figure3Svg: 'figure3.svg',
  figure3Png: 'figure3.png',
  reliabilitySvg: 'reliability.svg',
  reliabilityPng: 'reliability.png',
  confusionSvg: 'confusion.svg',
  confusionPng: 'confusion.png',
  html: 'report.html',
} as const;

export type TrainedName = Extract<ModelName, 'lesion' | 'location' | 'mtl' | 'mtl-uw' | 'mtl-tuned' | 'fusion'>;

export interface TrainedModel {
  model: TrainedName;
  task: Task;
  /** Run by default (the paper's three); the others only when --models names them. */
  standard: boolean;
  /** The model's training config from the study's shared one. */
  configure?: (c: TrainConfig) => TrainConfig;
}

/**
 * The trained models and the task each trains: the paper's three, and the ways of using the body location beyond it
 * (issue 9): MTL with uncertainty weighting, MTL with the location weight tuned on validation, late fusion (scored
 * with the site given; and, as the model `fusion-nosite`, with it unknown).
 */
export const TRAINED_MODELS: TrainedModel[] = [
  { model: 'lesion', task: 'lesion', standard: true },
  { model: 'location', task: 'location', standard: true },
  { model: 'mtl', task: 'mtl', standard: true },
  {
    model: 'mtl-uw',
    task: 'mtl',
    standard: false,
    configure: (c) => ({ ...c, taskWeighting: { ...c.taskWeighting, kind: 'uncertainty' } }),
  },
  {
    model: 'mtl-tuned',
    task: 'mtl',
    standard: false,
    configure: (c) => ({ ...c, taskWeighting: { ...c.taskWeighting, kind: 'tuned' } }),
  },
  {
    model: 'fusion',
    task: 'mtl',
    standard: false,
    configure: (c) => ({ ...c, fusion: { ...c.fusion, enabled: true } }),
  },
];

/** The trained models a study runs: --models, or the standard three. */
export function trainedModels(models: readonly TrainedName[] | null): TrainedModel[] {
  return TRAINED_MODELS.filter((m) => (models ? models.includes(m.model) : m.standard));
}

/** What makes two invocations the same study: every one must match for finished parts to be reused. */
export interface StudySettings {
  manifest: string;
  manifestHash: string;
  folds: number;
  seed: number;
  mode: TrainMode;
  tta: Tta;
  /** --only-folds: the folds this (partial) study runs; null: all. Part of the settings, so partial and full never mix. */
  onlyFolds: number[] | null;
  /** --models: the trained models this study runs (standard ones left out are reported as skipped); null: the standard three. */
  models: TrainedName[] | null;
  /** The resolved training config shared by every model (without `task`). */
  config: Omit<TrainConfig, 'task'>;
}

const SettingsFileSchema = z.object({
  format: z.literal(STUDY_FORMAT),
  version: z.literal(STUDY_VERSION),
  settings: z.object({
    manifest: z.string(),
    manifestHash: z.string(),
    folds: z.number().int(),
    seed: z.number().int(),
    mode: z.enum(['frozen', 'finetune']),
    tta: z.enum(['10crop', 'center']),
    config: z.record(z.string(), z.unknown()),
    onlyFolds: z.array(z.number().int()).nullable().default(null),
    models: z
      .array(z.enum(['lesion', 'location', 'mtl', 'mtl-uw', 'mtl-tuned', 'fusion']))
      .nullable()
      .default(null),
  }),
  /** Wall-clock seconds spent on this study by every invocation so far. */
  spentSeconds: z.number().nonnegative(),
});
export type StudyFile = z.infer<typeof SettingsFileSchema>;

export function unitDir(study: string, model: ModelName, fold: number): string {
  return join(study, STUDY_FILES.models, model, `fold-${fold}`);
}

export async function readStudyFile(study: string): Promise<StudyFile | undefined> {
  const file = join(study, STUDY_FILES.settings);
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new DermtlError(`${file}: cannot read it (${e.code})`);
  });
  if (text === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new DermtlError(`${file} is damaged (not JSON); delete the study folder ${study} or choose another --out`);
  }
  const r = SettingsFileSchema.safeParse(raw);
  if (!r.success)
    throw new DermtlError(
      `${file} is not a dermtl study file of version ${STUDY_VERSION}; delete ${study} or choose another --out`,
    );
  return r.data;
}

export async function writeStudyFile(study: string, settings: StudySettings, spentSeconds: number): Promise<void> {
  const doc: StudyFile = {
    format: STUDY_FORMAT,
    version: STUDY_VERSION,
    settings: settings as StudyFile['settings'],
    spentSeconds,
  };
  await writeFileAtomic(join(study, STUDY_FILES.settings), `${JSON.stringify(doc, null, 2)}\n`);
}

/** Every difference between the stored settings and these (empty: the same study). */
export function settingsDifferences(before: StudyFile['settings'], now: StudySettings): string[] {
  const problems: string[] = [];
  if (before.manifestHash !== now.manifestHash)
    problems.push(
      `the manifest differs (started with ${before.manifest}, hash ${before.manifestHash.slice(0, 12)}…; now ${now.manifest}, hash ${now.manifestHash.slice(0, 12)}…)`,
    );
  if (before.folds !== now.folds) problems.push(`--folds: started with ${before.folds}, now ${now.folds}`);
  if (before.seed !== now.seed) problems.push(`--seed: started with ${before.seed}, now ${now.seed}`);
  if (before.mode !== now.mode) problems.push(`--mode: started with ${before.mode}, now ${now.mode}`);
  if (before.tta !== now.tta) problems.push(`--tta: started with ${before.tta}, now ${now.tta}`);
  const list = (x: readonly (string | number)[] | null | undefined) => (x ? x.join(',') : 'all');
  if (list(before.onlyFolds) !== list(now.onlyFolds))
    problems.push(`--only-folds: started with ${list(before.onlyFolds)}, now ${list(now.onlyFolds)}`);
  const models = (x: readonly string[] | null | undefined) => (x ? x.join(',') : 'the standard lesion,location,mtl');
  if (models(before.models) !== models(now.models))
    problems.push(`--models: started with ${models(before.models)}, now ${models(now.models)}`);
  const keys = diffKeys(before.config, now.config);
  if (keys.length) problems.push(`the resolved config differs in ${keys.join(', ')}`);
  return problems;
}

export function refuseDifferentSettings(study: string, problems: string[]): DermtlError {
  return errorList(
    `${study} holds a study started with other settings; refusing to mix results. Re-run with the same settings, choose another --out, or pass --force to discard the old study`,
    problems,
  );
}

function diffKeys(a: unknown, b: unknown, at = ''): string[] {
  if (
    typeof a !== 'object' ||
    typeof b !== 'object' ||
    a === null ||
    b === null ||
    Array.isArray(a) ||
    Array.isArray(b)
  ) {
    return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '(all)'];
  }
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.flatMap((k) =>
    diffKeys((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k),
  );
}

// ---------------------------------------------------------------- unit.json: a finished model/fold

const UnitSchema = z.object({
  model: z.enum(MODEL_NAMES),
  fold: z.number().int().nonnegative(),
  status: z.literal('done'),
  finishedAt: z.string(),
  tta: z.enum(['10crop', 'center']),
  images: z.number().int().nonnegative(),
  seconds: z.object({ train: z.number().nonnegative(), evaluate: z.number().nonnegative() }),
});
export type UnitRecord = z.infer<typeof UnitSchema>;

/** The completion marker of a model/fold, or undefined when it is absent or not ours (then the unit is redone). */
export async function readUnit(dir: string, model: ModelName, fold: number): Promise<UnitRecord | undefined> {
  const text = await readFile(join(dir, STUDY_FILES.unit), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const r = UnitSchema.safeParse(JSON.parse(text));
    return r.success && r.data.model === model && r.data.fold === fold ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export async function writeUnit(dir: string, unit: UnitRecord): Promise<void> {
  await writeFileAtomic(join(dir, STUDY_FILES.unit), `${JSON.stringify(unit, null, 2)}\n`);
}

/** A finished unit's scores, or null when they are missing, damaged or not exactly the fold's test images. */
export async function readUnitScores(
  dir: string,
  test: readonly Sample[],
  file = 'scores.csv',
): Promise<ScoreTable | null> {
  try {
    const t = await readScores(join(dir, file));
    const want = new Set(test.map((s) => s.image));
    return t.images.length === want.size && t.images.every((i) => want.has(i)) ? t : null;
  } catch (e) {
    if (e instanceof DermtlError) return null;
    throw e;
  }
}

// ---------------------------------------------------------------- progress

/** Remaining-time estimate of the trained units from the ones trained in this invocation (reused ones cost nothing). */
export class StudyClock {
  private spent = 0;
  private trained = 0;

  constructor(private readonly total: number) {}

  /** Records a unit that was trained here (seconds), or reused / skipped (null); returns the ETA text ('' when unknown). */
  finish(seconds: number | null, left: number): string {
    if (seconds !== null) {
      this.spent += seconds;
      this.trained++;
    }
    if (left === 0) return 'study done';
    if (this.trained === 0) return ''; // nothing trained here yet: no basis for an estimate
    return `study ETA ${formatDuration((this.spent / this.trained) * left)}`;
  }

  get units(): number {
    return this.total;
  }
}

export function formatDuration(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** The `dermtl cv` command line equivalent to a set of options (shell-quoted where needed). */
export function cvCommand(o: {
  manifest: string;
  out: string;
  folds: number;
  mode: TrainMode;
  seed: number;
  configFile?: string;
  tta: Tta;
  onlyFolds?: number[] | null;
  models?: TrainedName[] | null;
}): string {
  const q = shellQuote;
  const parts = [
    'dermtl',
    'cv',
    '--manifest',
    q(o.manifest),
    '--out',
    q(o.out),
    '--folds',
    String(o.folds),
    '--mode',
    o.mode,
    '--seed',
    String(o.seed),
  ];
  if (o.configFile) parts.push('--config', q(o.configFile));
  parts.push('--tta', o.tta);
  if (o.onlyFolds) parts.push('--only-folds', o.onlyFolds.join(','));
  if (o.models) parts.push('--models', o.models.join(','));
  return parts.join(' ');
}

/** One shell word: as is when plain, else single-quoted. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The folds of a --only-folds list ("0" or "0,2"), each in 0..k-1; a clear error naming the flag otherwise. */
export function parseOnlyFolds(list: string | number[] | undefined, k: number): number[] | null {
  if (list === undefined) return null;
  const parts = typeof list === 'string' ? list.split(',').map((x) => x.trim()) : list.map(String);
  const folds = parts.map(Number);
  const bad = parts.filter((x, i) => !/^\d+$/.test(x) || folds[i] >= k);
  if (!parts.length || bad.length)
    throw new DermtlError(
      `--only-folds ${parts.join(',')}: expected fold numbers 0..${k - 1} separated by commas${bad.length ? `; not a fold: ${bad.join(', ')}` : ''}`,
    );
  const unique = [...new Set(folds)].sort((a, b) => a - b);
  return unique.length === k ? null : unique;
}

/** The trained models of a --models list ("lesion,mtl"), in the study's order; a clear error naming the flag otherwise. */
export function parseModels(list: string | readonly string[] | undefined): TrainedName[] | null {
  if (list === undefined) return null;
  const parts = (typeof list === 'string' ? list.split(',') : [...list]).map((x) => x.trim());
  const known = TRAINED_MODELS.map((m) => m.model as string);
  const bad = parts.filter((x) => !known.includes(x));
  if (!parts.length || bad.length)
    throw new DermtlError(
      `--models ${parts.join(',')}: expected trained models among ${known.join(', ')} separated by commas${bad.length ? `; not one: ${bad.map((b) => JSON.stringify(b)).join(', ')}` : ''} (the baselines prior, site-prior and linear are always fitted; the ensemble needs lesion and mtl; fusion also scores fusion-nosite and lesion-site; the standard set is lesion,location,mtl)`,
    );
  const chosen = TRAINED_MODELS.map((m) => m.model).filter((m) => parts.includes(m));
  const standard = TRAINED_MODELS.filter((m) => m.standard).map((m) => m.model);
  return chosen.length === standard.length && standard.every((m) => chosen.includes(m)) ? null : chosen;
}
