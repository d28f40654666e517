import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cooccurrence, countLabels, formatStats, manifestStats } from '../../src/data/statistics.ts';
import { importDataset } from '../../src/data/importers/index.ts';
import { loadManifest } from '../../src/data/manifest.ts';
import type { Sample } from '../../src/data/types.ts';
import { DERM7PT, NO_DERM7PT, tempDir } from './helpers.ts';

function sample(image: string, lesions: string[], location: string, group = image): Sample {
  return { image, path: image, lesions, location, group, line: 0, extra: {} };
}

const SAMPLES = [
  sample('1', ['a', 'b'], 'back', 'g1'),
  sample('2', ['a'], 'back', 'g1'),
  sample('3', ['a', 'c'], 'face', 'g2'),
  sample('4', [], 'face', 'g3'),
  sample('5', ['b'], 'arm', 'g3'),
];

test('manifestStats counts images, groups, labels (by count then name) and the per-image histogram', () => {
  const s = manifestStats({ samples: SAMPLES });
  assert.equal(s.images, 5);
  assert.equal(s.groups, 3);
  assert.deepEqual(s.lesions, [
    { label: 'a', count: 3 },
    { label: 'b', count: 2 },
    { label: 'c', count: 1 },
  ]);
  assert.deepEqual(s.locations, [
    { label: 'back', count: 2 },
    { label: 'face', count: 2 },
    { label: 'arm', count: 1 },
  ]);
  assert.deepEqual(s.lesionsPerImage, [1, 2, 2]);
  assert.equal(s.imagesWithoutLesion, 1);
  const text = formatStats(s).join('\n');
  assert.match(text, /lesion labels per image: 0:1 1:2 2:2/);
  assert.match(text, /locations \(3\):\n\s+2\s+40\.0%\s+back\n\s+2\s+40\.0%\s+face\n\s+1\s+20\.0%\s+arm/);
});

test('countLabels breaks count ties by name', () => {
  assert.deepEqual(countLabels(['z', 'y', 'z', 'x', 'y']), [
    { label: 'y', count: 2 },
    { label: 'z', count: 2 },
    { label: 'x', count: 1 },
  ]);
});

test('cooccurrence: counts, totals and row-normalised R', () => {
  const c = cooccurrence(SAMPLES);
  assert.deepEqual(c.lesions, ['a', 'b', 'c']);
  assert.deepEqual(c.locations, ['back', 'face', 'arm']);
  assert.deepEqual(c.counts, [
    [2, 1, 0],
    [1, 0, 1],
    [0, 1, 0],
  ]);
  assert.deepEqual(c.lesionTotals, [3, 2, 1]);
  assert.deepEqual(c.R, [
    [2 / 3, 1 / 3, 0],
    [0.5, 0, 0.5],
    [0, 1, 0],
  ]);
});

test('cooccurrence on derm7pt (derm view): rows sum to 1, cells match meta.csv', { skip: NO_DERM7PT }, async () => {
  const out = join(await tempDir(), 'd7.csv');
  await importDataset('derm7pt', DERM7PT, out, { view: 'derm' });
  const c = cooccurrence((await loadManifest(out)).samples);
  assert.equal(c.lesions.length, 24);
  assert.equal(c.locations[0], 'back');
  assert.equal(c.locations.length, 9);
  for (const row of c.R) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  const cell = (l: string, loc: string) => c.counts[c.lesions.indexOf(l)][c.locations.indexOf(loc)];
  // counted independently from meta.csv
  assert.equal(cell('streaks:irregular', 'back'), 71);
  assert.equal(cell('elevation:nodular', 'head neck'), 21);
  assert.equal(c.lesionTotals[c.lesions.indexOf('streaks:irregular')], 251);
  const wreath = c.lesions.indexOf('vascular_structures:wreath');
  assert.equal(wreath, 23); // the rarest label comes last
  assert.equal(c.R[wreath][c.locations.indexOf('head neck')], 1);
});
