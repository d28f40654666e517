// The leading eigenvectors of a data matrix's second-moment matrix X^T X / rows, for preconditioning the linear
// probe: standardised trunk features are strongly correlated (on derm7pt the top eigenvalue is ~130 where the mean
// is 1), which is what makes plain L-BFGS on them slow. Randomised subspace iteration with the matrix products
// of rowMatrix.ts, then Rayleigh-Ritz (a small symmetric eigenproblem, Jacobi) for the eigenpairs.
import { Rng } from '../util/rng.ts';
import type { RowMatrix } from './rowMatrix.ts';

export interface Subspace {
  /** Orthonormal vectors, [dim, k] row-major: vector a is (v[j * k + a])_j. */
  vectors: Float64Array;
  k: number;
  /** Their Rayleigh quotients (eigenvalue estimates of X^T X / rows), largest first. */
  values: Float64Array;
}

/**
 * The top-k eigenpairs of X^T X / rows, approximately: `passes` rounds of Q <- orth(X^T X Q) from a seeded random
 * start, then the exact eigenpairs of the k x k projection. k is capped at min(dim, rows); when it reaches dim
 * the result is the full eigendecomposition.
 */
export async function principalSubspace(
  x: RowMatrix,
  k: number,
  opts: { passes?: number; seed?: number } = {},
): Promise<Subspace> {
  const dim = x.dim;
  k = Math.max(1, Math.min(k, dim, x.rows));
  const rng = Rng.derive(opts.seed ?? 0, 'principalSubspace');
  // a Gaussian start needs no orthonormalising: X^T X Q is orthonormalised after each pass
  let q: Float64Array = Float64Array.from({ length: dim * k }, () => rng.normal(0, 1));
  let xtxq = new Float64Array(0);
  const passes = Math.max(1, opts.passes ?? 3);
  for (let p = 0; p < passes; p++) {
    if (p > 0) q = orthonormalise(xtxq, dim, k);
    xtxq = Float64Array.from(await x.transposeTimes(await x.times(Float32Array.from(q), k), k));
  }
  if (passes === 1) {
    q = orthonormalise(q, dim, k);
    xtxq = Float64Array.from(await x.transposeTimes(await x.times(Float32Array.from(q), k), k));
  }
  // Rayleigh-Ritz: B = Q^T (X^T X Q) / rows, B = U diag(values) U^T, vectors = Q U
  const b = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    for (let c = a; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += q[j * k + a] * xtxq[j * k + c];
      b[a * k + c] = b[c * k + a] = s / x.rows;
    }
  }
  // the product above is symmetric only up to rounding; the average is what Jacobi expects
  for (let a = 0; a < k; a++)
    for (let c = a + 1; c < k; c++) b[a * k + c] = b[c * k + a] = (b[a * k + c] + b[c * k + a]) / 2;
  const { values, vectors: u } = symmetricEigen(b, k);
  const vectors = new Float64Array(dim * k);
  for (let j = 0; j < dim; j++) {
    for (let a = 0; a < k; a++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += q[j * k + c] * u[c * k + a];
      vectors[j * k + a] = s;
    }
  }
  return { vectors, k, values };
}

/**
 * Modified Gram-Schmidt: orthogonal to ~1e-16 x the columns' condition number, plenty in float64 for the well
 * separated columns of subspace iteration. A column that (nearly) vanishes, as for the null space of a
 * rank-deficient X^T X, is replaced by a unit vector orthogonal to the columns before it: a basis that is not
 * orthonormal would make the preconditioner indefinite.
 */
export function orthonormalise(m: Float64Array, rows: number, cols: number): Float64Array {
  if (cols > rows) throw new Error(`orthonormalise: ${cols} columns of length ${rows}`);
  // on contiguous columns: the strided row-major walk is several times slower
  const q = Array.from({ length: cols }, (_, a) => Float64Array.from({ length: rows }, (_, j) => m[j * cols + a]));
  for (let a = 0; a < cols; a++) {
    const qa = q[a];
    const before = Math.sqrt(dotOf(qa, qa));
    let norm = project(qa, q, a);
    if (!(norm > 1e-10 * before)) {
      // the unit vector with the largest part outside the span so far (one exists: a < rows)
      let best = -1;
      for (let j = 0; j < rows && best < 0; j++) {
        qa.fill(0);
        qa[(a + j) % rows] = 1;
        norm = project(qa, q, a);
        if (norm > 0.1 / Math.sqrt(rows)) best = j;
      }
      if (best < 0) throw new Error('orthonormalise: no unit vector outside the span (a bug)');
    }
    for (let j = 0; j < rows; j++) qa[j] /= norm;
  }
  const out = new Float64Array(rows * cols);
  q.forEach((qa, a) => qa.forEach((v, j) => (out[j * cols + a] = v)));
  return out;
}

/** Removes from v its components along q[0..n-1] (twice: "twice is enough"); returns the remaining norm. */
function project(v: Float64Array, q: Float64Array[], n: number): number {
  for (let pass = 0; pass < 2; pass++) {
    for (let b = 0; b < n; b++) {
      const s = dotOf(v, q[b]);
      const qb = q[b];
      for (let j = 0; j < v.length; j++) v[j] -= s * qb[j];
    }
  }
  return Math.sqrt(dotOf(v, v));
}

function dotOf(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * b[j];
  return s;
}

/**
 * Eigenvalues (descending) and orthonormal eigenvectors (columns of [n, n] row-major) of a symmetric matrix, by
 * cyclic Jacobi rotations: simple and accurate, and fast enough for the k <= a few hundred used here.
 */
export function symmetricEigen(m: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] ** 2;
      for (let j = i + 1; j < n; j++) off += a[i * n + j] ** 2;
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n; p++) for (let r = p + 1; r < n; r++) rotate(a, v, n, p, r);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((i, c) => {
    for (let r = 0; r < n; r++) vectors[r * n + c] = v[r * n + i];
  });
  return { values, vectors };
}

/** One Jacobi rotation zeroing a[p][r] (and a[r][p]); v accumulates the rotations. */
function rotate(a: Float64Array, v: Float64Array, n: number, p: number, r: number): void {
  const apr = a[p * n + r];
  if (apr === 0) return;
  const theta = (a[r * n + r] - a[p * n + p]) / (2 * apr);
  const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  for (let k = 0; k < n; k++) {
    const akp = a[k * n + p];
    const akr = a[k * n + r];
    a[k * n + p] = c * akp - s * akr;
    a[k * n + r] = s * akp + c * akr;
  }
  for (let k = 0; k < n; k++) {
    const apk = a[p * n + k];
    const ark = a[r * n + k];
    a[p * n + k] = c * apk - s * ark;
    a[r * n + k] = s * apk + c * ark;
  }
  for (let k = 0; k < n; k++) {
    const vkp = v[k * n + p];
    const vkr = v[k * n + r];
    v[k * n + p] = c * vkp - s * vkr;
    v[k * n + r] = s * vkp + c * vkr;
  }
}
