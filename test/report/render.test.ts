import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import { renderVegaLite, svgToPng } from '../../src/report/render.ts';

const bars: TopLevelSpec = {
  title: 'Bars',
  data: {
    values: [
      { k: 'alpha', v: 3 },
      { k: 'beta', v: 5 },
    ],
  },
  mark: 'bar',
  encoding: { x: { field: 'k', type: 'nominal' }, y: { field: 'v', type: 'quantitative' } },
  width: 200,
  height: 100,
};

function svgSize(svg: string): [number, number] {
  const m = /<svg[^>]*\swidth="(\d+(?:\.\d+)?)"[^>]*\sheight="(\d+(?:\.\d+)?)"/.exec(svg);
  assert.ok(m, 'svg has width and height');
  return [Number(m[1]), Number(m[2])];
}

test('renders a vega-lite spec to SVG text with its labels, in DejaVu Sans', async () => {
  const { svg, png } = await renderVegaLite(bars);
  assert.match(svg, /^<svg/);
  for (const label of ['Bars', 'alpha', 'beta']) assert.ok(svg.includes(`>${label}<`), label);
  assert.match(svg, /font-family="DejaVu Sans"/);
  assert.equal(png, undefined);
  const [w, h] = svgSize(svg);
  assert.ok(w > 200 && h > 100, `${w}x${h}`); // plot area plus axes and title
});

test('writes SVG and a PNG at the requested scale, leaving no temp files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dermtl-render-'));
  try {
    const svgFile = join(dir, 'a.svg'),
      pngFile = join(dir, 'a.png');
    const { svg } = await renderVegaLite(bars, { svg: svgFile, png: pngFile, scale: 3 });
    assert.equal(await readFile(svgFile, 'utf8'), svg);
    const [w, h] = svgSize(svg);
    const meta = await sharp(pngFile).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(
      Math.abs(meta.width! - 3 * w) <= 1 && Math.abs(meta.height! - 3 * h) <= 1,
      `${meta.width}x${meta.height} vs ${w}x${h}`,
    );
    // the bars are drawn: some pixels are the default vega-lite blue (#4c78a8), the background is white
    const { data, info } = await sharp(pngFile).raw().toBuffer({ resolveWithObject: true });
    let blue = 0;
    for (let i = 0; i < data.length; i += info.channels)
      if (Math.abs(data[i] - 0x4c) < 8 && Math.abs(data[i + 2] - 0xa8) < 8) blue++;
    assert.ok(blue > 1000, `blue pixels ${blue}`);
    assert.deepEqual(data.subarray(0, 3), Buffer.from([255, 255, 255]));
    assert.deepEqual((await readdir(dir)).sort(), ['a.png', 'a.svg']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('svgToPng rasterises text (dark pixels where the title is)', async () => {
  const { svg } = await renderVegaLite(bars);
  const png = await svgToPng(svg, 1);
  const { data, info } = await sharp(png).greyscale().raw().toBuffer({ resolveWithObject: true });
  const dark = [...data.subarray(0, info.width * 20)].filter((v) => v < 128).length; // top rows: the title
  assert.ok(dark > 20, `dark title pixels ${dark}`);
});
