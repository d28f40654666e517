// The linear probe: L2-regularised logistic regression on fixed features (the `linear` baseline of a study).
//   lesion head:   one binary logistic regression per lesion label (one-vs-rest); rows without any lesion label are
//                  left out of the lesion loss, as in training (encodeTargets' lesionKnown)
//   location head: one multinomial (softmax) logistic regression over the classes seen in training
// Each problem minimises  mean log-loss over its rows + lambda/2 ||W||^2  (the bias is not penalised); the
// problems are solved together by preconditioned L-BFGS in lockstep (lockstep.ts). Features are standardised with
// the TRAINING rows' mean and std (fitStandardiser), so a lambda means the same on every data set.
import { DermtlError } from '../util/errors.ts';
import { Lockstep, Problem, maxAbs } from './lockstep.ts';
import { sigmoid, softmaxRows } from './logistic.ts';
import { Preconditioner } from './preconditioner.ts';
import type { RowMatrix } from './rowMatrix.ts';

/** Per-feature mean and 1/std of training rows; a (near-)constant feature gets scale 1 (it becomes 0). */
export interface Standardiser {
  mean: Float64Array;
  scale: Float64Array;
}

const STD_FLOOR = 1e-6;

export function fitStandardiser(x: Float32Array, rows: number, dim: number): Standardiser {
  if (rows < 1) throw new DermtlError('linear probe: no training rows to standardise the features with');
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let i = 0; i < rows; i++) {
    for (let j = 0, at = i * dim; j < dim; j++) mean[j] += x[at + j];
  }
  for (let j = 0; j < dim; j++) mean[j] /= rows;
  for (let i = 0; i < rows; i++) {
    for (let j = 0, at = i * dim; j < dim; j++) sq[j] += (x[at + j] - mean[j]) ** 2;
  }
  const scale = sq.map((s) => {
    const std = Math.sqrt(s / rows);
    return std > STD_FLOOR ? 1 / std : 1;
  });
  return { mean, scale };
}

/** (x - mean) / std, as a new float32 matrix. */
export function standardise(x: Float32Array, s: Standardiser): Float32Array {
  const dim = s.mean.length;
  const out = new Float32Array(x.length);
  for (let at = 0; at < x.length; at += dim) {
    for (let j = 0; j < dim; j++) out[at + j] = (x[at + j] - s.mean[j]) * s.scale[j];
  }
  return out;
}

/** What the probe learns from, one entry per ROW (a training image contributes one row per view). */
export interface ProbeTargets {
  rows: number;
  /** Lesion labels P; [rows, P] 0/1. */
  lesionLabels: number;
  lesion: Float32Array;
  /** 1 where the row's image has any lesion label (else it is left out of the lesion loss). */
  lesionKnown: Uint8Array;
  /** Location classes K; the class per row (-1: unknown, left out). */
  locationClasses: number;
  location: Int32Array;
}

/** The learned heads, in standardised feature space. */
export interface LinearHeads {
  dim: number;
  /** w [dim, P] row-major, b [P]. A label without both classes in training keeps w = 0 and a smoothed-rate bias. */
  lesion: { w: Float64Array; b: Float64Array };
  /** The location classes seen in training (indices into K), w [dim, seen] and b [seen]; unseen classes get p = 0. */
  location: { classes: number[]; w: Float64Array; b: Float64Array };
  locationClasses: number;
}

export interface ProblemReport {
  /** 'lesion 3' or 'location'. */
  name: string;
  /** Fixed: no optimisation needed (a label without positives or negatives, fewer than 2 locations). */
  fixed: boolean;
  iterations: number;
  converged: boolean;
  /** max |gradient| at the end. */
  gradient: number;
}

export interface ProbeFit {
  heads: LinearHeads;
  lambdas: { lesion: number; location: number };
  /** Lockstep iterations (the slowest problem's) and matrix products run. */
  iterations: number;
  products: number;
  /** Seconds spent in the matrix products (the rest of a fit is JS). */
  productSeconds: number;
  converged: boolean;
  problems: ProblemReport[];
}

export interface FitOptions {
  /** Warm start (e.g. the solution at the previous lambda of a path). */
  init?: LinearHeads;
  /**
   * Stop a problem when max |gradient| <= tolerance (the loss is a mean, the features standardised). Default 3e-5:
   * on derm7pt, 1e-5 costs ~40% more iterations and moves a fold's test mAP-class by ~1e-4.
   */
  tolerance?: number;
  maxIterations?: number;
  /** L-BFGS memory (default 10). */
  memory?: number;
  /**
   * The features' preconditioner (Preconditioner.create(x)); it depends on x alone, so a lambda path shares one.
   * Default: one made (and released) here; null: plain L-BFGS.
   */
  preconditioner?: Preconditioner | null;
}

const DEFAULTS = { tolerance: 3e-5, maxIterations: 1000, memory: 10 };
/**
 * Fits both heads on standardised features `x` (rows aligned with `targets`) with the given lambdas. Problems
 * that need no optimisation (see LinearHeads) are set directly; the rest run in lockstep until each meets the
 * gradient tolerance, its line search can no longer decrease the objective (converged to float precision), or
 * maxIterations is reached (then `converged` is false and the report names it).
 */
export async function fitLinearHeads(
  x: RowMatrix,
  targets: ProbeTargets,
  lambdas: { lesion: number; location: number },
  opts: FitOptions = {},
): Promise<ProbeFit> {
  const o = { ...DEFAULTS, ...opts };
  if (targets.rows !== x.rows)
    throw new Error(`fitLinearHeads: ${targets.rows} target rows for ${x.rows} feature rows`);
  for (const [k, v] of Object.entries(lambdas))
    if (!(v >= 0 && Number.isFinite(v)))
      throw new DermtlError(`linear probe: the ${k} lambda must be a number >= 0, got ${v}`);
  const setup = setUpProblems(x.dim, targets, lambdas, o.memory, opts.init);
  const own = opts.preconditioner === undefined && setup.problems.length > 0 ? await Preconditioner.create(x) : null;
  const solver = new Lockstep(x, setup.problems, opts.preconditioner ?? own);
  try {
    await solver.run(o.tolerance, o.maxIterations);
  } finally {
    await own?.release();
  }
  const heads = setup.collect();
  const problems = [
    ...setup.fixedReports,
    ...setup.problems.map((p) => ({
      name: p.name,
      fixed: false,
      iterations: p.iterations,
      converged: p.converged,
      gradient: maxAbs(p.grad),
    })),
  ];
  return {
    heads,
    lambdas: { ...lambdas },
    iterations: solver.iterations,
    products: solver.products,
    productSeconds: solver.productSeconds,
    converged: problems.every((p) => p.converged),
    problems,
  };
}

/** Probabilities of rows of standardised features: lesion [rows, P] (sigmoid), location [rows, K] (softmax). */
export async function predictLinearHeads(
  x: RowMatrix,
  heads: LinearHeads,
): Promise<{ lesion: Float64Array; location: Float64Array }> {
  const P = heads.lesion.b.length;
  const seen = heads.location.classes.length;
  const C = P + seen;
  const rows = x.rows;
  const z =
    C > 0
      ? await x.times(packColumns(heads.dim, [heads.lesion.w, heads.location.w], [P, seen]), C)
      : new Float32Array(0);
  const lesion = new Float64Array(rows * P);
  const logits = new Float64Array(rows * seen);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < P; c++) lesion[i * P + c] = sigmoid(z[i * C + c] + heads.lesion.b[c]);
    for (let c = 0; c < seen; c++) logits[i * seen + c] = z[i * C + P + c] + heads.location.b[c];
  }
  softmaxRows(logits, seen);
  const K = heads.locationClasses;
  const location = new Float64Array(rows * K);
  if (seen === 0) location.fill(1 / K);
  for (let i = 0; i < rows; i++) heads.location.classes.forEach((k, c) => (location[i * K + k] = logits[i * seen + c]));
  return { lesion, location };
}

// ---------------------------------------------------------------- problems

interface Setup {
  problems: Problem[];
  fixedReports: ProblemReport[];
  /** The heads from the problems' final parameters (and the fixed values). */
  collect: () => LinearHeads;
}

function setUpProblems(
  dim: number,
  t: ProbeTargets,
  lambdas: { lesion: number; location: number },
  memory: number,
  init?: LinearHeads,
): Setup {
  if (init && init.dim !== dim)
    throw new Error(`fitLinearHeads: a warm start of dimension ${init.dim} for features of ${dim}`);
  const P = t.lesionLabels;
  const problems: Problem[] = [];
  const fixedReports: ProblemReport[] = [];
  const lesion = { w: new Float64Array(dim * P), b: new Float64Array(P) };
  const lesionProblems: (Problem | null)[] = [];
  const known = t.lesionKnown.reduce((a, k) => a + (k ? 1 : 0), 0);
  for (let c = 0; c < P; c++) {
    let pos = 0;
    for (let i = 0; i < t.rows; i++) if (t.lesionKnown[i] && t.lesion[i * P + c]) pos++;
    const name = `lesion ${c}`;
    if (pos === 0 || pos === known) {
      // no positive (or no negative) to separate: the optimum bias is -/+ infinity; a smoothed rate stands in
      lesion.b[c] = logit((pos + 0.5) / (known + 1));
      fixedReports.push({ name, fixed: true, iterations: 0, converged: true, gradient: 0 });
      lesionProblems.push(null);
      continue;
    }
    const weight = new Float64Array(t.rows);
    const target = new Float64Array(t.rows);
    for (let i = 0; i < t.rows; i++) {
      weight[i] = t.lesionKnown[i] ? 1 / known : 0;
      target[i] = t.lesion[i * P + c];
    }
    const p = new Problem(name, { kind: 'binary', cols: 1, weight, target }, lambdas.lesion, dim, t.rows, memory);
    if (init) {
      for (let j = 0; j < dim; j++) p.params[j] = init.lesion.w[j * P + c];
      p.params[dim] = init.lesion.b[c];
    } else p.params[dim] = logit(pos / known);
    problems.push(p);
    lesionProblems.push(p);
  }
  const location = setUpLocation(dim, t, lambdas.location, memory, init);
  if (location.problem) problems.push(location.problem);
  else fixedReports.push({ name: 'location', fixed: true, iterations: 0, converged: true, gradient: 0 });
  const collect = (): LinearHeads => {
    lesionProblems.forEach((p, c) => {
      if (!p) return;
      for (let j = 0; j < dim; j++) lesion.w[j * P + c] = p.params[j];
      lesion.b[c] = p.params[dim];
    });
    const lp = location.problem;
    const seen = location.classes.length;
    const w = lp ? Float64Array.from(lp.w) : new Float64Array(dim * seen);
    const b = lp ? Float64Array.from(lp.b) : new Float64Array(seen);
    return { dim, lesion, location: { classes: location.classes, w, b }, locationClasses: t.locationClasses };
  };
  return { problems, fixedReports, collect };
}

function setUpLocation(
  dim: number,
  t: ProbeTargets,
  lambda: number,
  memory: number,
  init?: LinearHeads,
): { classes: number[]; problem: Problem | null } {
  const counts = new Array<number>(t.locationClasses).fill(0);
  for (let i = 0; i < t.rows; i++) {
    const k = t.location[i];
    if (k >= t.locationClasses)
      throw new Error(`fitLinearHeads: location class ${k} of row ${i} is outside 0..${t.locationClasses - 1}`);
    if (k >= 0) counts[k]++;
  }
  const classes = counts.flatMap((n, k) => (n > 0 ? [k] : []));
  // one class seen (or none): nothing to learn, it gets probability 1
  if (classes.length < 2) return { classes, problem: null };
  const index = new Map(classes.map((k, c) => [k, c]));
  const n = counts.reduce((a, b) => a + b, 0);
  const weight = new Float64Array(t.rows);
  const target = new Int32Array(t.rows);
  for (let i = 0; i < t.rows; i++) {
    const c = index.get(t.location[i]);
    weight[i] = c === undefined ? 0 : 1 / n;
    target[i] = c ?? 0;
  }
  const seen = classes.length;
  const p = new Problem('location', { kind: 'softmax', cols: seen, weight, target }, lambda, dim, t.rows, memory);
  const from = init ? new Map(init.location.classes.map((k, c) => [k, c])) : new Map<number, number>();
  const initSeen = init?.location.classes.length ?? 0;
  classes.forEach((k, c) => {
    const ic = from.get(k);
    if (init && ic !== undefined) {
      for (let j = 0; j < dim; j++) p.params[j * seen + c] = init.location.w[j * initSeen + ic];
      p.params[dim * seen + c] = init.location.b[ic];
    } else p.params[dim * seen + c] = Math.log(counts[k] / n);
  });
  return { classes, problem: p };
}

/** [dim, sum cols] float32 from row-major [dim, cols_i] blocks side by side. */
function packColumns(dim: number, blocks: Float64Array[], cols: number[]): Float32Array {
  const C = cols.reduce((a, b) => a + b, 0);
  const m = new Float32Array(dim * C);
  let at = 0;
  blocks.forEach((v, bi) => {
    const k = cols[bi];
    for (let j = 0; j < dim; j++) for (let c = 0; c < k; c++) m[j * C + at + c] = v[j * k + c];
    at += k;
  });
  return m;
}

function logit(p: number): number {
  return Math.log(p / (1 - p));
}
