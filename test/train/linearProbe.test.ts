// The linear probe's solver against a plain float64 reference: the same optimum (weights, biases, probabilities),
// a vanishing float64 gradient there, shrinking weights as lambda grows, finite weights on separable data, masked
// rows left out, and the degenerate heads (a label without positives, a single location) without NaN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fitLinearHeads,
  fitStandardiser,
  predictLinearHeads,
  standardise,
  type ProbeTargets,
} from '../../src/train/linearProbe.ts';
import { OrtRowMatrix } from '../../src/train/rowMatrix.ts';
import {
  binaryObjective,
  curvatureBound,
  minimise,
  randomProblem,
  softmaxObjective,
  type Dense,
} from './linearProbeReference.ts';

/** The problem's features as float32 (what the probe sees) and the same values as float64 for the reference. */
function asFloat32(d: Dense): { x32: Float32Array; d: Dense } {
  const x32 = Float32Array.from(d.x);
  return { x32, d: { ...d, x: Float64Array.from(x32) } };
}

async function fit(
  x32: Float32Array,
  d: Dense,
  t: ProbeTargets,
  lambdas: { lesion: number; location: number },
  opts = {},
) {
  const m = new OrtRowMatrix(x32, d.rows, d.dim, 1);
  try {
    return await fitLinearHeads(m, t, lambdas, opts);
  } finally {
    await m.release();
  }
}

function maxAbs(v: ArrayLike<number>): number {
  return Array.from(v).reduce((a, x) => Math.max(a, Math.abs(x)), 0);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

test('the fitted heads are the float64 reference optimum, with a vanishing float64 gradient there', async () => {
  const p = randomProblem(1, 150, 6, 3, 4);
  const { x32, d } = asFloat32(p.d);
  const lambdas = { lesion: 0.05, location: 0.02 };
  const r = await fit(x32, d, p.t, lambdas, { tolerance: 1e-7 });
  assert.equal(r.converged, true);
  assert.ok(r.iterations < 100, `${r.iterations} iterations`);
  const { heads } = r;
  const L = curvatureBound(d, lambdas.lesion, 'binary');
  for (let c = 0; c < 3; c++) {
    const mine = Float64Array.from({ length: d.dim + 1 }, (_, j) =>
      j < d.dim ? heads.lesion.w[j * 3 + c] : heads.lesion.b[c],
    );
    const obj = (q: Float64Array) => binaryObjective(d, p.t, c, lambdas.lesion, q);
    assert.ok(maxAbs(obj(mine).g) < 1e-5, `label ${c}: float64 gradient ${maxAbs(obj(mine).g)} at the probe's optimum`);
    const ref = minimise(obj, d.dim + 1, L, 5000);
    assert.ok(maxAbs(obj(ref).g) < 1e-9, 'the reference converged');
    assert.ok(maxDiff(mine, ref) < 1e-4, `label ${c}: ${maxDiff(mine, ref)}`);
  }
  // softmax: W is identified (penalised); the biases only up to a common constant, so compare probabilities
  assert.deepEqual(heads.location.classes, [0, 1, 2, 3]);
  const K = 4;
  const mine = Float64Array.from([...heads.location.w, ...heads.location.b]);
  const obj = (q: Float64Array) => softmaxObjective(d, p.t, lambdas.location, q);
  assert.ok(maxAbs(obj(mine).g) < 1e-5, `softmax float64 gradient ${maxAbs(obj(mine).g)}`);
  const ref = minimise(obj, (d.dim + 1) * K, curvatureBound(d, lambdas.location, 'softmax'), 5000);
  assert.ok(maxAbs(obj(ref).g) < 1e-8, `the reference converged (${maxAbs(obj(ref).g)})`);
  assert.ok(maxDiff(heads.location.w, ref.subarray(0, d.dim * K)) < 1e-4);
  const m = new OrtRowMatrix(x32, d.rows, d.dim, 1);
  const probs = await predictLinearHeads(m, heads);
  await m.release();
  for (let i = 0; i < d.rows; i++) {
    const z = Array.from(
      { length: K },
      (_, k) =>
        ref[d.dim * K + k] +
        Array.from({ length: d.dim }, (_, j) => d.x[i * d.dim + j] * ref[j * K + k]).reduce((a, b) => a + b, 0),
    );
    const e = z.map((v) => Math.exp(v - Math.max(...z)));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, k) => assert.ok(Math.abs(probs.location[i * K + k] - v / s) < 1e-4, `row ${i} class ${k}`));
    const rowSum = Array.from(probs.location.subarray(i * K, (i + 1) * K)).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(rowSum - 1) < 1e-12);
  }
});

test('weights shrink as lambda grows; a warm start reaches the same optimum', async () => {
  const p = randomProblem(2, 120, 5, 2, 3);
  const { x32, d } = asFloat32(p.d);
  let previous = Infinity;
  let warm: Awaited<ReturnType<typeof fit>> | undefined;
  for (const lambda of [1e-3, 1e-2, 1e-1, 1]) {
    const r = await fit(x32, d, p.t, { lesion: lambda, location: lambda }, { tolerance: 1e-7 });
    const norm = Math.hypot(...r.heads.lesion.w, ...r.heads.location.w);
    assert.ok(norm < previous, `||W|| ${norm} at lambda ${lambda} after ${previous}`);
    previous = norm;
    if (lambda === 1e-2) warm = r;
  }
  const cold = await fit(x32, d, p.t, { lesion: 0.1, location: 0.1 }, { tolerance: 1e-7 });
  const fromWarm = await fit(x32, d, p.t, { lesion: 0.1, location: 0.1 }, { tolerance: 1e-7, init: warm!.heads });
  assert.ok(maxDiff(cold.heads.lesion.w, fromWarm.heads.lesion.w) < 1e-5);
  assert.ok(maxDiff(cold.heads.location.w, fromWarm.heads.location.w) < 1e-5);
});

test('perfectly separable data: finite weights, the right side of 0.5 for every row', async () => {
  const rows = 40;
  const x = new Float32Array(rows * 2);
  const t: ProbeTargets = {
    rows,
    lesionLabels: 1,
    lesion: new Float32Array(rows),
    lesionKnown: new Uint8Array(rows).fill(1),
    locationClasses: 2,
    location: new Int32Array(rows),
  };
  for (let i = 0; i < rows; i++) {
    const side = i % 2;
    x[i * 2] = side ? 1 + (i % 5) / 10 : -1 - (i % 7) / 10;
    x[i * 2 + 1] = ((i * 7) % 11) / 11 - 0.5;
    t.lesion[i] = side;
    t.location[i] = side;
  }
  const m = new OrtRowMatrix(x, rows, 2, 1);
  const r = await fitLinearHeads(m, t, { lesion: 1e-3, location: 1e-3 });
  const probs = await predictLinearHeads(m, r.heads);
  await m.release();
  assert.equal(r.converged, true);
  assert.ok([...r.heads.lesion.w, ...r.heads.location.w].every(Number.isFinite));
  for (let i = 0; i < rows; i++) {
    assert.equal(probs.lesion[i] > 0.5, i % 2 === 1, `row ${i}: ${probs.lesion[i]}`);
    assert.equal(probs.location[i * 2 + 1] > 0.5, i % 2 === 1);
  }
});

test('rows without any lesion label are left out of the lesion loss, not taken as negatives', async () => {
  const p = randomProblem(3, 100, 4, 2, 3);
  const { x32, d } = asFloat32(p.d);
  const base = await fit(x32, d, p.t, { lesion: 0.1, location: 0.1 }, { tolerance: 1e-7 });
  // append 30 rows without lesion labels whose features would pull every lesion score down if they counted
  const extra = 30;
  const rows = d.rows + extra;
  const x2 = new Float32Array(rows * d.dim);
  x2.set(x32);
  for (let i = d.rows; i < rows; i++) for (let j = 0; j < d.dim; j++) x2[i * d.dim + j] = 3;
  const t2: ProbeTargets = {
    rows,
    lesionLabels: 2,
    lesion: new Float32Array(rows * 2),
    lesionKnown: new Uint8Array(rows),
    locationClasses: 3,
    location: new Int32Array(rows).fill(-1),
  };
  t2.lesion.set(p.t.lesion);
  t2.lesionKnown.set(p.t.lesionKnown);
  t2.location.set(p.t.location);
  const more = await fit(
    x2,
    { x: Float64Array.from(x2), rows, dim: d.dim },
    t2,
    { lesion: 0.1, location: 0.1 },
    { tolerance: 1e-7 },
  );
  assert.ok(maxDiff(base.heads.lesion.w, more.heads.lesion.w) < 1e-5);
  assert.ok(maxDiff(base.heads.lesion.b, more.heads.lesion.b) < 1e-5);
  // the location head ignores rows whose location is unknown (-1) the same way
  assert.ok(maxDiff(base.heads.location.w, more.heads.location.w) < 1e-5);
});

test('degenerate heads: a label without positives predicts low from its bias, a single seen location gets probability 1', async () => {
  const rows = 20;
  const x = Float32Array.from({ length: rows * 3 }, (_, i) => Math.sin(i));
  const t: ProbeTargets = {
    rows,
    lesionLabels: 3,
    lesion: new Float32Array(rows * 3),
    lesionKnown: new Uint8Array(rows).fill(1),
    locationClasses: 4,
    location: new Int32Array(rows).fill(2),
  };
  for (let i = 0; i < rows; i++) {
    t.lesion[i * 3] = i % 3 === 0 ? 1 : 0; // a learnable label
    t.lesion[i * 3 + 2] = 1; // every row: no negative
  } // label 1: no positive
  const m = new OrtRowMatrix(x, rows, 3, 1);
  const r = await fitLinearHeads(m, t, { lesion: 0.1, location: 0.1 });
  const probs = await predictLinearHeads(m, r.heads);
  await m.release();
  assert.deepEqual(
    r.problems.map((p) => [p.name, p.fixed]),
    [
      ['lesion 1', true],
      ['lesion 2', true],
      ['location', true],
      ['lesion 0', false],
    ],
  );
  assert.ok([...probs.lesion, ...probs.location].every(Number.isFinite));
  for (let i = 0; i < rows; i++) {
    assert.ok(Math.abs(probs.lesion[i * 3 + 1] - 0.5 / 21) < 1e-12, 'no positive: the smoothed rate 0.5 / (n + 1)');
    assert.ok(Math.abs(probs.lesion[i * 3 + 2] - 20.5 / 21) < 1e-12);
    assert.deepEqual(Array.from(probs.location.subarray(i * 4, i * 4 + 4)), [0, 0, 1, 0]);
  }
  assert.deepEqual(
    Array.from(r.heads.lesion.w).filter((_, j) => j % 3 !== 0),
    new Array(6).fill(0),
  );
});

test('a location class missing from training gets probability 0; the others are fitted', async () => {
  const p = randomProblem(4, 90, 4, 1, 3);
  const location = p.t.location.map((k) => (k === 1 ? 0 : k));
  const m = new OrtRowMatrix(Float32Array.from(p.d.x), p.d.rows, p.d.dim, 1);
  const r = await fitLinearHeads(m, { ...p.t, location }, { lesion: 0.1, location: 0.1 });
  const probs = await predictLinearHeads(m, r.heads);
  await m.release();
  assert.deepEqual(r.heads.location.classes, [0, 2]);
  for (let i = 0; i < p.d.rows; i++) {
    assert.equal(probs.location[i * 3 + 1], 0);
    assert.ok(Math.abs(probs.location[i * 3] + probs.location[i * 3 + 2] - 1) < 1e-12);
  }
});

test("standardisation uses the training rows' mean and std; a constant feature becomes 0", () => {
  const x = Float32Array.from([1, 5, 10, 3, 5, 20, 5, 5, 30]);
  const s = fitStandardiser(x, 3, 3);
  assert.deepEqual(Array.from(s.mean), [3, 5, 20]);
  assert.ok(Math.abs(s.scale[0] - 1 / Math.sqrt(8 / 3)) < 1e-12);
  assert.equal(s.scale[1], 1);
  const z = standardise(x, s);
  assert.deepEqual(
    Array.from(z).filter((_, i) => i % 3 === 1),
    [0, 0, 0],
  );
  assert.ok(Math.abs(z[0] + z[3] + z[6]) < 1e-6);
  // other rows use the training statistics
  assert.deepEqual(Array.from(standardise(Float32Array.from([3, 7, 20]), s)), [0, 2, 0]);
});

test('bad input: NaN features and negative lambdas are user errors', async () => {
  assert.throws(() => new OrtRowMatrix(Float32Array.from([1, Number.NaN]), 1, 2), /row 0, feature 1 is NaN/);
  const p = randomProblem(5, 10, 2, 1, 2);
  const m = new OrtRowMatrix(Float32Array.from(p.d.x), 10, 2, 1);
  await assert.rejects(
    fitLinearHeads(m, p.t, { lesion: -1, location: 0.1 }),
    /the lesion lambda must be a number >= 0, got -1/,
  );
  await m.release();
});

test('the preconditioner changes the path to the optimum, not the optimum; it needs far fewer iterations on correlated features', async () => {
  const p = randomProblem(6, 300, 40, 3, 4);
  // strongly correlated features: every column gets a large shared component
  const x = new Float32Array(p.d.rows * p.d.dim);
  for (let i = 0; i < p.d.rows; i++) {
    const shared = p.d.x[i * p.d.dim];
    for (let j = 0; j < p.d.dim; j++) x[i * p.d.dim + j] = p.d.x[i * p.d.dim + j] + 5 * shared;
  }
  const std = standardise(x, fitStandardiser(x, p.d.rows, p.d.dim));
  const d = { x: Float64Array.from(std), rows: p.d.rows, dim: p.d.dim };
  const lambdas = { lesion: 1e-3, location: 1e-3 };
  const plain = await fit(std, d, p.t, lambdas, { preconditioner: null, tolerance: 1e-6 });
  const pre = await fit(std, d, p.t, lambdas, { tolerance: 1e-6 });
  assert.equal(plain.converged && pre.converged, true);
  assert.ok(
    maxDiff(plain.heads.lesion.w, pre.heads.lesion.w) < 1e-3,
    `${maxDiff(plain.heads.lesion.w, pre.heads.lesion.w)}`,
  );
  assert.ok(maxDiff(plain.heads.location.w, pre.heads.location.w) < 1e-3);
  assert.ok(
    pre.iterations < plain.iterations,
    `${pre.iterations} preconditioned vs ${plain.iterations} plain iterations`,
  );
});

test('rank-deficient features (a constant and a duplicated feature) converge as fast: the preconditioner stays positive definite', async () => {
  const p = randomProblem(8, 200, 8, 3, 3);
  const dim = 10;
  const x = new Float32Array(p.d.rows * dim);
  for (let i = 0; i < p.d.rows; i++) {
    for (let j = 0; j < 8; j++) x[i * dim + j] = p.d.x[i * 8 + j];
    x[i * dim + 8] = 2; // constant: standardised to 0
    x[i * dim + 9] = p.d.x[i * 8 + 1]; // a copy of feature 1
  }
  const std = standardise(x, fitStandardiser(x, p.d.rows, dim));
  const r = await fit(
    std,
    { x: Float64Array.from(std), rows: p.d.rows, dim },
    p.t,
    { lesion: 1e-3, location: 1e-3 },
    { tolerance: 1e-7 },
  );
  assert.equal(r.converged, true);
  assert.ok(r.iterations < 60, `${r.iterations} iterations`);
  // the duplicated features share the weight (the L2 optimum), the constant one gets none
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(r.heads.lesion.w[1 * 3 + c] - r.heads.lesion.w[9 * 3 + c]) < 1e-4);
    assert.ok(Math.abs(r.heads.lesion.w[8 * 3 + c]) < 1e-6);
  }
});
