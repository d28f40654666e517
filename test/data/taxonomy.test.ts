import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { formatRefineReport, loadMergeSpec, refine, refineManifest } from '../../src/data/taxonomy.ts';
import { loadManifest, writeManifest } from '../../src/data/manifest.ts';
import type { Sample } from '../../src/data/types.ts';
import { tempDir } from './helpers.ts';

function sample(image: string, lesions: string[], location: string): Sample {
  return { image, path: `/x/${image}`, lesions, location, group: image, line: 0, extra: {} };
}

// 3 back, 2 chest, 1 flank (merged into back by the spec below)
const SAMPLES = [
  sample('1', ['nevus', 'dots'], 'back'),
  sample('2', ['nevus', 'streaks'], 'back'),
  sample('3', ['clark nevus'], 'back'),
  sample('4', ['dots', 'clark nevus'], 'chest'),
  sample('5', ['streaks'], 'chest'),
  sample('6', ['globules'], 'flank'),
];

test('refine counts after merging: rare sub-types survive together, rare labels and their images go', () => {
  const { samples, report } = refine(SAMPLES, 2, {
    lesion: { 'clark nevus': 'nevus', globules: 'dots' },
    location: { flank: 'back' },
  });
  // after merging: nevus 4, dots 3, streaks 2; back 4, chest 2 -> nothing rare at min 2
  assert.deepEqual(
    samples.map((s) => [s.image, s.lesions, s.location]),
    [
      ['1', ['nevus', 'dots'], 'back'],
      ['2', ['nevus', 'streaks'], 'back'],
      ['3', ['nevus'], 'back'],
      ['4', ['dots', 'nevus'], 'chest'],
      ['5', ['streaks'], 'chest'],
      ['6', ['dots'], 'back'],
    ],
  );
  assert.deepEqual(report.merged, [
    { kind: 'lesion', from: 'clark nevus', to: 'nevus', images: 2 },
    { kind: 'lesion', from: 'globules', to: 'dots', images: 1 },
    { kind: 'location', from: 'flank', to: 'back', images: 1 },
  ]);
  assert.equal(report.droppedImages, 0);
});

test('refine without merges: location dropped first (image goes), lesions then counted on what is left', () => {
  const { samples, report } = refine(SAMPLES, 3);
  // locations: back 3, chest 2, flank 1 -> chest and flank dropped (images 4,5,6)
  // lesions on images 1-3: nevus 2, dots 1, streaks 1, clark nevus 1 -> all < 3 dropped
  assert.deepEqual(report.droppedLocations, [
    { label: 'chest', count: 2 },
    { label: 'flank', count: 1 },
  ]);
  assert.deepEqual(report.droppedLesions, [
    { label: 'nevus', count: 2 },
    { label: 'clark nevus', count: 1 },
    { label: 'dots', count: 1 },
    { label: 'streaks', count: 1 },
  ]);
  assert.deepEqual(
    samples.map((s) => [s.image, s.lesions, s.location]),
    [
      ['1', [], 'back'],
      ['2', [], 'back'],
      ['3', [], 'back'],
    ],
  );
  assert.equal(report.droppedImages, 3);
  assert.equal(report.emptiedImages, 3);
  const text = formatRefineReport(report, 3).join('\n');
  assert.match(text, /dropped location labels with < 3 images: chest \(2\), flank \(1\)/);
  assert.match(text, /images: 6 in, 3 dropped \(location dropped\), 3 out; 3 kept image\(s\) lost all lesion labels/);
});

test('merge chains resolve, cycles and unused entries are reported', () => {
  const { samples, report } = refine(SAMPLES, 0, {
    lesion: { globules: 'dots', dots: 'dermoscopic dots', 'no such label': 'x' },
  });
  assert.deepEqual(samples[5].lesions, ['dermoscopic dots']);
  assert.deepEqual(samples[0].lesions, ['nevus', 'dermoscopic dots']);
  assert.deepEqual(report.unusedMerges, [{ kind: 'lesion', from: 'no such label' }]);
  assert.throws(() => refine(SAMPLES, 0, { lesion: { a: 'b', b: 'a' } }), /label cycle a -> b -> a/);
});

test('merge file validation names the file and the bad entry', async () => {
  const dir = await tempDir();
  const f = join(dir, 'merge.json');
  await writeFile(f, JSON.stringify({ lesion: { x: 'y' }, location: { 'lower limb': 'lower limbs' } }));
  assert.deepEqual(await loadMergeSpec(f), { lesion: { x: 'y' }, location: { 'lower limb': 'lower limbs' } });
  await writeFile(f, JSON.stringify({ lesions: { x: 'y' } }));
  await assert.rejects(loadMergeSpec(f), /invalid merge file .*merge\.json[\s\S]*Unrecognized key.*lesions/);
  await writeFile(f, JSON.stringify({ lesion: { x: 3 } }));
  await assert.rejects(loadMergeSpec(f), /invalid merge file .*merge\.json[\s\S]*lesion\.x: .*expected string/);
  await writeFile(f, JSON.stringify({ location: { a: 'b', b: 'a' } }));
  await assert.rejects(loadMergeSpec(f), /merge file .*merge\.json \(location\): label cycle/);
  await writeFile(f, '{"lesion": ');
  await assert.rejects(loadMergeSpec(f), /merge file .*merge\.json is not valid JSON/);
  await assert.rejects(loadMergeSpec(join(dir, 'none.json')), /merge file not found: .*none\.json/);
});

test('refineManifest re-bases image paths on the output folder and keeps extra columns', async () => {
  const dir = await tempDir();
  const { mkdir, writeFile: wf } = await import('node:fs/promises');
  await mkdir(join(dir, 'data/img'), { recursive: true });
  await mkdir(join(dir, 'runs/r1'), { recursive: true });
  for (const f of ['a', 'b', 'c']) await wf(join(dir, 'data/img', `${f}.jpg`), 'x');
  const input = join(dir, 'data/m.csv');
  await writeManifest(input, [
    { image: 'img/a.jpg', lesions: ['n'], location: 'back', group: 'g1', extra: { dx: 'nv' } },
    { image: 'img/b.jpg', lesions: ['n', 'rare'], location: 'back', group: 'g2', extra: { dx: 'mel' } },
    { image: 'img/c.jpg', lesions: ['n'], location: 'face', group: 'g3', extra: { dx: 'nv' } },
  ]);
  const out = join(dir, 'runs/r1/refined.csv');
  const report = await refineManifest(input, out, 2);
  assert.equal(report.imagesOut, 2);
  const m = await loadManifest(out);
  assert.deepEqual(
    m.samples.map((s) => [s.image, s.lesions, s.location, s.extra.dx]),
    [
      ['../../data/img/a.jpg', ['n'], 'back', 'nv'],
      ['../../data/img/b.jpg', ['n'], 'back', 'mel'],
    ],
  );
  await assert.rejects(refineManifest(input, out, 10), /leaves no images; nothing written/);
  await assert.rejects(refineManifest(input, out, -1), /--min-count must be a whole number >= 0/);
});
