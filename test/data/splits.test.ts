import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import {
  assignFolds,
  foldBalance,
  loadFolds,
  makeFolds,
  selectFold,
  writeFolds,
  type FoldFile,
} from '../../src/data/splits.ts';
import { importDataset } from '../../src/data/importers/index.ts';
import { loadManifest } from '../../src/data/manifest.ts';
import type { Manifest, Sample } from '../../src/data/types.ts';
import { Rng } from '../../src/util/rng.ts';
import { DERM7PT, NO_DERM7PT, tempDir } from './helpers.ts';

/** 80 groups of 1-4 images, skewed locations, 6 lesion labels: like HAM10000 in miniature. */
function synthetic(seed = 1): Sample[] {
  const rng = Rng.seeded(seed);
  const locations = ['back', 'back', 'back', 'face', 'face', 'arm', 'sole'];
  const samples: Sample[] = [];
  for (let g = 0; g < 80; g++) {
    const location = rng.pick(locations);
    const lesions = ['a', 'b', 'c', 'd', 'e', 'f'].filter((_, i) => rng.bool(0.5 / (i + 1)));
    for (let i = rng.int(1, 4); i > 0; i--) {
      const image = `img/${g}_${i}.jpg`;
      samples.push({
        image,
        path: `/d/${image}`,
        lesions,
        location,
        group: `G${g}`,
        line: samples.length + 2,
        extra: {},
      });
    }
  }
  return samples;
}

function manifestOf(samples: Sample[]): Manifest {
  return { file: '/d/m.csv', dir: '/d', samples, extraColumns: [] };
}

test('folds are disjoint, cover every image, keep groups whole and are balanced in size', () => {
  const samples = synthetic();
  const fold = assignFolds(samples, 5, 0);
  assert.equal(fold.length, samples.length);
  assert.ok(fold.every((f) => Number.isInteger(f) && f >= 0 && f < 5));
  const groupFold = new Map<string, Set<number>>();
  samples.forEach((s, i) => groupFold.set(s.group, (groupFold.get(s.group) ?? new Set()).add(fold[i])));
  assert.ok(
    [...groupFold.values()].every((fs) => fs.size === 1),
    'a group spans folds',
  );
  const sizes = [0, 1, 2, 3, 4].map((f) => fold.filter((x) => x === f).length);
  assert.equal(
    sizes.reduce((a, b) => a + b),
    samples.length,
  );
  const mean = samples.length / 5;
  assert.ok(Math.max(...sizes.map((n) => Math.abs(n - mean))) <= 4, `fold sizes ${sizes}`);
  // the fold file lists each image exactly once
  const file = makeFolds(manifestOf(samples), 5, 0);
  const listed = file.splits.flatMap((s) => s.test);
  assert.equal(listed.length, samples.length);
  assert.equal(new Set(listed).size, samples.length);
});

test('same seed gives the same folds (whatever the row order); another seed other folds', () => {
  const samples = synthetic();
  const a = assignFolds(samples, 5, 7);
  assert.deepEqual(assignFolds(samples, 5, 7), a);
  const reversed = [...samples].reverse();
  const b = assignFolds(reversed, 5, 7);
  assert.deepEqual(reversed.map((s, i) => [s.image, b[i]]).sort(), samples.map((s, i) => [s.image, a[i]]).sort());
  assert.notDeepEqual(assignFolds(samples, 5, 8), a);
});

test('k equal to the number of groups leaves no fold empty; bad k is an error naming --folds', () => {
  const samples = synthetic().filter((s) => ['G0', 'G1', 'G2', 'G3'].includes(s.group));
  const fold = assignFolds(samples, 4, 0);
  assert.deepEqual([...new Set(fold)].sort(), [0, 1, 2, 3]);
  assert.throws(() => assignFolds(samples, 5, 0), /--folds 5 is more than the 4 group\(s\)/);
  assert.throws(() => assignFolds(samples, 1, 0), /--folds must be a whole number >= 2, got 1/);
});

test('stratification beats a random grouped split on the synthetic set', () => {
  const samples = synthetic(3);
  const worst = (fold: number[]) => {
    const b = foldBalance(samples, fold, 5);
    return Math.max(...b.map((x) => x.maxLocationDeviation)) + Math.max(...b.map((x) => x.maxLesionDeviation));
  };
  const stratified = worst(assignFolds(samples, 5, 0));
  // baseline: groups shuffled and dealt round-robin, averaged over seeds
  let random = 0;
  for (let seed = 0; seed < 10; seed++) {
    const groups = Rng.seeded(seed).shuffle([...new Set(samples.map((s) => s.group))]);
    const dealt = new Map(groups.map((g, i) => [g, i % 5]));
    random += worst(samples.map((s) => dealt.get(s.group)!)) / 10;
  }
  assert.ok(stratified < random / 2, `stratified ${stratified.toFixed(3)} vs random ${random.toFixed(3)}`);
});

test('derm7pt: per-fold location and lesion shares stay close to overall', { skip: NO_DERM7PT }, async () => {
  const out = join(await tempDir(), 'd7.csv');
  await importDataset('derm7pt', DERM7PT, out);
  const m = await loadManifest(out);
  const fold = assignFolds(m.samples, 5, 0);
  const b = foldBalance(m.samples, fold, 5);
  const maxLoc = Math.max(...b.map((x) => x.maxLocationDeviation));
  const maxLes = Math.max(...b.map((x) => x.maxLesionDeviation));
  // measured with seed 0: 0.0046 (location), 0.0110 (lesion); a random grouped split gives several times that
  assert.ok(maxLoc < 0.01, `max location-share deviation ${maxLoc}`);
  assert.ok(maxLes < 0.02, `max lesion-share deviation ${maxLes}`);
  assert.deepEqual(b.map((x) => x.images).sort(), [200, 200, 200, 200, 202]);
  // the rarest location (genital areas, 4 images) is spread over 4 folds, not piled into one
  const genital = new Set(m.samples.flatMap((s, i) => (s.location === 'genital areas' ? [fold[i]] : [])));
  assert.equal(genital.size, 4);
});

test('loadFolds round-trips and gives train/test per fold', async () => {
  const dir = await tempDir();
  const m = manifestOf(synthetic());
  const folds = makeFolds(m, 4, 2);
  assert.equal(folds.manifest, 'm.csv');
  const file = join(dir, 'folds.json');
  await writeFolds(file, folds);
  const loaded = await loadFolds(file, m);
  assert.equal(loaded.folds, 4);
  assert.equal(loaded.seed, 2);
  for (const f of loaded.splits) {
    assert.equal(f.train.length + f.test.length, m.samples.length);
    assert.deepEqual(
      f.test.map((s) => s.image),
      folds.splits[f.fold].test,
    );
    const testGroups = new Set(f.test.map((s) => s.group));
    assert.ok(f.train.every((s) => !testGroups.has(s.group)));
  }
  assert.equal(selectFold(loaded, 3).fold, 3);
  assert.throws(() => selectFold(loaded, 4), /--fold 4 is out of range: .*folds\.json has folds 0\.\.3/);
});

test('loadFolds refuses a fold file for another manifest or one edited by hand', async () => {
  const dir = await tempDir();
  const samples = synthetic();
  const m = manifestOf(samples);
  const folds = makeFolds(m, 3, 0);
  const file = join(dir, 'folds.json');
  await writeFolds(file, folds);
  const changed = manifestOf(samples.map((s, i) => (i === 0 ? { ...s, location: 'chest' } : s)));
  await assert.rejects(
    loadFolds(file, changed),
    /fold file .*folds\.json does not match manifest \/d\/m\.csv: it was made for "m\.csv" with different rows/,
  );

  const edited: FoldFile = JSON.parse(await readFile(file, 'utf8'));
  const moved = edited.splits[0].test.shift()!; // now in no fold
  edited.splits[1].test.push(edited.splits[1].test[0], 'img/ghost.jpg');
  await writeFile(file, JSON.stringify(edited));
  await assert.rejects(loadFolds(file, m), (e: Error) => {
    assert.match(e.message, /does not match manifest/);
    assert.match(e.message, /fold 1: image listed twice \(also in fold 1\)/);
    assert.match(e.message, /fold 1: image not in the manifest: img\/ghost\.jpg/);
    assert.match(e.message, new RegExp(`image in no fold: ${moved.replace('.', '\\.')}`));
    return true;
  });
  // a group split across folds
  const split: FoldFile = JSON.parse(JSON.stringify(folds));
  const g = samples.find((s) => samples.filter((x) => x.group === s.group).length > 1)!;
  const from = split.splits.findIndex((s) => s.test.includes(g.image));
  split.splits[from].test = split.splits[from].test.filter((x) => x !== g.image);
  split.splits[(from + 1) % 3].test.push(g.image);
  await writeFile(file, JSON.stringify(split));
  await assert.rejects(loadFolds(file, m), new RegExp(`group ${g.group} spans folds`));

  await writeFile(file, JSON.stringify({ ...folds, version: 2 }));
  await assert.rejects(loadFolds(file, m), /invalid fold file .*folds\.json[\s\S]*version/);
  await writeFile(file, '{');
  await assert.rejects(loadFolds(file, m), /fold file .*folds\.json is not valid JSON/);
  await assert.rejects(loadFolds(join(dir, 'none.json'), m), /fold file not found: .*none\.json/);
});
