import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { correlationHeatmapSpec, type Cooccurrence } from '../../../src/report/figures/correlation.ts';
import { svgToPng, vegaLiteToSvg } from '../../../src/report/render.ts';

const small: Cooccurrence = {
  lesions: ['papule', 'vesicle'],
  locations: ['face', 'hand', 'leg'],
  counts: [
    [3, 0, 1],
    [1, 2, 2],
  ],
  lesionTotals: [4, 5],
  R: [
    [0.75, 0, 0.25],
    [0.2, 0.4, 0.4],
  ],
};

function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

test('the spec has one cell per lesion x location with R, in the matrix order', () => {
  const spec = correlationHeatmapSpec(small) as { data: { values: Record<string, unknown>[] }; layer: unknown[] };
  assert.equal(spec.data.values.length, 6);
  assert.deepEqual(spec.data.values[2], {
    lesion: 'papule',
    row: 'papule (4)',
    location: 'leg',
    R: 0.25,
    count: 1,
    total: 4,
  });
  assert.equal(spec.layer.length, 2); // rects + cell text
});

test('the SVG shows title, row and column labels, legend R and the cell values', async () => {
  const t = texts(await vegaLiteToSvg(correlationHeatmapSpec(small, { title: 'Figure 1 test' })));
  for (const label of ['Figure 1 test', 'papule (4)', 'vesicle (5)', 'face', 'hand', 'leg', 'R'])
    assert.ok(t.includes(label), label);
  for (const v of ['0.75', '0.00', '0.25', '0.20', '0.40']) assert.ok(t.includes(v), v);
  assert.equal(t.filter((s) => s === '0.40').length, 2);
});

test('cell text is left out on request and for big matrices', async () => {
  const t = texts(await vegaLiteToSvg(correlationHeatmapSpec(small, { cellText: false })));
  assert.ok(!t.includes('0.25') && !t.includes('0.40'), t.join());
  const n = 25,
    k = 20;
  const big: Cooccurrence = {
    lesions: Array.from({ length: n }, (_, i) => `lesion${i}`),
    locations: Array.from({ length: k }, (_, j) => `site${j}`),
    counts: Array.from({ length: n }, () => Array(k).fill(1)),
    lesionTotals: Array(n).fill(k),
    R: Array.from({ length: n }, () => Array(k).fill(1 / k)),
  };
  const spec = correlationHeatmapSpec(big) as { layer: unknown[] };
  assert.equal(spec.layer.length, 1);
});

test('the PNG decodes, has twice the SVG size, and the strongest cell is the darkest blue', async () => {
  const svg = await vegaLiteToSvg(correlationHeatmapSpec(small, { cellText: false }));
  const [, w, h] = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg)!.map(Number);
  const png = await svgToPng(svg, 2);
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, Math.round(2 * w));
  assert.equal(info.height, Math.round(2 * h));
  // the darkest pixel with a blue tint (blue scheme, not black text) belongs to the largest R (0.75)
  let darkest = 255 * 3;
  for (let i = 0; i < data.length; i += 3) {
    const s = data[i] + data[i + 1] + data[i + 2];
    if (data[i + 2] > data[i] + 40 && s < darkest) darkest = s;
  }
  assert.ok(darkest < 300, `darkest blue ${darkest}`); // the 'blues' scheme's top end is about rgb(8, 48, 107)
});
