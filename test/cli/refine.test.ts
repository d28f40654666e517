import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { register } from '../../src/cli/commands/refine.ts';
import { loadManifest, writeManifest } from '../../src/data/manifest.ts';
import { runCommand, tempDir, tinyImage } from '../data/helpers.ts';

async function fixture(): Promise<string> {
  const dir = await tempDir();
  const rows = [];
  for (let i = 0; i < 6; i++) {
    await tinyImage(join(dir, `img/${i}.jpg`), i);
    rows.push({
      image: `img/${i}.jpg`,
      lesions: i < 4 ? ['nevus'] : ['naevus', 'rare'],
      location: i < 5 ? 'back' : 'sole',
      group: String(i),
    });
  }
  await writeManifest(join(dir, 'm.csv'), rows);
  return dir;
}

test('dermtl refine merges, drops, prints what it did and writes a valid manifest elsewhere', async () => {
  const dir = await fixture();
  await writeFile(join(dir, 'merge.json'), JSON.stringify({ lesion: { naevus: 'nevus' } }));
  const out = join(dir, 'out/refined.csv');
  const r = await runCommand(register, [
    'refine',
    join(dir, 'm.csv'),
    '--out',
    out,
    '--min-count',
    '3',
    '--merge',
    join(dir, 'merge.json'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /merged lesion "naevus" -> "nevus" \(2 images\)/);
  assert.match(r.stdout, /dropped location labels with < 3 images: sole \(1\)/);
  assert.match(r.stdout, /dropped lesion labels with < 3 images: rare \(1\)/);
  assert.match(r.stdout, /images: 6 in, 1 dropped \(location dropped\), 5 out/);
  const m = await loadManifest(out);
  assert.equal(m.samples.length, 5);
  assert.equal(m.samples[0].image, '../img/0.jpg');
  assert.ok(m.samples.every((s) => s.lesions.join() === 'nevus' && s.location === 'back'));
});

test('dermtl refine: bad --min-count and bad merge file are user errors naming them', async () => {
  const dir = await fixture();
  let r = await runCommand(register, ['refine', join(dir, 'm.csv'), '--out', join(dir, 'r.csv'), '--min-count', 'ten']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--min-count must be a whole number >= 0, got "ten"/);
  await writeFile(join(dir, 'merge.json'), JSON.stringify({ lesion: ['a'] }));
  r = await runCommand(register, [
    'refine',
    join(dir, 'm.csv'),
    '--out',
    join(dir, 'r.csv'),
    '--merge',
    join(dir, 'merge.json'),
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /invalid merge file .*merge\.json/);
  r = await runCommand(register, ['refine', join(dir, 'm.csv')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /required option '-o, --out <refined\.csv>'/);
});
