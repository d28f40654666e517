import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { importDataset } from '../../../src/data/importers/index.ts';
import { loadManifest } from '../../../src/data/manifest.ts';
import { tempDir, tinyImage, writeText } from '../helpers.ts';

const HEADER =
  'patient_id,lesion_id,smoke,drink,background_father,background_mother,age,pesticide,gender,skin_cancer_history,cancer_history,has_piped_water,has_sewage_system,fitspatrick,region,diameter_1,diameter_2,diagnostic,itch,grew,hurt,changed,bleed,elevation,img_id,biopsed';
// Rows in the real file's style: True/False/UNK flags, empty cells for patients without the questionnaire.
const ROWS = [
  'PAT_771,1491,True,True,ITALY,ITALY,69,False,MALE,False,True,True,True,3.0,FACE,6.0,3.0,BCC,True,UNK,False,UNK,False,True,PAT_771_1491_390.png,True',
  'PAT_1516,1765,,,,,8,,,,,,,,ARM,,,NEV,False,False,False,False,False,False,PAT_1516_1765_530.png,False',
  'PAT_771,1492,True,True,ITALY,ITALY,69,False,MALE,False,True,True,True,3.0,NECK,4.0,3.0,ACK,True,True,True,True,True,True,PAT_771_1492_391.png,False',
];

async function fakePad(rows: string[], images: string[]): Promise<string> {
  const root = await tempDir('dermtl-pad-');
  await writeText(join(root, 'metadata.csv'), [HEADER, ...rows].join('\n') + '\n');
  for (const [i, img] of images.entries()) await tinyImage(join(root, 'images', img), i * 50);
  return root;
}

test('pad-ufes-20: diagnostic + true signs, region, patient_id; images in imgs_part_* folders', async () => {
  const root = await fakePad(ROWS, [
    'imgs_part_1/PAT_771_1491_390.png',
    'imgs_part_3/PAT_1516_1765_530.png',
    'imgs_part_1/PAT_771_1492_391.png',
  ]);
  const out = join(root, 'pad.csv');
  const r = await importDataset('pad-ufes-20', root, out);
  assert.match(r.summary.join('\n'), /read 3 rows[\s\S]*wrote 3 images/);
  const m = await loadManifest(out);
  assert.deepEqual(
    m.samples.map((s) => [s.image, s.lesions, s.location, s.group]),
    [
      ['images/imgs_part_1/PAT_771_1491_390.png', ['BCC', 'itch', 'elevation'], 'FACE', 'PAT_771'],
      ['images/imgs_part_3/PAT_1516_1765_530.png', ['NEV'], 'ARM', 'PAT_1516'],
      [
        'images/imgs_part_1/PAT_771_1492_391.png',
        ['ACK', 'itch', 'grew', 'hurt', 'changed', 'bleed', 'elevation'],
        'NECK',
        'PAT_771',
      ],
    ],
  );
  assert.deepEqual(m.samples[0].extra, {
    img_id: 'PAT_771_1491_390.png',
    lesion_id: '1491',
    diagnostic: 'BCC',
    biopsed: 'True',
  });
});

test('pad-ufes-20: missing images and empty regions are listed; missing files name what was expected', async () => {
  const bad = ROWS[1].replace(',ARM,', ',,');
  const root = await fakePad([ROWS[0], bad], ['imgs_part_1/PAT_1516_1765_530.png']);
  await assert.rejects(importDataset('pad-ufes-20', root, join(root, 'm.csv')), (e: Error) => {
    assert.match(e.message, /cannot import pad-ufes-20 .*\(2 problems\)/);
    assert.match(e.message, /metadata\.csv line 2: image not found under images\/: PAT_771_1491_390\.png/);
    assert.match(e.message, /metadata\.csv line 3: empty region/);
    return true;
  });
  const empty = await tempDir();
  await assert.rejects(
    importDataset('pad-ufes-20', empty, join(empty, 'm.csv')),
    /pad-ufes-20: expected metadata file not found: .*metadata\.csv/,
  );
  await writeText(join(empty, 'metadata.csv'), [HEADER, ROWS[0]].join('\n'));
  await assert.rejects(
    importDataset('pad-ufes-20', empty, join(empty, 'm.csv')),
    /pad-ufes-20: expected image folder not found: .*images/,
  );
});
