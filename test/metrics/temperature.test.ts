import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binaryNll,
  fitTemperature,
  softmaxNll,
  viewAveragedProbs,
  type ViewLogits,
} from '../../src/metrics/temperature.ts';
import { Rng } from '../../src/util/rng.ts';

/** Labels drawn from sigmoid(z / T0) while the model reports sigmoid(z): the fit must find T0. */
function overconfident(t0: number, n: number, seed: number): { z: ViewLogits; y: boolean[] } {
  const rng = Rng.seeded(seed);
  const data = new Float32Array(n);
  const y: boolean[] = [];
  for (let i = 0; i < n; i++) {
    data[i] = rng.normal(0, 4);
    y.push(rng.uniform(0, 1) < 1 / (1 + Math.exp(-data[i] / t0)));
  }
  return { z: { data, images: n, views: 1, classes: 1 }, y };
}

test('temperature scaling recovers the temperature of over- and under-confident scores', () => {
  for (const t0 of [2.5, 0.6]) {
    const { z, y } = overconfident(t0, 20000, 7);
    const fit = fitTemperature(binaryNll(z, [0], [0], (i) => y[i]));
    assert.ok(Math.abs(fit.temperature - t0) / t0 < 0.08, `T0 ${t0}: fitted ${fit.temperature}`);
    assert.ok(fit.nllAfter < fit.nllBefore);
  }
});

test('softmax temperature: the minimiser of the view-averaged NLL (checked against a fine grid)', () => {
  const rng = Rng.seeded(2);
  const images = 200;
  const views = 3;
  const classes = 4;
  const data = Float32Array.from({ length: images * views * classes }, () => rng.normal(0, 3));
  const truth = Array.from({ length: images }, () => rng.int(0, classes - 1));
  const z = { data, images, views, classes };
  const nll = softmaxNll(z, [0, 1, 2], truth);
  const fit = fitTemperature(nll);
  let best = Infinity;
  for (let t = 0.05; t < 20; t *= 1.001) best = Math.min(best, nll(t));
  assert.ok(fit.nllAfter <= best + 1e-9, `${fit.nllAfter} vs grid ${best}`);
  assert.equal(fit.nllBefore, nll(1));
  // probabilities at T: each row sums to 1, and T = 1 is the plain view mean of softmaxes
  const p = viewAveragedProbs(z, [0, 1, 2], 'softmax', fit.temperature);
  for (const row of p) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12);
});
