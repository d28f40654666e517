import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { importDataset } from '../../../src/data/importers/index.ts';
import { loadManifest } from '../../../src/data/manifest.ts';
import { manifestStats } from '../../../src/data/statistics.ts';
import { DERM7PT, NO_DERM7PT, tempDir, tinyImage, writeText } from '../helpers.ts';

// Ground truth from /work/shared/datasets/derm7pt/SOURCE.md (the real copy, read in place).
const LOCATIONS_ALL = {
  back: 281,
  'lower limbs': 200,
  abdomen: 125,
  'upper limbs': 122,
  chest: 100,
  'head neck': 92,
  acral: 62,
  buttocks: 21,
  'genital areas': 8,
};
const POSITIVES_PER_CASE = [0, 20, 145, 288, 279, 176, 75, 23, 5];
const REPLACED = ['565', '800', '824', '827', '833', '834', '839', '844', '851'];

test('derm7pt --view derm reproduces SOURCE.md counts', { skip: NO_DERM7PT }, async () => {
  const out = join(await tempDir(), 'sub', 'd7.csv');
  const r = await importDataset('derm7pt', DERM7PT, out, { view: 'derm' });
  const m = await loadManifest(out);
  const s = manifestStats(m);
  assert.equal(s.images, 1011);
  assert.equal(s.groups, 1011);
  assert.deepEqual(Object.fromEntries(s.locations.map((c) => [c.label, c.count])), LOCATIONS_ALL);
  assert.equal(s.lesions.length, 24);
  assert.deepEqual(s.lesionsPerImage, POSITIVES_PER_CASE);
  const lesion = Object.fromEntries(s.lesions.map((c) => [c.label, c.count]));
  // a few label counts straight from SOURCE.md's vocabulary section
  assert.equal(lesion['pigment_network:typical'], 381);
  assert.equal(lesion['pigmentation:diffuse irregular'], 265);
  assert.equal(lesion['vascular_structures:wreath'], 2);
  assert.equal(lesion['blue_whitish_veil:present'], 195);
  assert.equal(lesion['elevation:flat'], 448);
  assert.equal(lesion['elevation:nodular'], 123);
  assert.equal(Object.keys(lesion).filter((l) => l.endsWith(':absent')).length, 0);
  assert.deepEqual(
    r.rows.filter((x) => x.extra?.view !== 'derm'),
    [],
  );
  // case 1 of meta.csv: BCC, arborizing vessels, nodular, abdomen
  const first = m.samples[0];
  assert.deepEqual(
    [first.lesions, first.location, first.group, first.extra.diagnosis],
    [['vascular_structures:arborizing', 'elevation:nodular'], 'abdomen', '1', 'basal cell carcinoma'],
  );
  assert.equal(first.path, join(DERM7PT, 'images/NEL/Nel026.jpg'));
});

test('derm7pt --view clinic excludes the 9 cases whose clinical image is dermoscopic', {
  skip: NO_DERM7PT,
}, async () => {
  const out = join(await tempDir(), 'd7.csv');
  const r = await importDataset('derm7pt', DERM7PT, out);
  assert.match(
    r.summary.join('\n'),
    /excluded 9 cases whose clinical image is the dermoscopic one \(case_num 565, 800, 824, 827, 833, 834, 839, 844, 851\)/,
  );
  assert.match(r.summary.join('\n'), /wrote 1002 images \(view clinic\)/);
  const m = await loadManifest(out);
  const s = manifestStats(m);
  assert.equal(s.images, 1002);
  const groups = new Set(m.samples.map((x) => x.group));
  for (const c of REPLACED) assert.ok(!groups.has(c), `case ${c} should be excluded`);
  // SOURCE.md: the 9 are genital areas 4, chest 3, lower limbs 2
  const loc = Object.fromEntries(s.locations.map((c) => [c.label, c.count]));
  assert.deepEqual(loc, { ...LOCATIONS_ALL, 'genital areas': 4, chest: 97, 'lower limbs': 198 });
  // image paths are relative to the output manifest, which lives outside the dataset
  assert.ok(m.samples[0].image.startsWith('../'));
  assert.equal(m.samples[0].path, join(DERM7PT, 'images/NEL/NEL025.JPG'));
  const header = (await readFile(out, 'utf8')).split('\n')[0];
  assert.equal(header, 'image,lesions,location,group,diagnosis,case_num,view');
});

test('derm7pt --view both: two images per case sharing the group, the 9 listed once', {
  skip: NO_DERM7PT,
}, async () => {
  const out = join(await tempDir(), 'd7.csv');
  await importDataset('derm7pt', DERM7PT, out, { view: 'both' });
  const m = await loadManifest(out);
  assert.equal(m.samples.length, 2013);
  const perGroup = new Map<string, number>();
  for (const s of m.samples) perGroup.set(s.group, (perGroup.get(s.group) ?? 0) + 1);
  assert.equal(perGroup.size, 1011);
  assert.equal([...perGroup.values()].filter((n) => n === 1).length, 9);
  assert.equal(perGroup.get('1'), 2);
});

/** A two-case fake in the release_v0 layout, for the error paths. */
async function fakeDerm7pt(rows: string[]): Promise<string> {
  const root = await tempDir();
  const header =
    'case_num,diagnosis,seven_point_score,pigment_network,streaks,pigmentation,regression_structures,dots_and_globules,blue_whitish_veil,vascular_structures,level_of_diagnostic_difficulty,elevation,location,sex,management,clinic,derm,case_id,notes';
  await writeText(join(root, 'meta/meta.csv'), [header, ...rows].join('\n') + '\n');
  await tinyImage(join(root, 'images/A/a_c.jpg'));
  await tinyImage(join(root, 'images/A/a_d.jpg'));
  return root;
}

test('derm7pt: values kept as written, bad rows and missing images all reported with lines', async () => {
  const root = await fakeDerm7pt([
    '1,clark nevus,3,typical,absent,localized irregular,absent,regular,absent,absent,low,palpable,back,female,excision,A/a_c.jpg,A/a_d.jpg,,',
  ]);
  const out = join(root, 'm.csv');
  const r = await importDataset('derm7pt', root, out);
  assert.deepEqual(
    r.rows.map((x) => [x.image, x.lesions, x.location, x.group]),
    [
      [
        'images/A/a_c.jpg',
        [
          'pigment_network:typical',
          'pigmentation:localized irregular',
          'dots_and_globules:regular',
          'elevation:palpable',
        ],
        'back',
        '1',
      ],
    ],
  );
  const bad = await fakeDerm7pt([
    '1,clark nevus,3,typical,absent,absent,absent,regular,absent,absent,low,palpable,,female,excision,A/a_c.jpg,A/a_d.jpg,,',
    '2,clark nevus,3,,absent,absent,absent,regular,absent,absent,low,palpable,back,female,excision,A/gone.jpg,A/a_d.jpg,,',
  ]);
  await assert.rejects(importDataset('derm7pt', bad, join(bad, 'm.csv')), (e: Error) => {
    assert.match(e.message, /cannot import derm7pt .*\(3 problems\)/);
    assert.match(e.message, /meta\/meta\.csv line 2: empty location/);
    assert.match(e.message, /meta\/meta\.csv line 3: empty pigment_network/);
    assert.match(e.message, /meta\/meta\.csv line 3: clinic image not found: images\/A\/gone\.jpg/);
    return true;
  });
});

test('derm7pt: missing root, missing meta.csv and missing columns name what was expected', async () => {
  const root = await tempDir();
  await assert.rejects(
    importDataset('derm7pt', join(root, 'nope'), join(root, 'm.csv')),
    /derm7pt dataset folder not found: .*nope/,
  );
  await assert.rejects(
    importDataset('derm7pt', root, join(root, 'm.csv')),
    /derm7pt: expected metadata file not found: .*meta\/meta\.csv/,
  );
  await writeText(join(root, 'meta/meta.csv'), 'case_num,diagnosis,location\n1,x,back\n');
  await assert.rejects(
    importDataset('derm7pt', root, join(root, 'm.csv')),
    /meta\.csv: missing column\(s\) pigment_network, streaks/,
  );
  await assert.rejects(
    importDataset('isic', root, join(root, 'm.csv')),
    /unknown dataset format "isic"; known formats: derm7pt, ham10000, pad-ufes-20/,
  );
});
