// `dermtl cv`: the paper's k-fold cross-validation study. Grouped stratified folds (saved as STUDY/folds.json); on
// every fold the lesion-only, location-only and MTL models are trained with identical settings and seeds
// (trainRun), each evaluated on the fold's held-out part (evaluateRun); the ensemble is the per-label max of the
// lesion-only and MTL lesion scores. Two baselines are fitted on every fold too (baselines.ts): `prior` (the
// training part's label frequencies) and `linear` (L2 logistic regression on the ImageNet trunk's ten-crop
// features, whatever the mode). Then per-fold and pooled out-of-fold metrics, fold means and stds, the paired
// MTL - lesion-only differences and those against the linear baseline, and the report (opts.writeReport). See
// studyPlan.ts for the folder layout.
//
// Interrupt and re-run: every model/fold is its own run folder, reused once its unit.json marker is written (after
// its scores); an interrupted training resumes from its checkpoint, a failed one is deleted and redone on the next
// run. Other settings in the same folder are refused (or, with --force, the old study is discarded).
import { withStopSignals } from '../util/signals.ts';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadManifest, manifestHash } from '../data/manifest.ts';
import { loadFolds, makeFolds, writeFolds, type Fold } from '../data/splits.ts';
import { cooccurrence, manifestStats } from '../data/statistics.ts';
import type { Manifest, Sample } from '../data/types.ts';
import { stderrProgress } from '../util/progress.ts';
import {
  BASELINE_NAMES,
  MODEL_NAMES,
  VARIANT_NAMES,
  RESULTS_VERSION,
  comparisonResults,
  modelResult,
  pairedResults,
  versusLesionResults,
  type CalibrationPair,
  type Eval,
  type LesionEval,
  type LocationEval,
  type ModelName,
  type MtlEval,
  type Selection,
  type StudyResults,
} from './studyResults.ts';
import {
  epochsOf,
  loadConfig,
  resolveConfig,
  type TrainConfig,
  type TrainMode,
  type Task,
  type Tta,
} from '../train/config.ts';
import { featureCacheFor, trainViewSet } from '../train/frozen.ts';
import { cacheActivations } from '../train/partial.ts';
import { readRunInfoIfAny } from '../train/run.ts';
import { checkTrainable, labelsFor, validationSplit } from '../train/targets.ts';
import { preprocessingOf, trainRun, type ProgressFactory } from '../train/trainTask.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError } from '../util/errors.ts';
import { baselineUnit, type ChoiceSummary } from './baselineUnits.ts';
import type { CropFeatures } from './baselines.ts';
import { ensembleMax } from './ensemble.ts';
import { siteCorrected } from './siteCorrection.ts';
import { evaluateRun, UNCALIBRATED_SCORES } from './evaluateRun.ts';
import { evaluate, evaluationJson } from '../metrics/metrics.ts';
import { pooledOperatingPoint } from '../metrics/thresholds.ts';
import { CALIBRATION_FILE, CalibrationSchema } from '../models/calibration.ts';
import { readJson, parseWith } from '../util/jsonFile.ts';
import { keepHeads, writeScores, type ScoreTable } from '../metrics/scores.ts';
import {
  REPORT_FILES,
  STUDY_FILES,
  StudyClock,
  TRAINED_MODELS,
  trainedModels,
  type TrainedModel,
  type TrainedName,
  cvCommand,
  formatDuration,
  parseModels,
  parseOnlyFolds,
  readStudyFile,
  readUnit,
  readUnitScores,
  refuseDifferentSettings,
  settingsDifferences,
  unitDir,
  writeStudyFile,
  writeUnit,
  type StudySettings,
} from './studyPlan.ts';

export interface StudyOptions {
  manifest: string;
  /** The study folder. */
  out: string;
  /** k (default 5). */
  folds?: number;
  mode?: TrainMode;
  seed?: number;
  /** --config C.json */
  configFile?: string;
  /** A config object (tests, npm start); used when no configFile is given. */
  config?: unknown;
  /** Default: the config's eval.tta (10crop). */
  tta?: Tta;
  /** --only-folds: run these folds only (a PARTIAL study, labelled as such in every output); default all. */
  onlyFolds?: string | number[];
  /**
   * --models: the trained models to run (lesion, location, mtl, mtl-uw, mtl-tuned, fusion); standard ones left out
   * are reported as skipped. Default: lesion, location, mtl.
   */
  models?: string | readonly string[];
  /** Discard a study of other settings in `out` instead of refusing. */
  force?: boolean;
  /** The command line recorded in results.json (default: the equivalent dermtl cv command). */
  command?: string;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
  /** Also print the trainings' and evaluations' own lines. */
  verbose?: boolean;
  log?: (line: string) => void;
  /** Stops after the current image being cached or training update (checkpointed); the study then ends with an exit-130 DermtlError. */
  signal?: AbortSignal;
  /**
   * Writes results.json and the report into the study folder and returns the paths written: report/study's
   * writeStudyReport, passed in by the caller (the report layer sits above this one).
   */
  writeReport: (dir: string, results: StudyResults) => Promise<string[]>;
}

export interface StudyOutcome {
  dir: string;
  results: StudyResults;
  files: string[];
  /**
   * Model/fold units trained (or resumed) and evaluated in this invocation, reused from an earlier one, skipped:
   * the trained models and the baselines (fitted counts as trained); the ensemble, recomputed every time, is not counted.
   */
  counts: { trained: number; reused: number; skipped: number };
}

const MODEL_LABELS: Record<ModelName, string> = {
  lesion: 'lesion-only',
  location: 'location-only',
  mtl: 'MTL',
  ensemble: 'ensemble',
  prior: 'prior',
  'site-prior': 'site prior',
  linear: 'linear',
  'mtl-uw': 'MTL-UW',
  'mtl-tuned': 'MTL-tuned',
  fusion: 'fusion',
  'fusion-nosite': 'fusion, no site',
  'lesion-site': 'lesion + site',
};

interface Ctx {
  opts: StudyOptions;
  dir: string;
  manifest: Manifest;
  foldsFile: string;
  folds: Fold[];
  /** The folds this invocation runs (--only-folds), in order. */
  runFolds: number[];
  /** The trained models it runs (--models), in the study's order. */
  trained: TrainedModel[];
  config: TrainConfig;
  tta: Tta;
  progress: ProgressFactory;
  log: (line: string) => void;
  detail: (line: string) => void;
  /** The baselines' ten-crop features, loaded on first use (never when every baseline unit is reused). */
  cropFeatures: Promise<CropFeatures> | null;
}

type Outcome =
  | { status: 'trained' | 'reused'; table: ScoreTable; seconds: number }
  | { status: 'skipped'; reason: string };

export async function runStudy(opts: StudyOptions): Promise<StudyOutcome> {
  const t0 = performance.now();
  const log = opts.log ?? ((line: string) => console.log(line));
  const k = opts.folds ?? 5;
  const overrides = { mode: opts.mode, seed: opts.seed, task: 'mtl' as Task };
  const resolved = opts.configFile
    ? await loadConfig(opts.configFile, overrides)
    : resolveConfig(opts.config ?? {}, overrides, 'the config');
  const tta = opts.tta ?? resolved.eval.tta;
  // The tta is part of every run's config, so a run folder says how the study scored it.
  const config: TrainConfig = { ...resolved, eval: { ...resolved.eval, tta } };
  const manifest = await loadManifest(opts.manifest);
  const dir = resolve(opts.out);
  const { task: _task, ...shared } = config;
  const onlyFolds = parseOnlyFolds(opts.onlyFolds, k);
  const models = parseModels(opts.models);
  const settings: StudySettings = {
    manifest: opts.manifest,
    manifestHash: manifestHash(manifest),
    folds: k,
    seed: config.seed,
    mode: config.mode,
    tta,
    config: shared,
    onlyFolds,
    models,
  };
  const foldFile = makeFolds(manifest, k, config.seed); // before anything is written: a bad --folds leaves no study behind
  const spentBefore = await prepareStudyFolder(dir, settings, opts.force ?? false, log);
  const foldsFile = join(dir, STUDY_FILES.folds);
  if (!(await exists(foldsFile))) await writeFolds(foldsFile, foldFile);
  const folds = (await loadFolds(foldsFile, manifest)).splits;
  const bars = opts.progress ?? true;
  const ctx: Ctx = {
    opts,
    dir,
    manifest,
    foldsFile,
    folds,
    config,
    tta,
    log,
    runFolds: onlyFolds ?? folds.map((_, f) => f),
    trained: trainedModels(models),
    progress: bars ? (label) => stderrProgress(label) : () => Object.assign(() => {}, { stop: () => {} }),
    detail: opts.verbose ? log : () => {},
    cropFeatures: null,
  };
  log(
    `study ${dir}: ${manifest.samples.length} images, ${k} folds (test parts of ${folds.map((f) => f.test.length).join(', ')} images), ${config.mode} trunk (${config.trunk}), seed ${config.seed}, tta ${tta}${onlyFolds ? `; PARTIAL STUDY: fold(s) ${onlyFolds.join(', ')} only` : ''}${models ? `; models: ${models.join(', ')}` : ''}`,
  );

  // the study's wall time is kept up to date in study.json, so an interrupted invocation's work is counted too
  const spent = () => spentBefore + (performance.now() - t0) / 1000;
  const saveTime = () => writeStudyFile(dir, settings, spent());
  if (config.mode === 'frozen' && !(await allFinished(ctx))) {
    await cacheFeatures(ctx);
    await saveTime();
  }
  if (config.mode === 'finetune' && !(await allFinished(ctx))) {
    // partial fine-tuning: the activations entering the first trainable stage, once for every fold's trainings
    const r = await cacheActivations({
      config,
      prep: preprocessingOf(config),
      images: manifest.samples,
      progress: ctx.progress,
      signal: opts.signal,
    });
    if (r) {
      log(
        `activations (${config.finetune.trainable} input, ${r.id}): ${r.misses} image(s) computed, ${r.hits} from the cache, ${formatDuration(r.seconds)}`,
      );
      await saveTime();
    }
  }
  const units = await runUnits(ctx, saveTime);
  const counts = units.counts;

  const results = buildResults(
    ctx,
    units,
    opts.command ??
      cvCommand({
        manifest: opts.manifest,
        out: opts.out,
        folds: k,
        mode: config.mode,
        seed: config.seed,
        configFile: opts.configFile,
        tta,
        onlyFolds,
        models,
      }),
    spent(),
  );
  results.beforeCalibration = await beforeCalibration(ctx, units);
  results.operatingPoints = await operatingPoints(ctx, units);
  const files = await opts.writeReport(dir, results);
  await writeStudyFile(dir, settings, results.timing.totalSeconds);
  log(
    `wrote ${join(dir, REPORT_FILES.results)} and the report ${join(dir, REPORT_FILES.html)} (${counts.trained} trained, ${counts.reused} reused, ${counts.skipped} skipped; ${formatDuration((performance.now() - t0) / 1000)})`,
  );
  return { dir, results, files, counts };
}

/** Runs runStudy with the first SIGINT/SIGTERM turned into a clean stop, a second one into an immediate exit. */
export function runStudyWithStopSignals(opts: StudyOptions): Promise<StudyOutcome> {
  return withStopSignals(
    () =>
      'stopping after the current image (feature caching) or training update; finished models and cached features are kept, re-run the same command to continue. Press Ctrl-C again to quit at once.',
    (signal) => runStudy({ ...opts, signal }),
  );
}

// ---------------------------------------------------------------- the study folder

/** Creates or checks STUDY/study.json; returns the seconds earlier invocations spent on this study. */
async function prepareStudyFolder(
  dir: string,
  settings: StudySettings,
  force: boolean,
  log: (l: string) => void,
): Promise<number> {
  const kind = await stat(dir).then(
    (s) => (s.isDirectory() ? 'dir' : 'file'),
    () => null,
  );
  if (kind === 'file') throw new DermtlError(`--out ${dir} is a file; expected a study folder`);
  const existing = kind ? await readStudyFile(dir) : undefined;
  if (!existing) {
    const entries = kind ? await readdir(dir) : [];
    if (entries.length)
      throw new DermtlError(
        `--out ${dir} is not empty and holds no dermtl study (${STUDY_FILES.settings} missing); refusing to write into it`,
      );
    await writeStudyFile(dir, settings, 0);
    return 0;
  }
  const problems = settingsDifferences(existing.settings, settings);
  if (problems.length === 0) {
    log(`${dir}: continuing the study (finished models are reused)`);
    return existing.spentSeconds;
  }
  if (!force) throw refuseDifferentSettings(dir, problems);
  log(`${dir}: --force: discarding the study started with other settings (${problems.join('; ')})`);
  // only what a study writes; anything else in the folder is left alone
  for (const name of [STUDY_FILES.models, STUDY_FILES.folds, ...Object.values(REPORT_FILES)])
    await rm(join(dir, name), { recursive: true, force: true });
  await writeStudyFile(dir, settings, 0);
  return 0;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

// ---------------------------------------------------------------- features

/** Frozen mode: every image's training views and ten test crops, computed once up front for all the trainings. */
async function cacheFeatures(ctx: Ctx): Promise<void> {
  const t0 = performance.now();
  const c = ctx.config;
  const cache = featureCacheFor({
    config: c,
    prep: preprocessingOf(c),
    progress: ctx.progress,
    signal: ctx.opts.signal,
  });
  const samples = ctx.manifest.samples;
  try {
    await cache.features(samples, trainViewSet({ config: c }), 'caching training views');
    checkStop(ctx);
    await cache.features(samples, { kind: 'tenCrop' }, 'caching test views');
  } finally {
    await cache.close();
  }
  checkStop(ctx);
  const s = cache.stats;
  ctx.log(
    `features (${c.frozen.views} training views + 10 test crops per image): ${s.misses} image set(s) computed, ${s.hits} from the cache, ${formatDuration((performance.now() - t0) / 1000)}`,
  );
}

/** Every trained model/fold has its completion marker: nothing needs a feature. */
async function allFinished(ctx: Ctx): Promise<boolean> {
  for (const f of ctx.runFolds) {
    for (const { model } of ctx.trained) if (!(await readUnit(unitDir(ctx.dir, model, f), model, f))) return false;
  }
  return true;
}

/**
 * The ten-crop features of every image for the baselines: from the cache (frozen mode cached them up front),
 * computed with the ImageNet trunk where missing (finetune mode), once per invocation.
 */
function cropFeatures(ctx: Ctx): Promise<CropFeatures> {
  ctx.cropFeatures ??= (async () => {
    const t0 = performance.now();
    const c = ctx.config;
    const cache = featureCacheFor({
      config: c,
      prep: preprocessingOf(c),
      progress: ctx.progress,
      signal: ctx.opts.signal,
    });
    const samples = ctx.manifest.samples;
    try {
      const views = await cache.features(samples, { kind: 'tenCrop' }, 'caching test views (baselines)');
      ctx.log(
        `baseline features (10 test crops per image): ${cache.stats.misses} image(s) computed, ${cache.stats.hits} from the cache, ${formatDuration((performance.now() - t0) / 1000)}`,
      );
      return { index: new Map(samples.map((s, i) => [s.image, i])), views };
    } finally {
      await cache.close();
    }
  })();
  return ctx.cropFeatures;
}

function checkStop(ctx: Ctx): void {
  if (ctx.opts.signal?.aborted)
    throw new DermtlError(
      `the study in ${ctx.dir} was stopped; run the same command again to continue where it stopped`,
      130,
    );
}

// ---------------------------------------------------------------- model/fold units

interface UnitsResult {
  tables: Record<ModelName, (ScoreTable | null)[]>;
  seconds: Record<ModelName, (number | null)[]>;
  /** The linear baseline's lambdas per fold (null where skipped). */
  choices: (ChoiceSummary | null)[];
  /** The epoch each trained model kept per fold (model selection on validation). */
  selection: Record<TrainedName, (Selection | null)[]>;
  skipped: StudyResults['skipped'];
  counts: StudyOutcome['counts'];
  /** Per MTL model and fold, the task weights its run used (run.json). */
  taskWeights: NonNullable<StudyResults['taskWeights']>;
}

async function runUnits(ctx: Ctx, saveTime: () => Promise<void>): Promise<UnitsResult> {
  const k = ctx.folds.length;
  const empty = <T>() =>
    Object.fromEntries(MODEL_NAMES.map((m) => [m, Array<T | null>(k).fill(null)])) as Record<ModelName, (T | null)[]>;
  const tables = empty<ScoreTable>();
  const seconds = empty<number>();
  const skipped: StudyResults['skipped'] = [];
  const choices = Array<ChoiceSummary | null>(k).fill(null);
  const selection = Object.fromEntries(
    TRAINED_MODELS.map(({ model }) => [model, Array<Selection | null>(k).fill(null)]),
  ) as UnitsResult['selection'];
  const counts = { trained: 0, reused: 0, skipped: 0 };
  const taskWeights: UnitsResult['taskWeights'] = {};
  const clock = new StudyClock(ctx.runFolds.length * ctx.trained.length);
  const fusion = ctx.trained.some((m) => m.model === 'fusion');
  // with fusion: its site-unknown scoring and the site-corrected lesion-only model, one unit each per fold
  const units = ctx.runFolds.length * (ctx.trained.length + (fusion ? 2 : 0) + 1 + BASELINE_NAMES.length);
  let done = 0;
  let trainedLeft = clock.units;
  const line = (model: ModelName, f: number, what: string, eta: string) => {
    done++;
    ctx.log(
      `[${String(done).padStart(String(units).length)}/${units}] ${MODEL_LABELS[model].padEnd(13)} fold ${f + 1}/${k}: ${what}${eta ? ` | ${eta}` : ''}`,
    );
  };
  for (const f of ctx.runFolds) {
    for (const { model } of TRAINED_MODELS.filter((m) => m.standard && !ctx.trained.includes(m)))
      skipped.push({ model, fold: f, reason: 'not in --models' });
    for (const m of ctx.trained) {
      const { model } = m;
      checkStop(ctx);
      const o = await trainedUnit(ctx, m, f);
      trainedLeft--;
      if (o.status === 'skipped') {
        skipped.push({ model, fold: f, reason: o.reason });
        counts.skipped++;
        line(model, f, `SKIPPED: ${o.reason}`, clock.finish(null, trainedLeft));
        continue;
      }
      tables[model][f] = o.table;
      seconds[model][f] = o.seconds;
      selection[model][f] = await selectionOf(unitDir(ctx.dir, model, f));
      if (m.task === 'mtl')
        (taskWeights[model] ??= Array(k).fill(null))[f] = await taskWeightsOf(unitDir(ctx.dir, model, f));
      counts[o.status]++;
      if (o.status === 'trained') await saveTime();
      const what =
        o.status === 'reused'
          ? `reused (finished earlier, ${o.seconds.toFixed(1)} s)`
          : `trained and evaluated in ${o.seconds.toFixed(1)} s`;
      line(
        model,
        f,
        `${what}; ${headline(ctx, o.table, f)}`,
        clock.finish(o.status === 'trained' ? o.seconds : null, trainedLeft),
      );
      if (model !== 'fusion') continue;
      const u = await siteUnknownUnit(ctx, f);
      tables['fusion-nosite'][f] = u.table;
      seconds['fusion-nosite'][f] = u.seconds;
      line(
        'fusion-nosite',
        f,
        `the fusion model with the body site unknown; ${headline(ctx, u.table, f)}`,
        clock.finish(null, trainedLeft),
      );
    }
    if (fusion && !tables.fusion[f])
      skipped.push({ model: 'fusion-nosite', fold: f, reason: 'the fusion model was skipped' });
    const e = await ensembleUnit(ctx, f, tables.lesion[f], tables.mtl[f]);
    if (e.status === 'skipped') {
      skipped.push({ model: 'ensemble', fold: f, reason: e.reason });
      line('ensemble', f, `SKIPPED: ${e.reason}`, clock.finish(null, trainedLeft));
    } else {
      tables.ensemble[f] = e.table;
      seconds.ensemble[f] = e.seconds;
      line(
        'ensemble',
        f,
        `max of the lesion-only and MTL scores; ${headline(ctx, e.table, f)}`,
        clock.finish(null, trainedLeft),
      );
    }
    if (fusion) {
      const s = await siteCorrectedUnit(ctx, f, tables.lesion[f]);
      if (s.status === 'skipped') {
        skipped.push({ model: 'lesion-site', fold: f, reason: s.reason });
        line('lesion-site', f, `SKIPPED: ${s.reason}`, clock.finish(null, trainedLeft));
      } else {
        tables['lesion-site'][f] = s.table;
        seconds['lesion-site'][f] = s.seconds;
        line(
          'lesion-site',
          f,
          `lesion-only scores shifted by the site log-odds; ${headline(ctx, s.table, f)}`,
          clock.finish(null, trainedLeft),
        );
      }
    }
    for (const model of BASELINE_NAMES) {
      checkStop(ctx);
      const b = await baselineUnit({ ...ctx, features: () => cropFeatures(ctx) }, model, f);
      counts[b.status]++;
      if (b.status === 'skipped') {
        skipped.push({ model, fold: f, reason: b.reason });
        line(model, f, `SKIPPED: ${b.reason}`, clock.finish(null, trainedLeft));
        continue;
      }
      tables[model][f] = b.table;
      seconds[model][f] = b.seconds;
      if (b.choice) choices[f] = b.choice;
      if (b.status === 'trained') await saveTime();
      const lambdas = b.choice
        ? `lambda ${b.choice.lesionLambda} (lesion), ${b.choice.locationLambda} (location); `
        : '';
      const what =
        b.status === 'reused'
          ? `reused (finished earlier, ${b.seconds.toFixed(1)} s)`
          : `baseline fitted in ${b.seconds.toFixed(1)} s`;
      line(model, f, `${what}; ${lambdas}${headline(ctx, b.table, f)}`, clock.finish(null, trainedLeft));
    }
  }
  return { tables, seconds, choices, selection, skipped, counts, taskWeights };
}

/** The fold's key numbers, for the progress line. */
function headline(ctx: Ctx, table: ScoreTable, f: number): string {
  const ev = evaluate(samplesOf(ctx.manifest, table), table);
  const parts: string[] = [];
  const n = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(3));
  if (ev.lesion) parts.push(`mAP-class ${n(ev.lesion.mapClass)}`, `mAP-image ${n(ev.lesion.mapImage)}`);
  if (ev.location) parts.push(`top-1 ${n(ev.location.top1)}`, `top-3 ${n(ev.location.top3)}`);
  return `${parts.join(', ')} on ${ctx.folds[f].test.length} test images`;
}

/** Why `task` cannot be trained on this training part (the same checks trainRun makes), or null. */
function untrainable(ctx: Ctx, task: Task, f: number): string | null {
  const train = ctx.folds[f].train;
  const labels = labelsFor(task, ctx.manifest.samples);
  const where = `fold ${f}'s training part`;
  try {
    checkTrainable(task, labels, train, where);
    const split = validationSplit(train, ctx.config.validation.fraction, ctx.config.seed);
    checkTrainable(task, labels, split.train, `${where} without its validation part`);
    return null;
  } catch (e) {
    if (e instanceof DermtlError) return e.message;
    throw e;
  }
}

async function trainedUnit(ctx: Ctx, { model, task, configure }: TrainedModel, f: number): Promise<Outcome> {
  const dir = unitDir(ctx.dir, model, f);
  const marker = await readUnit(dir, model, f);
  if (marker) {
    const table = await readUnitScores(dir, ctx.folds[f].test);
    if (table) return { status: 'reused', table, seconds: marker.seconds.train + marker.seconds.evaluate };
  }
  const reason = untrainable(ctx, task, f);
  if (reason) {
    await rm(dir, { recursive: true, force: true }); // nothing of an earlier attempt may be taken for this unit's result
    return { status: 'skipped', reason };
  }
  const t0 = performance.now();
  let t1 = t0;
  let e: Awaited<ReturnType<typeof evaluateRun>> | undefined;
  for (let attempt = 0; !e; attempt++) {
    const trained = await train(ctx, dir, task, f, configure ? configure(ctx.config) : ctx.config);
    if (trained !== true) return { status: 'skipped', reason: trained };
    t1 = performance.now();
    try {
      e = await evaluateRun(dir, {
        manifest: ctx.opts.manifest,
        folds: ctx.foldsFile,
        fold: f,
        tta: ctx.tta,
        threads: ctx.config.runtime.threads ?? undefined,
        progress: ctx.opts.progress ?? true,
        log: ctx.detail,
      });
    } catch (err) {
      // e.g. a finished run whose model folder was removed: train it again, once
      if (!(err instanceof DermtlError) || err.exitCode === 130) throw err;
      await rm(dir, { recursive: true, force: true });
      if (attempt > 0) return { status: 'skipped', reason: `evaluation failed: ${err.message}` };
      ctx.log(`${dir}: cannot evaluate it (${err.message.split('\n')[0]}); training it again`);
    }
  }
  const t2 = performance.now();
  const seconds = { train: (t1 - t0) / 1000, evaluate: (t2 - t1) / 1000 };
  await writeUnit(dir, {
    model,
    fold: f,
    status: 'done',
    finishedAt: new Date().toISOString(),
    tta: ctx.tta,
    images: e.samples.length,
    seconds,
  });
  return { status: 'trained', table: e.table, seconds: seconds.train + seconds.evaluate };
}

/**
 * Trains (or resumes, or finds finished) the run folder of one model/fold. true when it is finished; a reason when the
 * training failed (the folder is deleted, so the next run starts it afresh). A stop request ends the study.
 */
async function train(ctx: Ctx, dir: string, task: Task, f: number, config: TrainConfig): Promise<true | string> {
  const info = await readRunInfoIfAny(dir).catch(() => undefined);
  if (info?.status === 'done') return true;
  if (!info) await rm(dir, { recursive: true, force: true }); // leftovers of a run that never got its run.json
  const attempt = (resume: boolean) =>
    trainRun({
      manifest: ctx.opts.manifest,
      out: dir,
      task,
      folds: ctx.foldsFile,
      fold: f,
      config,
      resume,
      signal: ctx.opts.signal,
      progress: ctx.opts.progress ?? true,
      log: ctx.detail,
    });
  try {
    let r;
    try {
      r = await attempt(info !== undefined);
    } catch (e) {
      if (!(e instanceof DermtlError) || info === undefined) throw e;
      ctx.log(`${dir}: cannot resume the interrupted training (${e.message.split('\n')[0]}); starting it again`);
      await rm(dir, { recursive: true, force: true });
      r = await attempt(false);
    }
    if (r.status === 'stopped') checkStop(ctx);
    return true;
  } catch (e) {
    if (!(e instanceof DermtlError) || e.exitCode === 130) throw e;
    await rm(dir, { recursive: true, force: true });
    return `training failed: ${e.message}`;
  }
}

/** The completion marker of a unit derived from trained ones (it trains nothing: train 0 s). */
function writeDerivedUnit(
  ctx: Ctx,
  dir: string,
  model: ModelName,
  f: number,
  images: number,
  seconds: number,
): Promise<void> {
  const finishedAt = new Date().toISOString();
  return writeUnit(dir, {
    model,
    fold: f,
    status: 'done',
    finishedAt,
    tta: ctx.tta,
    images,
    seconds: { train: 0, evaluate: seconds },
  });
}

/**
 * The fusion model of fold f scored with every body site unknown (its own predicted location instead): the scores
 * for a photo whose site nobody recorded. It trains nothing; evaluated once, then reused from its unit.json.
 */
async function siteUnknownUnit(ctx: Ctx, f: number): Promise<{ table: ScoreTable; seconds: number }> {
  const dir = unitDir(ctx.dir, 'fusion-nosite', f);
  const marker = await readUnit(dir, 'fusion-nosite', f);
  const reused = marker ? await readUnitScores(dir, ctx.folds[f].test) : null;
  if (marker && reused) return { table: reused, seconds: marker.seconds.evaluate };
  const t0 = performance.now();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const e = await evaluateRun(unitDir(ctx.dir, 'fusion', f), {
    manifest: ctx.opts.manifest,
    folds: ctx.foldsFile,
    fold: f,
    tta: ctx.tta,
    threads: ctx.config.runtime.threads ?? undefined,
    progress: ctx.opts.progress ?? true,
    log: ctx.detail,
    site: 'unknown',
    out: dir,
  });
  const seconds = (performance.now() - t0) / 1000;
  await writeDerivedUnit(ctx, dir, 'fusion-nosite', f, e.samples.length, seconds);
  return { table: e.table, seconds };
}

/**
 * The paper's ensemble of one fold: per image and lesion label the max of the lesion-only and MTL scores. It trains
 * nothing, so it is recomputed from its members every time (and can never disagree with them).
 */
async function ensembleUnit(ctx: Ctx, f: number, lesion: ScoreTable | null, mtl: ScoreTable | null): Promise<Outcome> {
  const missing = [lesion ? null : 'lesion-only', mtl ? null : 'MTL'].filter(Boolean);
  const dir = unitDir(ctx.dir, 'ensemble', f);
  if (!lesion || !mtl) {
    await rm(dir, { recursive: true, force: true });
    return {
      status: 'skipped',
      reason: `needs the lesion-only and MTL models of fold ${f}; ${missing.join(' and ')} skipped`,
    };
  }
  const t0 = performance.now();
  const table = ensembleMax(lesion, keepHeads(mtl, { lesion: true, location: false }), ['lesion-only', 'MTL']);
  const ev = evaluate(samplesOf(ctx.manifest, table), table);
  await writeScores(join(dir, 'scores.csv'), table);
  const members = [unitDir(ctx.dir, 'lesion', f), unitDir(ctx.dir, 'mtl', f)];
  await writeFileAtomic(
    join(dir, 'metrics.json'),
    `${JSON.stringify({ kind: 'ensemble', members, rule: 'max', fold: f, tta: ctx.tta, ...evaluationJson(ev) }, null, 2)}\n`,
  );
  const seconds = (performance.now() - t0) / 1000;
  await writeDerivedUnit(ctx, dir, 'ensemble', f, table.images.length, seconds);
  return { status: 'trained', table, seconds };
}

/**
 * The lesion-only model of fold f with each test image's site applied as the training part's log-odds (nothing
 * trained; siteCorrection.ts), the training-free counterpart of the fusion model. Recomputed from the lesion-only
 * scores every time, like the ensemble.
 */
async function siteCorrectedUnit(ctx: Ctx, f: number, lesion: ScoreTable | null): Promise<Outcome> {
  const dir = unitDir(ctx.dir, 'lesion-site', f);
  if (!lesion) {
    await rm(dir, { recursive: true, force: true });
    return { status: 'skipped', reason: `needs the lesion-only model of fold ${f}, which was skipped` };
  }
  const t0 = performance.now();
  const byImage = new Map(ctx.manifest.samples.map((s) => [s.image, s]));
  const locations = labelsFor('mtl', ctx.manifest.samples).location;
  const table = siteCorrected(lesion, byImage, ctx.folds[f].train, locations);
  const ev = evaluate(samplesOf(ctx.manifest, table), table);
  await writeScores(join(dir, 'scores.csv'), table);
  await writeFileAtomic(
    join(dir, 'metrics.json'),
    `${JSON.stringify({ kind: 'lesion-site', member: unitDir(ctx.dir, 'lesion', f), rule: 'lesion-only logit + training-part site log-odds', fold: f, tta: ctx.tta, ...evaluationJson(ev) }, null, 2)}\n`,
  );
  const seconds = (performance.now() - t0) / 1000;
  await writeDerivedUnit(ctx, dir, 'lesion-site', f, table.images.length, seconds);
  return { status: 'trained', table, seconds };
}

// ---------------------------------------------------------------- results

/** The manifest samples of a table's rows, in row order. */
function samplesOf(manifest: Manifest, table: ScoreTable): Sample[] {
  const byImage = new Map(manifest.samples.map((s) => [s.image, s]));
  return table.images.map((i) => {
    const s = byImage.get(i);
    if (!s) throw new Error(`study: scored image ${i} is not in ${manifest.file}`);
    return s;
  });
}

/** Rows of several tables with the same columns, one after another (the pooled out-of-fold table). */
export function concatTables(tables: readonly ScoreTable[]): ScoreTable {
  const [first] = tables;
  for (const t of tables) {
    if (
      t.lesionLabels.join('\n') !== first.lesionLabels.join('\n') ||
      t.locationLabels.join('\n') !== first.locationLabels.join('\n')
    ) {
      throw new Error('concatTables: the tables score different labels');
    }
  }
  return {
    images: tables.flatMap((t) => t.images),
    lesionLabels: [...first.lesionLabels],
    locationLabels: [...first.locationLabels],
    lesion: tables.flatMap((t) => t.lesion),
    location: tables.flatMap((t) => t.location),
  };
}

function evalOf(manifest: Manifest, table: ScoreTable | null): Eval | null {
  return table ? (evaluationJson(evaluate(samplesOf(manifest, table), table)) as unknown as Eval) : null;
}

/**
 * Per trained model, the calibration measures (ECE, Brier, reliability bins per head) of its scores BEFORE
 * calibration (each unit's scores-uncalibrated.csv, written by evaluateRun for a calibrated model), pooled over the
 * folds and per fold; the models' own (calibrated) scores' are in models.<name>.pooled.calibration. A model none of
 * whose units has such a file (e.g. a study trained before calibration existed) is absent.
 */
async function beforeCalibration(ctx: Ctx, { tables }: UnitsResult): Promise<StudyResults['beforeCalibration']> {
  const out: NonNullable<StudyResults['beforeCalibration']> = {};
  for (const model of [...TRAINED_MODELS.map((m) => m.model), 'fusion-nosite'] as const) {
    const before = await Promise.all(
      tables[model].map((t, f) =>
        t ? readUnitScores(unitDir(ctx.dir, model, f), ctx.folds[f].test, UNCALIBRATED_SCORES) : null,
      ),
    );
    // pooled only when every fold with scores has its uncalibrated scores too (else before and after differ in images)
    if (!before.some((t) => t !== null)) continue;
    const complete = before.every((t, f) => (t === null) === (tables[model][f] === null));
    const calibrationOf = (t: ScoreTable | null) =>
      t ? (evaluationJson(evaluate(samplesOf(ctx.manifest, t), t)).calibration as CalibrationPair) : null;
    out[model] = {
      pooled: complete ? calibrationOf(concatTables(before.filter((t): t is ScoreTable => t !== null))) : null,
      folds: before.map(calibrationOf),
    };
  }
  return out;
}

/**
 * Sensitivity and specificity per lesion label of the trained models with a lesion head, each fold's model at the
 * thresholds it chose on its own validation part (its calibration.json): per fold, and pooled (the folds' counts
 * summed). A model without such thresholds in some fold (trained before calibration existed) is absent.
 */
async function operatingPoints(ctx: Ctx, { tables }: UnitsResult): Promise<StudyResults['operatingPoints']> {
  const out: NonNullable<StudyResults['operatingPoints']> = {};
  for (const model of ['lesion', 'mtl'] as const) {
    const thresholds = await Promise.all(
      tables[model].map(async (t, f) => {
        if (!t) return null;
        const file = join(unitDir(ctx.dir, model, f), 'model', CALIBRATION_FILE);
        if (
          !(await stat(file).then(
            () => true,
            () => false,
          ))
        )
          return undefined;
        const labels = parseWith(CalibrationSchema, await readJson(file), file).thresholds?.labels;
        return labels ? Object.fromEntries(Object.entries(labels).map(([l, v]) => [l, v.threshold])) : undefined;
      }),
    );
    if (thresholds.some((t) => t === undefined) || !thresholds.some((t) => t)) continue;
    const parts = tables[model].map((t, f) =>
      t && thresholds[f] ? { t, thresholds: thresholds[f]!, samples: samplesOf(ctx.manifest, t) } : null,
    );
    const column = (p: NonNullable<(typeof parts)[number]>, c: number) => ({
      relevant: p.samples.map((s) => s.lesions.includes(p.t.lesionLabels[c])),
      scores: p.t.lesion.map((row) => row[c]),
    });
    const labels = parts.find((p) => p)!.t.lesionLabels;
    out[model] = {
      pooled: Object.fromEntries(
        labels.map((label, c) => [
          label,
          pooledOperatingPoint(
            parts.filter((p) => p !== null).map((p) => ({ ...column(p, c), threshold: p.thresholds[label] })),
          ),
        ]),
      ),
      folds: parts.map((p) =>
        p
          ? Object.fromEntries(
              labels.map((label, c) => [
                label,
                {
                  threshold: p.thresholds[label],
                  ...pooledOperatingPoint([{ ...column(p, c), threshold: p.thresholds[label] }]),
                },
              ]),
            )
          : null,
      ),
    };
  }
  return out;
}

/** The task weights a finished MTL run used (run.json), without the log-variances; null for an older run. */
async function taskWeightsOf(
  dir: string,
): Promise<NonNullable<StudyResults['taskWeights']>[ModelName] extends (infer T)[] | undefined ? T : never> {
  const w = (await readRunInfoIfAny(dir).catch(() => undefined))?.taskWeights;
  return w
    ? { kind: w.kind, lesion: w.lesion, location: w.location, ...(w.candidates ? { candidates: w.candidates } : {}) }
    : null;
}

/** The epoch a finished run kept on validation (run.json), or null (the last epoch, or an older run). */
async function selectionOf(dir: string): Promise<Selection | null> {
  const info = await readRunInfoIfAny(dir).catch(() => undefined);
  const s = info?.selection;
  return s && info?.config ? { ...s, epochs: epochsOf(info.config as TrainConfig) } : null;
}

function buildResults(ctx: Ctx, units: UnitsResult, command: string, totalSeconds: number): StudyResults {
  const { tables, seconds, choices, selection, skipped } = units;
  const m = ctx.manifest;
  const result = <E extends Eval>(name: ModelName) => {
    const present = tables[name].filter((t): t is ScoreTable => t !== null);
    const pooled = present.length ? evalOf(m, concatTables(present)) : null;
    return modelResult(
      pooled as E | null,
      tables[name].map((t) => evalOf(m, t) as E | null),
    );
  };
  const lesion = result<LesionEval>('lesion');
  const mtl = result<MtlEval>('mtl');
  const labels = labelsFor('mtl', m.samples);
  const { task: _task, ...config } = ctx.config;
  const ran = new Set<ModelName>(ctx.trained.map((t) => t.model));
  if (ran.has('fusion')) for (const derived of ['fusion-nosite', 'lesion-site'] as const) ran.add(derived);
  const variant = (name: ModelName) => (ran.has(name) ? { [name]: result<MtlEval>(name) } : {});
  const models = {
    lesion,
    location: result<LocationEval>('location'),
    mtl,
    ensemble: result<LesionEval>('ensemble'),
    prior: result<MtlEval>('prior'),
    'site-prior': result<LesionEval>('site-prior'),
    linear: { ...result<MtlEval>('linear'), choices },
    ...variant('mtl-uw'),
    ...variant('mtl-tuned'),
    ...variant('fusion'),
    ...variant('fusion-nosite'),
    ...(ran.has('lesion-site') ? { 'lesion-site': result<LesionEval>('lesion-site') } : {}),
  };
  return {
    version: RESULTS_VERSION,
    createdAt: new Date().toISOString(),
    command,
    config: config as unknown as Record<string, unknown>,
    dataset: {
      manifest: ctx.opts.manifest,
      manifestHash: manifestHash(m),
      stats: manifestStats(m),
      cooccurrence: cooccurrence(m.samples),
    },
    lesionLabels: labels.lesion,
    locationLabels: labels.location,
    folds: ctx.folds.length,
    onlyFolds: ctx.runFolds.length === ctx.folds.length ? null : ctx.runFolds,
    models,
    selection,
    paired: pairedResults(mtl, lesion),
    comparisons: comparisonResults(models),
    versusLesion: versusLesionResults(models),
    taskWeights: units.taskWeights,
    timing: {
      totalSeconds,
      models: Object.fromEntries(
        Object.entries(seconds).filter(
          ([n]) => !(VARIANT_NAMES as readonly string[]).includes(n) || ran.has(n as ModelName),
        ),
      ),
    },
    skipped,
  };
}
