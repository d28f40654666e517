// The two floors a study reports next to its trained models, for lesions and for location:
//   prior   every test image gets the same scores, the training part's label frequencies: the share of the
//           training images with lesion labels that carry each label, and the share of each location. Its
//           mAP-class is then the test positive rates and its top-1 the majority-location rate (ties count against).
//   site-prior  lesions only: each test image gets the training part's label rates at its own body site, shrunk
//           towards the label's overall rate (data/statistics.ts siteLabelRates): what the site alone tells, the
//           floor any use of the site (a fusion model given it) should clear.
//   linear  L2-regularised logistic regression (linearProbe.ts) on the ImageNet trunk's cached pooled features of
//           the ten test crops: trained on all 10 crops of each training image (one row each), a test image scored
//           with the mean of its crops' probabilities (the centre crop alone with --tta center). Lambda is chosen
//           per head on the training part's validation groups (the same groups the trained models validate on)
//           along a path of LAMBDA_GRID, then the heads are refitted on the whole training part.
import { siteLabelRates } from '../data/statistics.ts';
import type { Sample } from '../data/types.ts';
import type { Tta } from '../train/config.ts';
import type { LinearHeads, ProbeFit } from '../train/linearProbe.ts';
import type { RunLabels } from '../train/run.ts';
import { validationSplit } from '../train/targets.ts';
import { DermtlError } from '../util/errors.ts';
import { lesionMetrics, locationMetrics } from '../metrics/metrics.ts';
import { DEFAULT_LAMBDA, LAMBDA_GRID, PATIENCE } from './baselineGrid.ts';
import { ProbeSession, type CropFeatures, type ImageScores } from './probeSession.ts';
import type { ScoreTable } from '../metrics/scores.ts';

export type { CropFeatures } from './probeSession.ts';

// ---------------------------------------------------------------- prior

/** The prior's scores of `test`: the label frequencies of `train`, the same for every image. */
export function priorScores(train: readonly Sample[], test: readonly Sample[], labels: RunLabels): ScoreTable {
  const withLesions = train.filter((s) => s.lesions.some((l) => labels.lesion.includes(l)));
  const share = (n: number, of: number) => (of > 0 ? n / of : 0);
  const lesion = Float64Array.from(labels.lesion, (l) =>
    share(withLesions.filter((s) => s.lesions.includes(l)).length, withLesions.length),
  );
  const location = Float64Array.from(labels.location, (l) =>
    share(train.filter((s) => s.location === l).length, train.length),
  );
  return {
    images: test.map((s) => s.image),
    lesionLabels: [...labels.lesion],
    locationLabels: [...labels.location],
    lesion: test.map(() => Float64Array.from(lesion)),
    location: test.map(() => Float64Array.from(location)),
  };
}

/** The site prior's lesion scores of `test`: P(label | the image's site) in `train` (P(label) at a site not listed). */
export function sitePriorScores(train: readonly Sample[], test: readonly Sample[], labels: RunLabels): ScoreTable {
  const { prior, rate } = siteLabelRates(train, labels.lesion, labels.location);
  const Q = labels.location.length;
  const scores = (s: Sample) => {
    const j = labels.location.indexOf(s.location);
    return j < 0 ? Float64Array.from(prior) : Float64Array.from(prior, (_, i) => rate[i * Q + j]);
  };
  return {
    images: test.map((s) => s.image),
    lesionLabels: [...labels.lesion],
    locationLabels: [],
    lesion: test.map(scores),
    location: test.map(() => new Float64Array(0)),
  };
}

// ---------------------------------------------------------------- linear

export { DEFAULT_LAMBDA, LAMBDA_GRID, PATIENCE } from './baselineGrid.ts';

export interface PathPoint {
  lambda: number;
  /** Validation mAP-class of the lesion head (null: no validation image has a positive). */
  lesionMapClass: number | null;
  /** Validation mean log-loss and top-1 of the location head. */
  locationLogLoss: number;
  locationTop1: number;
  iterations: number;
  converged: boolean;
}

export interface LinearChoice {
  lesionLambda: number;
  locationLambda: number;
  /** 'validation': chosen on the validation groups; 'default': DEFAULT_LAMBDA (see reason). */
  rule: 'validation' | 'default';
  reason?: string;
  validationImages: number;
  grid: number[];
  /** Validation scores along the path, as far as it went (empty for 'default'). */
  path: PathPoint[];
  /** The final fit on the whole training part. */
  refit: { iterations: number; converged: boolean };
}

export interface LinearBaselineOptions {
  features: CropFeatures;
  train: readonly Sample[];
  test: readonly Sample[];
  labels: RunLabels;
  /** The trained models' validation split (config.validation.fraction, config.seed). */
  validation: { fraction: number; seed: number };
  tta: Tta;
  threads?: number;
  grid?: readonly number[];
  /** One line per fit (lambda, iterations, matrix products, seconds). */
  log?: (line: string) => void;
}

/**
 * The linear baseline of one fold: lambdas chosen on the validation groups, heads refitted on the whole training
 * part (warm-started from the chosen path points), test images scored. Lesion lambda: the highest validation
 * mAP-class (the metric reported); location lambda: the lowest validation mean log-loss (smooth and defined for
 * every image, where top-1 on ~80 images moves in coarse steps). A tie goes to the larger lambda.
 */
export async function linearBaseline(o: LinearBaselineOptions): Promise<{ table: ScoreTable; choice: LinearChoice }> {
  const grid = [...(o.grid ?? LAMBDA_GRID)];
  const split = splitForChoice(o);
  let choice: Omit<LinearChoice, 'refit'>;
  let init: LinearHeads | undefined;
  if ('reason' in split) {
    choice = {
      lesionLambda: DEFAULT_LAMBDA,
      locationLambda: DEFAULT_LAMBDA,
      rule: 'default',
      reason: split.reason,
      validationImages: 0,
      grid,
      path: [],
    };
  } else {
    const path = await lambdaPath(o, split.train, split.validation, grid);
    const { lesion, location } = path.best;
    choice = {
      lesionLambda: lesion === null ? DEFAULT_LAMBDA : grid[lesion],
      locationLambda: grid[location],
      rule: 'validation',
      validationImages: split.validation.length,
      grid,
      path: path.points,
      ...(lesion === null ? { reason: `no validation image has a lesion label: lesion lambda ${DEFAULT_LAMBDA}` } : {}),
    };
    init = { ...path.heads[lesion ?? location], location: path.heads[location].location };
  }
  const session = await ProbeSession.open(o.features, o.train, o.test, o.labels, o.tta, o.threads);
  try {
    const r = await timedFit(o, session, { lesion: choice.lesionLambda, location: choice.locationLambda }, init);
    return {
      table: scoreTable(o, r.scores),
      choice: { ...choice, refit: { iterations: r.fit.iterations, converged: r.fit.converged } },
    };
  } finally {
    await session.release();
  }
}

/** The training part minus its validation groups, or why lambda cannot be chosen on validation. */
function splitForChoice(o: LinearBaselineOptions): { train: Sample[]; validation: Sample[] } | { reason: string } {
  if (o.validation.fraction <= 0) return { reason: 'validation.fraction is 0' };
  try {
    const s = validationSplit(o.train, o.validation.fraction, o.validation.seed);
    return s.validation.length ? s : { reason: 'the validation part is empty' };
  } catch (e) {
    if (e instanceof DermtlError) return { reason: e.message };
    throw e;
  }
}

interface Path {
  points: PathPoint[];
  heads: LinearHeads[];
  /** Index of each head's best point (lesion null: no validation mAP-class at all). */
  best: { lesion: number | null; location: number };
}

/** Fits along the grid on `train` (each warm-started from the last), scoring `validation` at every lambda. */
async function lambdaPath(
  o: LinearBaselineOptions,
  train: Sample[],
  validation: Sample[],
  grid: number[],
): Promise<Path> {
  const session = await ProbeSession.open(o.features, train, validation, o.labels, o.tta, o.threads);
  const path: Path = { points: [], heads: [], best: { lesion: null, location: 0 } };
  try {
    for (let i = 0; i < grid.length; i++) {
      const r = await timedFit(o, session, { lesion: grid[i], location: grid[i] }, path.heads.at(-1));
      path.points.push(validationPoint(o.labels, validation, grid[i], r));
      path.heads.push(r.fit.heads);
      path.best = {
        lesion: bestIndex(
          path.points.map((p) => p.lesionMapClass),
          'max',
        ),
        location: bestIndex(
          path.points.map((p) => p.locationLogLoss),
          'min',
        )!,
      };
      const stale = (at: number | null) => at === null || i - at >= PATIENCE;
      if (stale(path.best.lesion) && stale(path.best.location)) break;
    }
  } finally {
    await session.release();
  }
  return path;
}

function validationPoint(
  labels: RunLabels,
  validation: Sample[],
  lambda: number,
  r: { fit: ProbeFit; scores: ImageScores },
): PathPoint {
  const truth = validation.map((s) => s.location);
  return {
    lambda,
    lesionMapClass: labels.lesion.length
      ? lesionMetrics(
          labels.lesion,
          validation.map((s) => s.lesions),
          r.scores.lesion,
        ).mapClass
      : null,
    locationLogLoss: logLoss(labels.location, truth, r.scores.location),
    locationTop1: locationMetrics(labels.location, truth, r.scores.location).top1,
    iterations: r.fit.iterations,
    converged: r.fit.converged,
  };
}

async function timedFit(
  o: LinearBaselineOptions,
  session: ProbeSession,
  lambdas: { lesion: number; location: number },
  init?: LinearHeads,
) {
  const t0 = performance.now();
  const r = await session.fit(lambdas, init);
  const slow = r.fit.problems.filter((p) => !p.converged).map((p) => p.name);
  o.log?.(
    `linear: ${session.trainingRows} training rows, lambda ${lambdas.lesion}/${lambdas.location}: ${r.fit.iterations} iterations, ${r.fit.products} products (${r.fit.productSeconds.toFixed(1)} s), ${((performance.now() - t0) / 1000).toFixed(1)} s${slow.length ? `; NOT converged: ${slow.join(', ')}` : ''}`,
  );
  return r;
}

function scoreTable(o: LinearBaselineOptions, s: ImageScores): ScoreTable {
  return {
    images: o.test.map((x) => x.image),
    lesionLabels: [...o.labels.lesion],
    locationLabels: [...o.labels.location],
    lesion: s.lesion,
    location: s.location,
  };
}

/** Mean -log p(true location), p floored at 1e-12 (a class unseen in training has p = 0). */
function logLoss(labels: readonly string[], truth: readonly string[], scores: readonly Float64Array[]): number {
  const index = new Map(labels.map((l, c) => [l, c]));
  return truth.reduce((a, t, i) => a - Math.log(Math.max(1e-12, scores[i][index.get(t)!])), 0) / truth.length;
}

/** Index of the best defined value (the first on a tie: the larger lambda), or null when none is defined. */
function bestIndex(values: (number | null)[], want: 'max' | 'min'): number | null {
  let best: number | null = null;
  values.forEach((v, i) => {
    if (v === null) return;
    if (best === null || (want === 'max' ? v > values[best]! + 1e-12 : v < values[best]! - 1e-12)) best = i;
  });
  return best;
}
