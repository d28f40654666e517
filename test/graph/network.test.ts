// Whole-network check: a tiny two-head conv net (maxpool, residual add, strided and 1x1 convs, concat, GAP,
// dropout off, a Mul gate, both losses with masks) built on the graph API and differentiated by autodiff,
// against central finite differences of an independent fp64 forward pass written with reference.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, GraphSession, buildTrainingGraph } from '../../src/graph/index.ts';
import * as R from './reference.ts';
import { randomData, paramFeeds } from './helpers.ts';

const N = 3;
const SHAPES: Record<string, number[]> = {
  w1: [4, 3, 3, 3],
  b1: [4],
  w2: [4, 4, 3, 3],
  b2: [4],
  w3: [4, 4, 3, 3],
  b3: [4],
  w4: [6, 4, 3, 3],
  b4: [6],
  ws: [6, 4, 1, 1],
  gate: [1, 12, 1, 1],
  wl: [5, 12],
  bl: [5],
  wloc: [12, 3],
  bloc: [3],
};
const X_SHAPE = [N, 3, 9, 8];
const LESION_T = Float32Array.from({ length: N * 5 }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0));
const LESION_W = Float32Array.of(1, 0, 1); // sample 1 has no lesion labels
const LOCATION = [2, 0, 1];
const LOCATION_W = Float32Array.of(1, 1, 0); // sample 2 has no location label
const LOSS_WEIGHTS = { lesion: 1, location: 0.7 };

const S1 = { strides: [1, 1] as [number, number], pads: [1, 1, 1, 1] as [number, number, number, number] };
const S2 = { strides: [2, 2] as [number, number], pads: [1, 1, 1, 1] as [number, number, number, number] };
const S2_1x1 = { strides: [2, 2] as [number, number], pads: [0, 0, 0, 0] as [number, number, number, number] };

function initParams(): Record<string, Float32Array> {
  return Object.fromEntries(
    Object.entries(SHAPES).map(([k, s], i) => {
      const n = s.reduce((a, b) => a * b, 1);
      const fanIn = s.length === 4 ? s[1] * s[2] * s[3] : s[0];
      const r = Math.sqrt(3 / fanIn); // uniform with variance 1/fanIn
      return [k, k === 'gate' ? randomData(50 + i, n, 0.5, 1.5) : randomData(50 + i, n, -r, r)];
    }),
  );
}

function buildGraph(p: Record<string, Float32Array>): Graph {
  const g = new Graph();
  const P = Object.fromEntries(Object.entries(SHAPES).map(([k, s]) => [k, g.param(k, s, p[k], { trainable: true })]));
  const x = g.input('image', X_SHAPE);
  const c1 = g.relu(g.conv(x, P.w1, P.b1, { pads: 1 }));
  const pooled = g.maxPool(c1, { kernel: 3, strides: 2, pads: 1 });
  const r1 = g.relu(g.conv(pooled, P.w2, P.b2, { pads: 1 }));
  const a = g.relu(g.add(g.conv(r1, P.w3, P.b3, { pads: 1 }), pooled));
  const d1 = g.relu(g.conv(a, P.w4, P.b4, { strides: 2, pads: 1 }));
  const b = g.relu(g.add(d1, g.conv(a, P.ws, undefined, { strides: 2 })));
  const feat = g.mul(g.globalAveragePool(g.concat([b, d1], 1)), P.gate);
  const h = g.dropout(g.flatten(feat), 0.5, 1, { training: false });
  const lesion = g.gemm(h, P.wl, P.bl, { transB: true, name: 'lesionLogits' });
  const location = g.add(g.matMul(h, P.wloc), P.bloc, { name: 'locationLogits' });
  g.sigmoidCrossEntropy(lesion, g.input('lesion', [N, 5]), g.input('lesionWeight', [N]), { name: 'lesionLoss' });
  g.softmaxCrossEntropy(location, g.input('location', [N], 'int64'), g.input('locationWeight', [N]), {
    name: 'locationLoss',
  });
  g.output(lesion);
  return g;
}

/** The same network in fp64 loops; returns both losses. */
function referenceForward(p: Record<string, Float64Array>, x: R.T): { lesion: number; location: number } {
  const T = (k: string) => R.tensor(SHAPES[k], p[k]);
  const relu = (t: R.T) => R.map(t, (v) => Math.max(v, 0));
  const add = (u: R.T, v: R.T) => R.broadcastOp(u, v, (q, r) => q + r);
  const c1 = relu(R.conv2d(x, T('w1'), T('b1'), S1));
  const pooled = R.maxPool(c1, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }).y;
  const r1 = relu(R.conv2d(pooled, T('w2'), T('b2'), S1));
  const a = relu(add(R.conv2d(r1, T('w3'), T('b3'), S1), pooled));
  const d1 = relu(R.conv2d(a, T('w4'), T('b4'), S2));
  const b = relu(add(d1, R.conv2d(a, T('ws'), undefined, S2_1x1)));
  const feat = R.broadcastOp(R.globalAveragePool(R.concat1([b, d1])), T('gate'), (q, r) => q * r);
  const h = R.tensor([N, 12], feat.data);
  const lesion = add(R.matMul(h, R.transpose2d(T('wl'))), T('bl'));
  const location = add(R.matMul(h, T('wloc')), T('bloc'));
  return {
    lesion: R.sigmoidCrossEntropy(lesion, R.tensor([N, 5], LESION_T), R.tensor([N], LESION_W)).loss,
    location: R.softmaxCrossEntropy(location, LOCATION, R.tensor([N], LOCATION_W)).loss,
  };
}

test('tiny two-head network: every weight gradient matches fp64 central differences', async (t) => {
  const init = initParams();
  const image = randomData(
    49,
    X_SHAPE.reduce((a, b) => a * b, 1),
  );
  const g = buildGraph(init);
  const tg = buildTrainingGraph(g, [
    { tensor: g.tensor('lesionLoss'), weight: LOSS_WEIGHTS.lesion },
    { tensor: g.tensor('locationLoss'), weight: LOSS_WEIGHTS.location },
  ]);
  const s = await GraphSession.fromGraph(tg, { training: true });
  const out = await s.run({
    ...paramFeeds(g),
    image,
    lesion: LESION_T,
    lesionWeight: LESION_W,
    location: BigInt64Array.from(LOCATION, BigInt),
    locationWeight: LOCATION_W,
  });
  await s.release();
  assert.deepEqual(
    [...s.outputNames].sort(),
    ['lesionLogits', 'lesionLoss', 'locationLoss', ...Object.keys(SHAPES).map((k) => `grad/${k}`)].sort(),
  );

  const p64 = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, Float64Array.from(v)]));
  const x = R.tensor(X_SHAPE, image);
  const total = () => {
    const l = referenceForward(p64, x);
    return LOSS_WEIGHTS.lesion * l.lesion + LOSS_WEIGHTS.location * l.location;
  };
  const ref0 = referenceForward(p64, x);
  const lossErr = Math.max(
    Math.abs((out.lesionLoss.data as Float32Array)[0] - ref0.lesion) / ref0.lesion,
    Math.abs((out.locationLoss.data as Float32Array)[0] - ref0.location) / ref0.location,
  );
  t.diagnostic(`losses: rel err ${lossErr.toExponential(1)}`);
  assert.ok(lossErr <= 1e-5);

  // Central differences in fp64: h = 1e-6 gives truncation ~h^2 and roundoff ~1e-16/h, both ~1e-10, far
  // below the fp32 error of the ORT gradients (~1e-7 relative). The tolerance 1e-4 (relative to the
  // largest gradient of each tensor) allows fp32 accumulation through ~10 layers; a wrong rule gives O(1).
  const h = 1e-6;
  let worst = 0;
  for (const k of Object.keys(SHAPES)) {
    const fd = new Float64Array(p64[k].length);
    for (let i = 0; i < fd.length; i++) {
      const keep = p64[k][i];
      p64[k][i] = keep + h;
      const up = total();
      p64[k][i] = keep - h;
      const down = total();
      p64[k][i] = keep;
      fd[i] = (up - down) / (2 * h);
    }
    const err = R.relErr(out[`grad/${k}`].data as Float32Array, fd);
    worst = Math.max(worst, err);
    t.diagnostic(
      `grad/${k}: rel err ${err.toExponential(1)} (max |g| ${Math.max(...fd.map(Math.abs)).toExponential(1)})`,
    );
    assert.ok(err <= 1e-4, `grad/${k}: rel err ${err}`);
    assert.ok(
      fd.some((v) => v !== 0),
      `grad/${k} is not trivially zero`,
    );
  }
  t.diagnostic(`worst: ${worst.toExponential(1)}`);
});
