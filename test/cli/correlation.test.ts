import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { register } from '../../src/cli/commands/correlation.ts';
import { generateDemo } from '../../src/data/demo/generate.ts';
import { loadManifest } from '../../src/data/manifest.ts';
import { runCommand, tempDir } from '../data/helpers.ts';

test('dermtl correlation on generated data: SVG, PNG and a JSON whose R rows sum to 1', async () => {
  const dir = await tempDir('dermtl-corr-');
  try {
    const demo = await generateDemo(join(dir, 'demo'), { n: 40, seed: 3, size: 64 });
    const [svg, png, json] = ['fig1.svg', 'fig1.png', 'r.json'].map((f) => join(dir, 'out', f));
    const r = await runCommand(register, ['correlation', demo.manifest, '--out', svg, '--png', png, '--json', json]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lesion types x \d+ locations from 40 images/);
    const doc = JSON.parse(await readFile(json, 'utf8'));
    assert.equal(doc.R.length, doc.lesions.length);
    for (const row of doc.R) assert.ok(Math.abs(row.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-12);
    // counts agree with the manifest
    const m = await loadManifest(demo.manifest);
    const i = 0,
      j = doc.locations.indexOf(m.samples.find((s) => s.lesions.includes(doc.lesions[i]))!.location);
    const expected = m.samples.filter(
      (s) => s.lesions.includes(doc.lesions[i]) && s.location === doc.locations[j],
    ).length;
    assert.equal(doc.counts[i][j], expected);
    assert.equal(doc.lesionTotals[i], m.samples.filter((s) => s.lesions.includes(doc.lesions[i])).length);
    const text = await readFile(svg, 'utf8');
    for (const l of [...doc.lesions, ...doc.locations]) assert.ok(text.includes(`>${l}`), l);
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.width! > 600 && meta.height! > 400, `${meta.width}x${meta.height}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dermtl correlation: missing manifest and wrong output names are user errors', async () => {
  let r = await runCommand(register, ['correlation', '/nonexistent/m.csv', '--out', '/tmp/x.svg']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /manifest not found/);
  const dir = await tempDir('dermtl-corr-');
  try {
    const demo = await generateDemo(join(dir, 'demo'), { n: 3, seed: 0, size: 64 });
    r = await runCommand(register, ['correlation', demo.manifest, '--out', join(dir, 'fig.png')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--out .*fig\.png: expected a file name ending in \.svg/);
    r = await runCommand(register, ['correlation', demo.manifest]);
    assert.equal(r.code, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
