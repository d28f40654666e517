import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  confusionData,
  confusionSpec,
  reliabilityData,
  reliabilitySpec,
} from '../../../src/report/study/calibrationFigures.ts';
import { vegaLiteToSvg } from '../../../src/report/render.ts';
import { LOCATIONS, syntheticResults } from './fixture.ts';

const bins = (points: [number, number, number][]) =>
  Array.from({ length: 15 }, (_, b) => {
    const p = points.find(([bin]) => bin === b);
    return {
      lo: b / 15,
      hi: (b + 1) / 15,
      count: p ? p[2] : 0,
      confidence: p ? p[1] : null,
      accuracy: p ? p[1] / 2 : null,
    };
  });
const cal = (ece: number, points: [number, number, number][]) => ({
  ece,
  mce: ece,
  brier: 0.1,
  n: points.reduce((a, p) => a + p[2], 0),
  bins: bins(points),
});

test('reliability diagrams: one panel per model and head with before and after; nothing without before/after pairs', async () => {
  const r = syntheticResults();
  assert.equal(reliabilitySpec(r), null, 'a study without calibration records draws nothing');
  (r.models.mtl.pooled as Record<string, unknown>).calibration = {
    lesion: cal(0.02, [
      [1, 0.1, 50],
      [10, 0.7, 5],
    ]),
    location: cal(0.05, [[6, 0.45, 30]]),
  };
  r.beforeCalibration = {
    mtl: { pooled: { lesion: cal(0.08, [[2, 0.15, 55]]), location: cal(0.12, [[9, 0.62, 30]]) }, folds: [] },
  };
  const points = reliabilityData(r);
  assert.deepEqual(
    [...new Set(points.map((p) => p.panel))],
    [
      'MTL, lesion head (image-label pairs)|ECE 0.080 → 0.020',
      'MTL, location head (top probability)|ECE 0.120 → 0.050',
    ],
  );
  assert.deepEqual(
    points.filter((p) => p.panel.startsWith('MTL, lesion')).map((p) => [p.stage, p.confidence, p.count]),
    [
      ['before', 0.15, 55],
      ['after', 0.1, 50],
      ['after', 0.7, 5],
    ],
  );
  assert.match(await vegaLiteToSvg(reliabilitySpec(r)!), /ECE 0\.080 → 0\.020/);
});

test("confusion heat map: every cell of each location model, shares of the true location's row", () => {
  const r = syntheticResults();
  const matrix = LOCATIONS.map((_, t) => LOCATIONS.map((__, p) => (t === p ? 3 : t === 0 ? 1 : 0)));
  (r.models.location.pooled as Record<string, unknown>).confusion = { labels: LOCATIONS, matrix };
  const cells = confusionData(r);
  assert.equal(cells.length, LOCATIONS.length ** 2);
  const cell = (t: string, p: string) => cells.find((c) => c.truth === t && c.predicted === p)!;
  assert.deepEqual([cell(LOCATIONS[0], LOCATIONS[0]).count, cell(LOCATIONS[0], LOCATIONS[0]).share], [3, 3 / 6]);
  assert.equal(cell(LOCATIONS[1], LOCATIONS[1]).share, 1);
  assert.ok(confusionSpec(r));
});
