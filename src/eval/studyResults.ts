import { z } from 'zod';
import { pairedDifference, summarize } from './stats.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { issueLines, readJson } from '../util/jsonFile.ts';

/**
 * results.json of a cross-validation study (`dermtl cv`): everything the report is drawn from, so
 * a report can be re-rendered, or checked, without re-training. Folds are numbered 0..k-1 as in the
 * fold file of `dermtl split`.
 *
 * Each model's `folds[f]` is `evaluationJson` of its fold-f test scores, or null when the model was
 * not trained in fold f (then `skipped` says why); `pooled` is `evaluationJson` of all its
 * out-of-fold scores together (null when every fold was skipped). Build the per-model and paired
 * summaries with `modelResult` and `pairedResults` rather than by hand.
 */

/** 2: the baselines `prior` and `linear` in `models`, `comparisons` (version 1 had neither). */
export const RESULTS_VERSION = 2;

/**
 * lesion = lesion-only, location = location-only, mtl = multi-task, ensemble = per-label max of lesion and mtl;
 * the baselines: prior = the training part's label frequencies, site-prior = the training part's lesion label rates
 * at each test image's body site (what the site alone tells), linear = L2 logistic regression on the ImageNet
 * trunk's ten-crop features (src/eval/baselines.ts). Beyond the paper (issue 9; run with `dermtl cv --models`):
 * mtl-uw = MTL with uncertainty task weighting, mtl-tuned = MTL with the location weight chosen on validation,
 * fusion = late fusion of the body location into the lesion head scored with each image's site given, and
 * fusion-nosite = the same models scored with the site unknown (their own predicted location), lesion-site = the
 * lesion-only model's scores shifted by the training part's site log-odds, nothing trained (siteCorrection.ts; in a
 * study with fusion).
 */
export const MODEL_NAMES = [
  'lesion',
  'location',
  'mtl',
  'ensemble',
  'prior',
  'site-prior',
  'linear',
  'mtl-uw',
  'mtl-tuned',
  'fusion',
  'fusion-nosite',
  'lesion-site',
] as const;
export type ModelName = (typeof MODEL_NAMES)[number];
export const BASELINE_NAMES = ['prior', 'site-prior', 'linear'] as const satisfies readonly ModelName[];

/** Which heads each model is evaluated on. */
export const MODEL_HEADS: Record<ModelName, { lesion: boolean; location: boolean }> = {
  lesion: { lesion: true, location: false },
  location: { lesion: false, location: true },
  mtl: { lesion: true, location: true },
  ensemble: { lesion: true, location: false },
  prior: { lesion: true, location: true },
  'site-prior': { lesion: true, location: false },
  linear: { lesion: true, location: true },
  'mtl-uw': { lesion: true, location: true },
  'mtl-tuned': { lesion: true, location: true },
  fusion: { lesion: true, location: true },
  'fusion-nosite': { lesion: true, location: true },
  'lesion-site': { lesion: true, location: false },
};

/** The models beyond the paper's: absent from results.json unless the study ran them. */
export const VARIANT_NAMES = [
  'mtl-uw',
  'mtl-tuned',
  'fusion',
  'fusion-nosite',
  'lesion-site',
] as const satisfies readonly ModelName[];

/** Every model with a lesion head is compared with lesion-only (paired differences, per-label AP change). */
export const VERSUS_LESION = ['mtl', 'ensemble', ...VARIANT_NAMES] as const satisfies readonly ModelName[];

/** The paired comparisons against the linear baseline, and the metrics each is made on (both models have them). */
export const COMPARISONS = [
  { a: 'mtl', b: 'linear', metrics: ['mapClass', 'mapImage', 'top1'] },
  { a: 'lesion', b: 'linear', metrics: ['mapClass', 'mapImage'] },
  { a: 'location', b: 'linear', metrics: ['top1'] },
] as const satisfies readonly { a: ModelName; b: ModelName; metrics: readonly PairedMetric[] }[];
export type PairedMetric = 'mapClass' | 'mapImage' | 'top1' | 'top3';

const count = z.number().int().nonnegative();
/** AP and accuracies are fractions. */
const fraction = z.number().min(0).max(1);
const counts = z.record(z.string(), count);
const absent = (why: string) => z.undefined({ error: why }).optional();

const evalBase = {
  n: count,
  skipped: z.array(z.object({ label: z.string(), reason: z.string() })),
  positives: z.object({ lesion: counts.optional(), location: counts.optional() }),
};
const lesionKeys = {
  ap: z.record(z.string(), fraction),
  mapClass: fraction.nullable(),
  mapImage: fraction.nullable(),
  mapImageImages: count,
};
const locationKeys = { top1: fraction, top3: fraction };
const noLesionKeys = Object.fromEntries(
  Object.keys(lesionKeys).map((k) => [k, absent('a model without a lesion head has no lesion metrics')]),
);
const noLocationKeys = Object.fromEntries(
  Object.keys(locationKeys).map((k) => [k, absent('a model without a location head has no location metrics')]),
);

// loose: keys evaluationJson may gain later are kept; only the other head's metrics are refused
export const LesionEvalSchema = z.object({ ...evalBase, ...lesionKeys, ...noLocationKeys }).loose();
export const LocationEvalSchema = z.object({ ...evalBase, ...locationKeys, ...noLesionKeys }).loose();
export const MtlEvalSchema = z.object({ ...evalBase, ...lesionKeys, ...locationKeys }).loose();

/** The scalar metrics summarised over folds; `ap` per lesion label. */
const MetricValuesSchema = z.object({
  ap: z.record(z.string(), z.number()).optional(),
  mapClass: z.number().optional(),
  mapImage: z.number().optional(),
  top1: z.number().optional(),
  top3: z.number().optional(),
  /** Mean lesion ROC AUC, location balanced accuracy and one-vs-rest macro AUC (metrics/metrics.ts). */
  meanAuc: z.number().optional(),
  balancedAccuracy: z.number().optional(),
  macroAuc: z.number().optional(),
});

function modelSchema<T extends z.ZodType>(evalSchema: T) {
  return z.object({
    /** evaluationJson of all out-of-fold scores pooled; null when the model was skipped in every fold. */
    pooled: evalSchema.nullable(),
    /** evaluationJson per fold (index = fold); null where the model was skipped. */
    folds: z.array(evalSchema.nullable()),
    /** Mean over the folds where the metric is defined. */
    mean: MetricValuesSchema,
    /** Sample std over those folds; absent where fewer than 2 folds have the metric. */
    std: MetricValuesSchema,
    /** How many folds each mean is over. */
    n: MetricValuesSchema,
  });
}

const PairedSchema = z.object({
  /** The folds where both models have the metric (the pairs). */
  folds: z.array(count),
  k: z.number().int().min(2),
  differences: z.array(z.number()),
  mean: z.number(),
  std: z.number(),
  level: z.number().gt(0).lt(1),
  t: z.number(),
  halfWidth: z.number(),
  ci: z.tuple([z.number(), z.number()]),
});

/** One paired comparison a - b, per metric; a metric's value is null where fewer than 2 folds have both. */
const ComparisonSchema = z.object({
  a: z.enum(MODEL_NAMES),
  b: z.enum(MODEL_NAMES),
  mapClass: PairedSchema.nullable().optional(),
  mapImage: PairedSchema.nullable().optional(),
  top1: PairedSchema.nullable().optional(),
  top3: PairedSchema.nullable().optional(),
});

/** ECE (15 bins), MCE, Brier and the reliability bins of one head's probabilities (metrics/calibration.ts). */
const CalibrationSchema = z.object({
  ece: z.number(),
  mce: z.number(),
  brier: z.number(),
  n: count,
  bins: z.array(
    z.object({
      lo: z.number(),
      hi: z.number(),
      count,
      confidence: z.number().nullable(),
      accuracy: z.number().nullable(),
    }),
  ),
});
/** Per head; null where the scores are not probabilities. */
const CalibrationPairSchema = z.object({
  lesion: CalibrationSchema.nullable().optional(),
  location: CalibrationSchema.nullable().optional(),
});
export type CalibrationPair = z.infer<typeof CalibrationPairSchema>;
export type HeadCalibration = z.infer<typeof CalibrationSchema>;

/** The lambdas the linear baseline chose in one fold (the whole path is in its unit folder's linear.json). */
const LinearChoiceSchema = z.object({
  lesionLambda: z.number().nonnegative(),
  locationLambda: z.number().nonnegative(),
  /** 'validation': chosen on the training part's validation groups; 'default': no validation part (see reason). */
  rule: z.enum(['validation', 'default']),
  reason: z.string().optional(),
  validationImages: count,
});

/** The epoch a trained model kept by model selection on its validation part (selection.epoch 'best'). */
const SelectionSchema = z.object({
  epoch: z.number().int().min(1),
  epochs: z.number().int().min(1),
  metric: z.string(),
  score: z.number(),
});
export type Selection = z.infer<typeof SelectionSchema>;

const LabelCountSchema = z.object({ label: z.string(), count });

export const ResultsSchema = z.object({
  version: z.literal(RESULTS_VERSION),
  /** ISO time the study finished (optional, informative). */
  createdAt: z.string().optional(),
  /** The exact command line that produced this file. */
  command: z.string(),
  /** The resolved training configuration, stored as given. */
  config: z.record(z.string(), z.unknown()),
  dataset: z.object({
    manifest: z.string(),
    manifestHash: z.string(),
    /** manifestStats of the manifest. */
    stats: z.object({
      images: count,
      groups: count,
      lesions: z.array(LabelCountSchema),
      locations: z.array(LabelCountSchema),
      lesionsPerImage: z.array(count),
      imagesWithoutLesion: count,
    }),
    /** cooccurrence of the manifest (Figure 1). */
    cooccurrence: z.object({
      lesions: z.array(z.string()),
      locations: z.array(z.string()),
      counts: z.array(z.array(count)),
      lesionTotals: z.array(count),
      R: z.array(z.array(z.number())),
    }),
  }),
  /** Lesion labels the models score, in score-column order. */
  lesionLabels: z.array(z.string()),
  /** Location labels the models score, in score-column order. */
  locationLabels: z.array(z.string()),
  /** k, the number of folds. */
  folds: z.number().int().min(2),
  /** A PARTIAL study (dermtl cv --only-folds): the folds that were run; absent or null: all k. */
  onlyFolds: z.array(count).nullable().optional(),
  models: z.object({
    lesion: modelSchema(LesionEvalSchema),
    location: modelSchema(LocationEvalSchema),
    mtl: modelSchema(MtlEvalSchema),
    ensemble: modelSchema(LesionEvalSchema),
    /** Baseline: every test image scored with the training part's label frequencies. */
    prior: modelSchema(MtlEvalSchema),
    /** Baseline: each test image scored with the training part's lesion label rates at its body site (absent from studies written before it was added). */
    'site-prior': modelSchema(LesionEvalSchema).optional(),
    /** Baseline: L2 logistic regression on the ImageNet trunk's ten-crop features; choices[f] = fold f's lambdas. */
    linear: modelSchema(MtlEvalSchema).extend({ choices: z.array(LinearChoiceSchema.nullable()) }),
    'mtl-uw': modelSchema(MtlEvalSchema).optional(),
    'mtl-tuned': modelSchema(MtlEvalSchema).optional(),
    fusion: modelSchema(MtlEvalSchema).optional(),
    'fusion-nosite': modelSchema(MtlEvalSchema).optional(),
    'lesion-site': modelSchema(LesionEvalSchema).optional(),
  }),
  /**
   * Each model with a lesion head against lesion-only (VERSUS_LESION, those the study has): the paired fold
   * differences of mapClass and mapImage, and per lesion label the AP change (pooled out-of-fold AP, model minus
   * lesion-only; null where either AP is undefined).
   */
  versusLesion: z
    .partialRecord(
      z.enum(MODEL_NAMES),
      z.object({
        mapClass: PairedSchema.nullable(),
        mapImage: PairedSchema.nullable(),
        apChange: z.record(z.string(), z.number().nullable()),
      }),
    )
    .optional(),
  /** Per MTL model and fold, the task weights its run used: fixed, learned (mtl-uw) or chosen on validation (mtl-tuned). */
  taskWeights: z
    .partialRecord(
      z.enum(MODEL_NAMES),
      z.array(
        z
          .object({
            kind: z.enum(['fixed', 'uncertainty', 'tuned']),
            lesion: z.number(),
            location: z.number(),
            candidates: z
              .array(
                z.object({ location: z.number(), score: z.number().nullable(), epoch: z.number().int().nullable() }),
              )
              .optional(),
          })
          .nullable(),
      ),
    )
    .optional(),
  /** Per trained model and fold, the epoch kept on validation (null: the last epoch, or not run). */
  selection: z.partialRecord(z.enum(MODEL_NAMES), z.array(SelectionSchema.nullable())).optional(),
  /** MTL - lesion-only per fold, with a t confidence interval; null with fewer than 2 folds having both. */
  paired: z.object({ mapClass: PairedSchema.nullable(), mapImage: PairedSchema.nullable() }),
  /** Further paired differences a - b (COMPARISONS: each trained model against the linear baseline). */
  comparisons: z.array(ComparisonSchema),
  timing: z.object({
    /** Wall-clock seconds of the whole study. */
    totalSeconds: z.number().nonnegative(),
    /** Seconds per fold (train + evaluate) of each model; null where skipped; a model may be absent (e.g. the ensemble trains nothing). */
    models: z.partialRecord(z.enum(MODEL_NAMES), z.array(z.number().nonnegative().nullable())),
  }),
  /**
   * Per trained model, the calibration of its scores BEFORE the temperatures fitted on each run's validation part
   * (pooled: null unless every fold has them); the calibrated scores' are in models.<name>.pooled.calibration.
   */
  beforeCalibration: z
    .partialRecord(
      z.enum(MODEL_NAMES),
      z.object({ pooled: CalibrationPairSchema.nullable(), folds: z.array(CalibrationPairSchema.nullable()) }),
    )
    .optional(),
  /**
   * Sensitivity / specificity per lesion label of lesion-only and MTL, each fold's model at its own thresholds (max F1
   * on its validation part): per fold, and pooled (counts summed over the folds).
   */
  operatingPoints: z
    .partialRecord(
      z.enum(['lesion', 'mtl']),
      z.object({
        pooled: z.record(z.string(), z.object({ sensitivity: fraction.nullable(), specificity: fraction.nullable() })),
        folds: z.array(
          z
            .record(
              z.string(),
              z.object({ threshold: z.number(), sensitivity: fraction.nullable(), specificity: fraction.nullable() }),
            )
            .nullable(),
        ),
      }),
    )
    .optional(),
  /** Models that could not be trained in a fold, e.g. because the fold's training part has no label for a head. */
  skipped: z.array(z.object({ model: z.enum(MODEL_NAMES), fold: count, reason: z.string().min(1) })),
});

export type StudyResults = z.infer<typeof ResultsSchema>;
export type LesionEval = z.infer<typeof LesionEvalSchema>;
export type LocationEval = z.infer<typeof LocationEvalSchema>;
export type MtlEval = z.infer<typeof MtlEvalSchema>;
/** Any model's evaluation: the union of the keys. */
export type Eval = LesionEval | LocationEval | MtlEval;
export type MetricValues = z.infer<typeof MetricValuesSchema>;
export type ModelResult = NonNullable<StudyResults['models'][ModelName]>;
export type PairedResult = z.infer<typeof PairedSchema>;
/** One model's paired comparison against lesion-only (results.json versusLesion). */
export type VersusLesion = NonNullable<NonNullable<StudyResults['versusLesion']>[ModelName]>;
export type Comparison = z.infer<typeof ComparisonSchema>;
export type LinearChoiceSummary = z.infer<typeof LinearChoiceSchema>;
export type SkippedModel = StudyResults['skipped'][number];

/**
 * Checks a parsed results.json (or an object about to be written) and returns it typed. A file of
 * another version, or one that is not a results file, gets its own message; every other problem is
 * listed with its JSON path.
 */
export function validateResults(raw: unknown, source = 'results.json'): StudyResults {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DermtlError(`${source}: not a dermtl study results file (expected a JSON object)`);
  }
  const version = (raw as { version?: unknown }).version;
  if (version === undefined) throw new DermtlError(`${source}: not a dermtl study results file (it has no "version")`);
  if (version !== RESULTS_VERSION) {
    throw new DermtlError(
      `${source}: results version ${JSON.stringify(version)} is not supported; this dermtl reads version ${RESULTS_VERSION} (re-run the study with the same command: finished models are reused; or use the dermtl that wrote it)`,
    );
  }
  const parsed = ResultsSchema.safeParse(raw);
  if (!parsed.success) {
    throw errorList(`${source}: invalid study results`, issueLines(parsed.error.issues));
  }
  const problems = consistencyProblems(parsed.data);
  if (problems.length) throw errorList(`${source}: inconsistent study results`, problems);
  return parsed.data;
}

/** Reads and validates a results.json file. */
export async function readResults(file: string): Promise<StudyResults> {
  const raw = await readJson(file, {
    missing: `results file not found: ${file}`,
    notJson: (why) => `${file} is not valid JSON: ${why}`,
  });
  return validateResults(raw, file);
}

/** What the schema cannot say: array lengths agree with k, and a null fold is exactly a skipped one. */
function consistencyProblems(r: StudyResults): string[] {
  const problems: string[] = [];
  const k = r.folds;
  const skipped = new Set(r.skipped.map((s) => `${s.model}/${s.fold}`));
  for (const s of r.skipped)
    if (s.fold >= k) problems.push(`skipped: ${s.model} fold ${s.fold} is outside 0..${k - 1}`);
  for (const name of MODEL_NAMES) {
    const m = r.models[name];
    if (!m) continue; // a variant the study did not run
    if (m.folds.length !== k) problems.push(`models.${name}.folds: ${m.folds.length} entries for ${k} folds`);
    m.folds.forEach((ev, f) => {
      const notRun = r.onlyFolds && !r.onlyFolds.includes(f);
      if (notRun && ev !== null) problems.push(`models.${name}.folds.${f}: a result for a fold outside onlyFolds`);
      if (ev === null && !notRun && !skipped.has(`${name}/${f}`))
        problems.push(`models.${name}.folds.${f}: null, but "skipped" has no entry for ${name} fold ${f}`);
      if (ev !== null && skipped.has(`${name}/${f}`))
        problems.push(`models.${name}.folds.${f}: has results, but "skipped" lists ${name} fold ${f}`);
    });
    if (m.pooled === null && m.folds.some((f) => f !== null))
      problems.push(`models.${name}.pooled: null although some folds have results`);
    const known = new Set(r.lesionLabels);
    for (const ev of [m.pooled, ...m.folds]) {
      for (const label of Object.keys((ev as LesionEval | null)?.ap ?? {})) {
        if (!known.has(label)) problems.push(`models.${name}: AP for "${label}", which is not in lesionLabels`);
      }
    }
  }
  const choices = r.models.linear.choices;
  if (choices.length !== k) problems.push(`models.linear.choices: ${choices.length} entries for ${k} folds`);
  choices.forEach((c, f) => {
    if ((c === null) !== (r.models.linear.folds[f] === null))
      problems.push(
        `models.linear.choices.${f}: ${c === null ? 'null for a fold with results' : 'present for a skipped fold'}`,
      );
  });
  for (const [name, secs] of Object.entries(r.timing.models)) {
    if (secs && secs.length !== k) problems.push(`timing.models.${name}: ${secs.length} entries for ${k} folds`);
  }
  return [...new Set(problems)];
}

/** The value of one scalar metric in an evaluation, or undefined where it has none. */
function scalar(ev: Eval | null, key: PairedMetric | SummaryMetric): number | undefined {
  const v = (ev as Record<string, unknown> | null)?.[key];
  return typeof v === 'number' ? v : undefined;
}

/**
 * A model's entry of `models`: its pooled and per-fold evaluations plus mean, std and fold count of
 * every scalar metric (each AP, mapClass, mapImage, top1, top3) over the folds that define it.
 */
export function modelResult<E extends Eval>(
  pooled: E | null,
  folds: (E | null)[],
): { pooled: E | null; folds: (E | null)[]; mean: MetricValues; std: MetricValues; n: MetricValues } {
  const mean: MetricValues = {};
  const std: MetricValues = {};
  const n: MetricValues = {};
  for (const key of SUMMARY_METRICS) {
    const d = describe(folds.map((f) => scalar(f, key)));
    if (d.n) [n[key], mean[key]] = [d.n, d.mean];
    if (d.std !== undefined) std[key] = d.std;
  }
  const labels = [...new Set(folds.flatMap((f) => Object.keys((f as LesionEval | null)?.ap ?? {})))];
  for (const label of labels) {
    const d = describe(folds.map((f) => (f as LesionEval | null)?.ap?.[label]));
    if (!d.n) continue;
    (n.ap ??= {})[label] = d.n;
    (mean.ap ??= {})[label] = d.mean!;
    if (d.std !== undefined) (std.ap ??= {})[label] = d.std;
  }
  return { pooled, folds, mean, std, n };
}

/** The scalar metrics summarised over folds (mean, std, n). */
const SUMMARY_METRICS = ['mapClass', 'mapImage', 'top1', 'top3', 'meanAuc', 'balancedAccuracy', 'macroAuc'] as const;
type SummaryMetric = (typeof SUMMARY_METRICS)[number];

/** Mean, sample std (from 2 values) and count of the defined values. */
function describe(values: (number | undefined)[]): { n: number; mean?: number; std?: number } {
  const xs = values.filter((v): v is number => v !== undefined);
  if (xs.length === 0) return { n: 0 };
  if (xs.length === 1) return { n: 1, mean: xs[0] };
  return summarize(xs);
}

/** a - b per fold in one metric, over the folds where both have it, with a t interval; null below 2 such folds. */
export function pairedMetric(
  a: { folds: (Eval | null)[] },
  b: { folds: (Eval | null)[] },
  key: PairedMetric,
  level = 0.95,
): PairedResult | null {
  const folds: number[] = [];
  const x: number[] = [];
  const y: number[] = [];
  a.folds.forEach((ev, f) => {
    const u = scalar(ev, key);
    const v = scalar(b.folds[f] ?? null, key);
    if (u === undefined || v === undefined) return;
    folds.push(f);
    x.push(u);
    y.push(v);
  });
  return folds.length < 2 ? null : { folds, ...pairedDifference(x, y, level) };
}

/**
 * MTL - lesion-only per fold in mapClass and mapImage, over the folds where both have the metric,
 * with a 95% t interval; null where fewer than 2 folds qualify.
 */
export function pairedResults(
  mtl: { folds: (Eval | null)[] },
  lesion: { folds: (Eval | null)[] },
  level = 0.95,
): StudyResults['paired'] {
  return {
    mapClass: pairedMetric(mtl, lesion, 'mapClass', level),
    mapImage: pairedMetric(mtl, lesion, 'mapImage', level),
  };
}

/** Each VERSUS_LESION model the study has against lesion-only: paired mapClass / mapImage and the per-label AP change. */
export function versusLesionResults(
  models: Partial<Record<ModelName, { folds: (Eval | null)[]; pooled: Eval | null }>>,
  level = 0.95,
): NonNullable<StudyResults['versusLesion']> {
  const lesion = models.lesion;
  const out: NonNullable<StudyResults['versusLesion']> = {};
  if (!lesion) return out;
  const ap = (ev: Eval | null) => (ev as LesionEval | null)?.ap ?? {};
  for (const name of VERSUS_LESION) {
    const m = models[name];
    if (!m) continue;
    const labels = [...new Set([...Object.keys(ap(lesion.pooled)), ...Object.keys(ap(m.pooled))])];
    const change = (l: string) => {
      const a = ap(m.pooled)[l];
      const b = ap(lesion.pooled)[l];
      return a === undefined || b === undefined ? null : a - b;
    };
    out[name] = {
      mapClass: pairedMetric(m, lesion, 'mapClass', level),
      mapImage: pairedMetric(m, lesion, 'mapImage', level),
      apChange: Object.fromEntries(labels.map((l) => [l, change(l)])),
    };
  }
  return out;
}

/** The COMPARISONS of a study's models (every model's `folds`). */
export function comparisonResults(
  models: Pick<Record<ModelName, { folds: (Eval | null)[] }>, (typeof COMPARISONS)[number]['a' | 'b']>,
  level = 0.95,
): Comparison[] {
  return COMPARISONS.map((c) => ({
    a: c.a,
    b: c.b,
    ...Object.fromEntries(c.metrics.map((m) => [m, pairedMetric(models[c.a], models[c.b], m, level)])),
  }));
}
