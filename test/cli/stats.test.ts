import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { register } from '../../src/cli/commands/stats.ts';
import { writeManifest } from '../../src/data/manifest.ts';
import { runCommand, tempDir, tinyImage } from '../data/helpers.ts';

async function fixture(): Promise<string> {
  const dir = await tempDir();
  for (const f of ['a', 'b', 'c']) await tinyImage(join(dir, `${f}.jpg`));
  const file = join(dir, 'm.csv');
  await writeManifest(file, [
    { image: 'a.jpg', lesions: ['x', 'y'], location: 'back', group: '1' },
    { image: 'b.jpg', lesions: ['x'], location: 'back', group: '1' },
    { image: 'c.jpg', lesions: [], location: 'face', group: '2' },
  ]);
  return file;
}

test('dermtl stats prints the counts and writes JSON', async () => {
  const file = await fixture();
  const json = join(file, '..', 'stats.json');
  const r = await runCommand(register, ['stats', file, '--json', json]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /images: 3\ngroups: 2\nimages with no lesion label: 1\nlesion labels per image: 0:1 1:1 2:1/);
  const doc = JSON.parse(await readFile(json, 'utf8'));
  assert.equal(doc.manifest, 'm.csv');
  assert.match(doc.manifestHash, /^[0-9a-f]{64}$/);
  assert.deepEqual(doc.lesions, [
    { label: 'x', count: 2 },
    { label: 'y', count: 1 },
  ]);
  assert.deepEqual(doc.locations, [
    { label: 'back', count: 2 },
    { label: 'face', count: 1 },
  ]);
});

test('dermtl stats: a broken or missing manifest is a user error naming it', async () => {
  const r = await runCommand(register, ['stats', '/nonexistent/m.csv']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /manifest not found: \/nonexistent\/m\.csv/);
});
