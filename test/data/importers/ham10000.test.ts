import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { importDataset } from '../../../src/data/importers/index.ts';
import { loadManifest } from '../../../src/data/manifest.ts';
import { tempDir, tinyImage, writeText } from '../helpers.ts';

const HEADER = 'lesion_id,image_id,dx,dx_type,age,sex,localization';

/** A tiny HAM10000 in the Kaggle/ISIC layout: metadata at the root, images split in two part folders. */
async function fakeHam(rows: string[], images: string[]): Promise<string> {
  const root = await tempDir('dermtl-ham-');
  await writeText(join(root, 'HAM10000_metadata.csv'), [HEADER, ...rows].join('\n') + '\n');
  for (const [i, img] of images.entries()) await tinyImage(join(root, img), i * 40);
  return root;
}

test('ham10000: dx/localization/lesion_id, images found in sub-folders, unknown sites dropped and counted', async () => {
  const root = await fakeHam(
    [
      'HAM_0000118,ISIC_0027419,bkl,histo,80.0,male,scalp',
      'HAM_0000118,ISIC_0025030,bkl,histo,80.0,male,scalp',
      'HAM_0002730,ISIC_0026769,nv,follow_up,,female,lower extremity',
      'HAM_0001466,ISIC_0031633,mel,histo,75.0,male,unknown',
    ],
    [
      'HAM10000_images_part_1/ISIC_0027419.jpg',
      'HAM10000_images_part_1/ISIC_0025030.jpg',
      'HAM10000_images_part_2/ISIC_0026769.jpg',
    ],
  );
  const out = join(root, 'out', 'ham.csv');
  const r = await importDataset('ham10000', root, out);
  assert.match(
    r.summary.join('\n'),
    /read 4 rows .*\n.*dropped 1 image with localization "unknown"[\s\S]*wrote 3 images/,
  );
  const m = await loadManifest(out);
  assert.deepEqual(
    m.samples.map((s) => [s.image, s.lesions, s.location, s.group]),
    [
      ['../HAM10000_images_part_1/ISIC_0027419.jpg', ['bkl'], 'scalp', 'HAM_0000118'],
      ['../HAM10000_images_part_1/ISIC_0025030.jpg', ['bkl'], 'scalp', 'HAM_0000118'],
      ['../HAM10000_images_part_2/ISIC_0026769.jpg', ['nv'], 'lower extremity', 'HAM_0002730'],
    ],
  );
  assert.deepEqual(m.samples[2].extra, { image_id: 'ISIC_0026769', dx_type: 'follow_up', age: '', sex: 'female' });
});

test('ham10000: a copy of an image in a second folder resolves to the first path in sorted order', async () => {
  const root = await fakeHam(['HAM_1,ISIC_1,nv,histo,5,male,back'], ['b_part/ISIC_1.jpg', 'a_part/ISIC_1.jpg']);
  const r = await importDataset('ham10000', root, join(root, 'm.csv'));
  assert.equal(r.rows[0].image, 'a_part/ISIC_1.jpg');
  assert.match(r.summary.join('\n'), /1 image file found in several folders/);
});

test('ham10000: every missing image and empty field is an error listing it', async () => {
  const root = await fakeHam(
    ['HAM_1,ISIC_1,nv,histo,5,male,back', 'HAM_2,ISIC_2,nv,histo,5,male,back', ',ISIC_3,,histo,5,male,'],
    ['part_1/ISIC_3.jpg'],
  );
  await assert.rejects(importDataset('ham10000', root, join(root, 'm.csv')), (e: Error) => {
    assert.match(e.message, /cannot import ham10000 .*\(5 problems\)/);
    assert.match(e.message, /HAM10000_metadata\.csv line 2: image not found under .*: ISIC_1\.jpg/);
    assert.match(e.message, /line 3: image not found .*ISIC_2\.jpg/);
    assert.match(e.message, /line 4: empty localization/);
    assert.match(e.message, /line 4: empty lesion_id/);
    assert.match(e.message, /line 4: empty dx/);
    return true;
  });
});

test('ham10000: missing metadata file, missing columns and malformed CSV name the file', async () => {
  const root = await tempDir();
  await assert.rejects(
    importDataset('ham10000', root, join(root, 'm.csv')),
    /ham10000: expected metadata file not found: .*HAM10000_metadata\.csv/,
  );
  await writeText(join(root, 'HAM10000_metadata.csv'), 'lesion_id,image_id,dx\nA,B,nv\n');
  await assert.rejects(
    importDataset('ham10000', root, join(root, 'm.csv')),
    /HAM10000_metadata\.csv: missing column\(s\) dx_type, localization/,
  );
  await writeText(join(root, 'HAM10000_metadata.csv'), `${HEADER}\nA,B,nv,histo,5,male,back\nA,C,nv,histo,5\n`);
  await assert.rejects(
    importDataset('ham10000', root, join(root, 'm.csv')),
    /HAM10000_metadata\.csv: malformed CSV near line 3/,
  );
  await assert.rejects(
    importDataset('ham10000', root, join(root, 'm.csv'), { view: 'derm' }),
    /--view applies to derm7pt only, not ham10000/,
  );
});
