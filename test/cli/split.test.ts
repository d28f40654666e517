import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { register } from '../../src/cli/commands/split.ts';
import { loadManifest, writeManifest } from '../../src/data/manifest.ts';
import { loadFolds } from '../../src/data/splits.ts';
import { runCommand, tempDir, tinyImage } from '../data/helpers.ts';

async function fixture(): Promise<string> {
  const dir = await tempDir();
  const rows = [];
  for (let i = 0; i < 12; i++) {
    await tinyImage(join(dir, `img/${i}.jpg`), i * 20);
    rows.push({
      image: `img/${i}.jpg`,
      lesions: i % 3 === 0 ? ['a'] : ['b'],
      location: i % 2 ? 'back' : 'face',
      group: `p${Math.floor(i / 2)}`,
    });
  }
  await writeManifest(join(dir, 'm.csv'), rows);
  return join(dir, 'm.csv');
}

test('dermtl split writes a reproducible fold file that loads against its manifest', async () => {
  const manifest = await fixture();
  const out = join(manifest, '..', 'folds.json');
  const r = await runCommand(register, ['split', manifest, '--folds', '3', '--seed', '4', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*folds\.json \(3 folds, seed 4\)/);
  const doc = JSON.parse(await readFile(out, 'utf8'));
  assert.deepEqual([doc.version, doc.folds, doc.seed, doc.manifest, doc.splits.length], [1, 3, 4, 'm.csv', 3]);
  assert.deepEqual(
    doc.splits.map((s: { test: string[] }) => s.test.length),
    [4, 4, 4],
  );
  const loaded = await loadFolds(out, await loadManifest(manifest));
  assert.equal(loaded.splits[0].train.length, 8);
  const again = join(manifest, '..', 'folds2.json');
  await runCommand(register, ['split', manifest, '--folds', '3', '--seed', '4', '--out', again]);
  assert.equal(await readFile(again, 'utf8'), await readFile(out, 'utf8'));
});

test('dermtl split: bad --folds / --seed are user errors naming the flag', async () => {
  const manifest = await fixture();
  const out = join(manifest, '..', 'f.json');
  let r = await runCommand(register, ['split', manifest, '--folds', '7', '--out', out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--folds 7 is more than the 6 group\(s\) in the manifest/);
  r = await runCommand(register, ['split', manifest, '--folds', 'five', '--out', out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--folds must be a whole number, got "five"/);
  r = await runCommand(register, ['split', manifest, '--seed', '0.5', '--out', out]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--seed must be a whole number, got "0\.5"/);
});
