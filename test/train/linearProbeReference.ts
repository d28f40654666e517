// A plain float64 reference for the linear probe tests (not a test): the same objectives written out directly,
// their gradients, and a slow but sure minimiser (gradient descent with a fixed 1/L step for many iterations).
import type { ProbeTargets } from '../../src/train/linearProbe.ts';
import { Rng } from '../../src/util/rng.ts';

export interface Dense {
  x: Float64Array;
  rows: number;
  dim: number;
}

/** Objective and gradient of one binary problem (label c) at [w (dim), b]. */
export function binaryObjective(
  d: Dense,
  t: ProbeTargets,
  c: number,
  lambda: number,
  p: Float64Array,
): { f: number; g: Float64Array } {
  const P = t.lesionLabels;
  const known = t.lesionKnown.reduce((a, k) => a + k, 0);
  const g = new Float64Array(d.dim + 1);
  let f = 0;
  for (let i = 0; i < d.rows; i++) {
    if (!t.lesionKnown[i]) continue;
    let z = p[d.dim];
    for (let j = 0; j < d.dim; j++) z += d.x[i * d.dim + j] * p[j];
    const y = t.lesion[i * P + c];
    f += (Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0) - y * z) / known;
    const r = (1 / (1 + Math.exp(-z)) - y) / known;
    for (let j = 0; j < d.dim; j++) g[j] += r * d.x[i * d.dim + j];
    g[d.dim] += r;
  }
  for (let j = 0; j < d.dim; j++) {
    f += (lambda / 2) * p[j] * p[j];
    g[j] += lambda * p[j];
  }
  return { f, g };
}

/** Objective and gradient of the softmax problem over all K classes at [W (dim x K row-major), b (K)]. */
export function softmaxObjective(
  d: Dense,
  t: ProbeTargets,
  lambda: number,
  p: Float64Array,
): { f: number; g: Float64Array } {
  const K = t.locationClasses;
  const g = new Float64Array((d.dim + 1) * K);
  const n = Array.from(t.location).filter((k) => k >= 0).length;
  let f = 0;
  for (let i = 0; i < d.rows; i++) {
    const y = t.location[i];
    if (y < 0) continue;
    const z = Array.from({ length: K }, (_, k) => {
      let s = p[d.dim * K + k];
      for (let j = 0; j < d.dim; j++) s += d.x[i * d.dim + j] * p[j * K + k];
      return s;
    });
    const max = Math.max(...z);
    const lse = max + Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0));
    f += (lse - z[y]) / n;
    for (let k = 0; k < K; k++) {
      const r = (Math.exp(z[k] - lse) - (k === y ? 1 : 0)) / n;
      for (let j = 0; j < d.dim; j++) g[j * K + k] += r * d.x[i * d.dim + j];
      g[d.dim * K + k] += r;
    }
  }
  for (let j = 0; j < d.dim * K; j++) {
    f += (lambda / 2) * p[j] * p[j];
    g[j] += lambda * p[j];
  }
  return { f, g };
}

/** Gradient descent with step 1/L (L from the features' scale) for `iterations` steps. */
export function minimise(
  obj: (p: Float64Array) => { f: number; g: Float64Array },
  n: number,
  L: number,
  iterations: number,
): Float64Array {
  const p = new Float64Array(n);
  for (let it = 0; it < iterations; it++) {
    const { g } = obj(p);
    for (let j = 0; j < n; j++) p[j] -= g[j] / L;
  }
  return p;
}

/** An upper bound of the objective's curvature: 1/4 (binary) or 1/2 (softmax) of max (row norm^2 + 1), plus lambda. */
export function curvatureBound(d: Dense, lambda: number, kind: 'binary' | 'softmax'): number {
  let max = 0;
  for (let i = 0; i < d.rows; i++) {
    let s = 1;
    for (let j = 0; j < d.dim; j++) s += d.x[i * d.dim + j] ** 2;
    max = Math.max(max, s);
  }
  return (kind === 'binary' ? 0.25 : 0.5) * max + lambda;
}

/**
 * A small random problem: rows of standard-normal features; lesion labels from noisy linear scores (label 0 of
 * every row, some rows without any lesion label); locations from the argmax of noisy linear scores.
 */
export function randomProblem(
  seed: number,
  rows: number,
  dim: number,
  P: number,
  K: number,
): { d: Dense; t: ProbeTargets } {
  const rng = Rng.derive(seed, 'probe');
  const x = Float64Array.from({ length: rows * dim }, () => rng.normal(0, 1));
  const u = Float64Array.from({ length: dim * (P + K) }, () => rng.normal(0, 1));
  const lesion = new Float32Array(rows * P);
  const lesionKnown = new Uint8Array(rows);
  const location = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const score = (c: number) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += x[i * dim + j] * u[j * (P + K) + c];
      return s + rng.normal(0, 1);
    };
    for (let c = 0; c < P; c++) lesion[i * P + c] = score(c) > 0.5 ? 1 : 0;
    lesionKnown[i] = lesion.subarray(i * P, (i + 1) * P).some((v) => v > 0) ? 1 : 0;
    const scores = Array.from({ length: K }, (_, k) => score(P + k));
    location[i] = scores.indexOf(Math.max(...scores));
  }
  return { d: { x, rows, dim }, t: { rows, lesionLabels: P, lesion, lesionKnown, locationClasses: K, location } };
}
