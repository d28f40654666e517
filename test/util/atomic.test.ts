// Atomic files and folders: complete or absent, the old version kept until the new one is whole, no temp leftovers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../../src/util/atomic.ts';

const root = await mkdtemp(join(tmpdir(), 'dermtl-atomic-'));
test.after(() => rm(root, { recursive: true, force: true }));

test('writeFileAtomic: creates folders, replaces a file, leaves no temp file', async () => {
  const dir = join(root, 'files', 'a', 'b');
  const file = join(dir, 'x.json');
  await writeFileAtomic(file, 'one');
  await writeFileAtomic(file, new TextEncoder().encode('two'));
  assert.equal(await readFile(file, 'utf8'), 'two');
  assert.deepEqual(await readdir(dir), ['x.json']);
});

test('writeFileAtomic: a failed write leaves the old file and no temp file', async () => {
  const dir = join(root, 'fail');
  const file = join(dir, 'x.txt');
  await writeFileAtomic(file, 'old');
  await assert.rejects(writeFileAtomic(file, 42 as unknown as string));
  assert.equal(await readFile(file, 'utf8'), 'old');
  assert.deepEqual(await readdir(dir), ['x.txt']);
});

test('writeDirAtomic: the old folder is whole while the new one is filled, then replaced; nothing left beside it', async () => {
  const parent = join(root, 'dirs');
  const dir = join(parent, 'model');
  await writeDirAtomic(dir, (tmp) => writeFile(join(tmp, 'a.txt'), 'v1'));
  await writeDirAtomic(dir, async (tmp) => {
    assert.equal(
      await readFile(join(dir, 'a.txt'), 'utf8'),
      'v1',
      'the old folder is untouched while the new one is written',
    );
    await writeFile(join(tmp, 'b.txt'), 'v2');
  });
  assert.deepEqual(await readdir(dir), ['b.txt']);
  assert.deepEqual(await readdir(parent), ['model']);
});

test('writeDirAtomic: a failing fill leaves the old folder as it was and removes the temp folder', async () => {
  const parent = join(root, 'dirs-fail');
  const dir = join(parent, 'model');
  await writeDirAtomic(dir, (tmp) => writeFile(join(tmp, 'a.txt'), 'v1'));
  await assert.rejects(
    writeDirAtomic(dir, async (tmp) => {
      await writeFile(join(tmp, 'half.txt'), 'x');
      throw new Error('disk full');
    }),
    /disk full/,
  );
  assert.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'v1');
  assert.deepEqual(await readdir(parent), ['model']);
  assert.ok((await stat(dir)).isDirectory());
});
