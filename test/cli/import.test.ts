import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { register } from '../../src/cli/commands/import.ts';
import { loadManifest } from '../../src/data/manifest.ts';
import { DERM7PT, NO_DERM7PT, runCommand, tempDir, tinyImage, writeText } from '../data/helpers.ts';

test('dermtl import ham10000 writes the manifest and prints the summary', async () => {
  const root = await tempDir();
  await writeText(
    join(root, 'HAM10000_metadata.csv'),
    'lesion_id,image_id,dx,dx_type,age,sex,localization\nHAM_1,ISIC_1,nv,histo,40,male,back\nHAM_2,ISIC_2,mel,histo,60,female,unknown\n',
  );
  await tinyImage(join(root, 'HAM10000_images_part_1/ISIC_1.jpg'));
  const out = join(root, 'ham.csv');
  const r = await runCommand(register, ['import', 'ham10000', root, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /dropped 1 image with localization "unknown"\nwrote 1 image\nmanifest: .*ham\.csv/);
  const m = await loadManifest(out);
  assert.deepEqual(
    m.samples.map((s) => [s.image, s.lesions, s.location]),
    [['HAM10000_images_part_1/ISIC_1.jpg', ['nv'], 'back']],
  );
});

test('dermtl import derm7pt --view derm on the real copy', { skip: NO_DERM7PT }, async () => {
  const out = join(await tempDir(), 'd7.csv');
  const r = await runCommand(register, ['import', 'derm7pt', DERM7PT, '--out', out, '--view', 'derm']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /read 1011 cases[\s\S]*wrote 1011 images \(view derm\)/);
});

test('dermtl import: bad format, bad flag values and missing flags are user errors naming them', async () => {
  const root = await tempDir();
  let r = await runCommand(register, ['import', 'isic2019', root, '--out', join(root, 'm.csv')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown dataset format "isic2019"; known formats: derm7pt, ham10000, pad-ufes-20/);
  r = await runCommand(register, ['import', 'derm7pt', root, '--out', join(root, 'm.csv'), '--view', 'side']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /option '--view <view>' argument 'side' is invalid/);
  r = await runCommand(register, ['import', 'derm7pt', root]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /required option '-o, --out <manifest\.csv>' not specified/);
  r = await runCommand(register, ['import', 'pad-ufes-20', join(root, 'missing'), '--out', join(root, 'm.csv')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pad-ufes-20 dataset folder not found: .*missing/);
});
