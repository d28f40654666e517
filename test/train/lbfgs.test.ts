// The solver's building blocks: the convex line search, the L-BFGS two-loop recursion, and the principal subspace
// behind the preconditioner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LbfgsHistory, lineSearch } from '../../src/train/lbfgs.ts';
import { OrtRowMatrix } from '../../src/train/rowMatrix.ts';
import { orthonormalise, principalSubspace, symmetricEigen } from '../../src/train/spectrum.ts';
import { Rng } from '../../src/util/rng.ts';

test('lineSearch: the exact minimiser of a quadratic in two evaluations; strong Wolfe on a convex function', () => {
  // phi(t) = (t - 3)^2: t = 1 fails the curvature condition, the secant step lands on 3
  const quad = (t: number) => ({ f: (t - 3) ** 2, d: 2 * (t - 3) });
  const s = lineSearch(quad, 9, -6)!;
  assert.ok(s.evaluations <= 3, `${s.evaluations} evaluations`); // 1, then expanded to 4, then the secant on phi' gives 3
  assert.ok(Math.abs(s.t - 3) < 1e-12, `t = ${s.t}`);
  // a steep convex function whose minimum is at t = 0.001: backtracks there, and the result meets strong Wolfe
  const f = (t: number) => ({
    f: Math.exp(1000 * (t - 0.001)) - 1000 * t,
    d: 1000 * Math.exp(1000 * (t - 0.001)) - 1000,
  });
  const f0 = f(0);
  const r = lineSearch(f, f0.f, f0.d)!;
  assert.ok(r.f <= f0.f + 1e-4 * r.t * f0.d);
  assert.ok(Math.abs(r.d) <= 0.1 * Math.abs(f0.d));
  // not a descent direction: no step
  assert.equal(lineSearch(quad, 9, 6), null);
});

test('LbfgsHistory: the direction meets the newest secant equation and descends; bad pairs are dropped', () => {
  // f(x) = 1/2 x^T A x with A = diag(1, 10, 100): y = A s exactly
  const A = [1, 10, 100];
  const h = new LbfgsHistory(5);
  const pairs = [
    [1, 0.1, 0.1],
    [0.2, 1, 0.1],
    [0.1, 0.3, 1],
  ].map((v) => Float64Array.from(v));
  for (const s of pairs)
    assert.equal(
      h.push(
        s,
        s.map((v, j) => A[j] * v),
      ),
      true,
    );
  const last = pairs[2];
  // H y = s for the newest pair, so the direction for gradient y is -s
  const d = h.direction(last.map((v, j) => A[j] * v));
  d.forEach((v, j) => assert.ok(Math.abs(v + last[j]) < 1e-12, `d[${j}] = ${v}`));
  const g = Float64Array.from([1, 20, 300]);
  const dg = h.direction(g).reduce((a, v, j) => a + v * g[j], 0);
  assert.ok(dg < 0, 'a descent direction');
  // a pair without positive curvature is dropped
  assert.equal(h.push(Float64Array.from([1, 0, 0]), Float64Array.from([-1, 0, 0])), false);
  assert.equal(h.size, 3);
  // without history: steepest descent
  assert.deepEqual(Array.from(new LbfgsHistory().direction(g)), [-1, -20, -300]);
});

test('principalSubspace: the top eigenpairs of X^T X / rows; the full decomposition when k reaches the dimension', async () => {
  const rng = Rng.derive(7, 'spectrum');
  const rows = 400;
  const dim = 12;
  const scales = Array.from({ length: dim }, (_, j) => 2 ** (-j / 2)); // well-separated variances, 1 down to 0.016
  const x = Float32Array.from({ length: rows * dim }, (_, i) => rng.normal(0, 1) * scales[i % dim]);
  const m = new OrtRowMatrix(x, rows, dim, 1);
  // the exact second-moment matrix and its eigenvalues (Jacobi)
  const s = new Float64Array(dim * dim);
  for (let i = 0; i < rows; i++)
    for (let a = 0; a < dim; a++)
      for (let b = 0; b < dim; b++) s[a * dim + b] += (x[i * dim + a] * x[i * dim + b]) / rows;
  const exact = symmetricEigen(s, dim);
  const full = await principalSubspace(m, 50, { passes: 1 });
  assert.equal(full.k, dim);
  full.values.forEach((v, a) => assert.ok(Math.abs(v - exact.values[a]) < 1e-5 * exact.values[0], `value ${a}`));
  const top = await principalSubspace(m, 3, { passes: 6 });
  top.values.forEach((v, a) =>
    assert.ok(Math.abs(v - exact.values[a]) < 0.02 * exact.values[a], `top value ${a}: ${v} vs ${exact.values[a]}`),
  );
  // orthonormal vectors
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 3; b++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += top.vectors[j * 3 + a] * top.vectors[j * 3 + b];
      assert.ok(Math.abs(d - (a === b ? 1 : 0)) < 1e-9);
    }
  }
  await m.release();
});

test('symmetricEigen and orthonormalise on small matrices', () => {
  const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]), 3);
  assert.deepEqual(
    Array.from(values, (v) => Number(v.toFixed(12))),
    [5, 3, 1],
  );
  assert.ok(Math.abs(Math.abs(vectors[2 * 3 + 0]) - 1) < 1e-12, 'eigenvector of 5 is e3');
  // rank-deficient inputs still give orthonormal columns: parallel columns, a zero column, and a vanished column
  // whose own unit vector (e_1) lies in the span of the columns before it
  for (const m of [
    [1, 2, 0, 1, 2, 0, 1, 2, 0],
    [0, 0, 0, 1, 2, 0, 0, 0, 0],
  ]) {
    const q = orthonormalise(Float64Array.from(m), 3, 3);
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) {
        const d = [0, 1, 2].reduce((s, j) => s + q[j * 3 + a] * q[j * 3 + b], 0);
        assert.ok(Math.abs(d - (a === b ? 1 : 0)) < 1e-12, `${m}: columns ${a}, ${b}: ${d}`);
      }
    }
  }
});
