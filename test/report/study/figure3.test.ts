import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { figure3Data, figure3Spec } from '../../../src/report/study/figure3.ts';
import { svgToPng, vegaLiteToSvg } from '../../../src/report/render.ts';
import { syntheticResults } from './fixture.ts';

test('bars are fold means with ±1 std whiskers, dots the single folds', () => {
  const { bars, dots } = figure3Data(syntheticResults());
  assert.deepEqual(
    bars.map((b) => `${b.model} ${b.metric} n=${b.n}`),
    [
      'Location-only top-1 n=2',
      'Location-only top-3 n=2',
      'MTL top-1 n=3',
      'MTL top-3 n=3',
      'Linear top-1 n=3',
      'Linear top-3 n=3',
      'Prior top-1 n=3',
      'Prior top-3 n=3',
    ],
  );
  const mtlTop1 = bars[2];
  // MTL top-1 per fold: 0.52 + [0.01, -0.015, 0.005]
  const std = Math.sqrt((0.01 ** 2 + 0.015 ** 2 + 0.005 ** 2) / 2);
  assert.ok(Math.abs(mtlTop1.mean - 0.52) < 1e-12);
  assert.ok(Math.abs(mtlTop1.lo - (0.52 - std)) < 1e-12 && Math.abs(mtlTop1.hi - (0.52 + std)) < 1e-12);
  assert.equal(bars[0].note, '2 of 3 folds');
  assert.equal(mtlTop1.note, '');
  // location-only has no fold 2
  assert.equal(dots.length, 2 * 2 + 3 * 2 * 3);
  assert.deepEqual(
    dots.filter((d) => d.model === 'MTL' && d.metric === 'top-1').map((d) => d.value),
    [0.53, 0.505, 0.525],
  );
});

test('nothing to draw without location results', () => {
  const r = syntheticResults();
  for (const m of [r.models.location, r.models.mtl, r.models.linear, r.models.prior])
    Object.assign(m, { mean: {}, std: {}, n: {} });
  assert.equal(figure3Spec(r), null);
});

test('renders with its labels, whiskers and the colours of the models and baselines', async () => {
  const svg = await vegaLiteToSvg(figure3Spec(syntheticResults())!);
  for (const label of [
    'Body location accuracy: location-only vs. MTL, with baselines',
    'Location-only',
    'MTL',
    'Linear',
    'Prior',
    'top-1',
    'top-3',
    '0.520',
    '0.497',
    '2 of 3 folds',
    'accuracy',
  ]) {
    assert.ok(svg.includes(`>${label}<`), label);
  }
  const { data, info } = await sharp(await svgToPng(svg, 1))
    .raw()
    .toBuffer({ resolveWithObject: true });
  const near = (i: number, rgb: number[]) => rgb.every((v, c) => Math.abs(data[i + c] - v) < 6);
  const count = (rgb: number[]) => {
    let n = 0;
    for (let i = 0; i < data.length; i += info.channels) if (near(i, rgb)) n++;
    return n;
  };
  const [blue, orange, green, grey] = [
    [0x8a, 0xa6, 0xc8],
    [0xd9, 0x73, 0x3b],
    [0x8f, 0xb9, 0x8b],
    [0xbd, 0xbd, 0xbd],
  ].map(count);
  // bars ~W px wide, 300 px = 100%: location-only (0.497 + 0.849) * 300 px tall, MTL (0.52 + 0.86), linear (0.45 + 0.8), prior (0.3 + 0.6)
  const W = blue / (1.346 * 300);
  assert.ok(W > 40 && W < 80, `bar width ${W}`);
  for (const [name, n, h] of [
    ['orange', orange, 1.38],
    ['green', green, 1.25],
    ['grey', grey, 0.9],
  ] as const) {
    assert.ok(Math.abs(n / (W * 300) - h) < 0.05, `${name}: ${n} px for a height of ${h} x 300 px`);
  }
});
