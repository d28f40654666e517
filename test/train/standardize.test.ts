// Feature standardisation: statistics, and folding it into the first head layer gives the same outputs on raw
// features as the unfolded layer on standardised ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { featureStats, foldStandardization, standardizeInPlace } from '../../src/train/standardize.ts';
import { Rng } from '../../src/util/rng.ts';

const D = 6;
const rng = Rng.seeded(3);
const rows = Array.from({ length: 50 }, () =>
  Float32Array.from({ length: D }, (_, d) => (d === 5 ? 2 : rng.uniform(0, 10 * (d + 1)))),
);

test('featureStats: per-dimension mean and 1/std; a constant dimension keeps scale 1', () => {
  const s = featureStats(rows, D);
  const x = standardizeInPlace(Float32Array.from(rows.flatMap((r) => [...r])), s);
  for (let d = 0; d < D - 1; d++) {
    const col = rows.map((_, i) => x[i * D + d]);
    const mean = col.reduce((a, b) => a + b, 0) / col.length;
    const variance = col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length;
    assert.ok(Math.abs(mean) < 1e-5 && Math.abs(variance - 1) < 1e-4, `dim ${d}: mean ${mean}, var ${variance}`);
  }
  assert.equal(s.invStd[5], 1);
  assert.ok(Math.abs(s.mean[5] - 2) < 1e-6);
});

function linear(w: Float32Array, b: Float32Array, x: Float32Array): number[] {
  return Array.from(b, (bo, o) => bo + x.reduce((acc, xd, d) => acc + w[o * D + d] * xd, 0));
}

for (const layers of [['heads/shared'], ['heads/lesion', 'heads/location']]) {
  test(`foldStandardization into ${layers.join(' and ')}: same outputs on raw features`, () => {
    const s = featureStats(rows, D);
    const params = new Map<string, Float32Array>();
    for (const l of layers) {
      params.set(
        `${l}/weight`,
        Float32Array.from({ length: 3 * D }, () => rng.normal(0, 1)),
      );
      params.set(
        `${l}/bias`,
        Float32Array.from({ length: 3 }, () => rng.normal(0, 1)),
      );
    }
    if (layers.length === 1) params.set('heads/lesion/weight', new Float32Array(4 * 3).fill(0.5)); // a later layer: untouched
    const folded = foldStandardization(params, s);
    for (const raw of rows.slice(0, 5)) {
      const std = standardizeInPlace(raw.slice(), s);
      for (const l of layers) {
        const want = linear(params.get(`${l}/weight`)!, params.get(`${l}/bias`)!, std);
        const got = linear(folded.get(`${l}/weight`)!, folded.get(`${l}/bias`)!, raw);
        want.forEach((v, o) =>
          assert.ok(Math.abs(v - got[o]) < 1e-3 * (1 + Math.abs(v)), `${l}[${o}]: ${got[o]} vs ${v}`),
        );
      }
    }
    if (layers.length === 1) assert.deepEqual(folded.get('heads/lesion/weight'), params.get('heads/lesion/weight'));
  });
}
