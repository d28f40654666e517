import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { register } from '../../src/cli/commands/demo-data.ts';
import { loadManifest } from '../../src/data/manifest.ts';
import { runCommand, tempDir } from '../data/helpers.ts';

test('dermtl demo-data writes images, a loadable manifest and a README', async () => {
  const dir = await tempDir('dermtl-demo-cli-');
  try {
    const out = join(dir, 'demo');
    const r = await runCommand(register, ['demo-data', '--out', out, '--n', '5', '--seed', '2', '--size', '64']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote 5 synthetic images in \d+ groups/);
    assert.equal((await readdir(join(out, 'images'))).length, 5);
    assert.equal((await loadManifest(join(out, 'manifest.csv'))).samples.length, 5);
    assert.match(await readFile(join(out, 'README.txt'), 'utf8'), /SYNTHETIC/);
    assert.deepEqual(JSON.parse(await readFile(join(out, 'demo.json'), 'utf8')).seed, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dermtl demo-data: bad flags are usage errors, a foreign folder a user error', async () => {
  const dir = await tempDir('dermtl-demo-cli-');
  try {
    let r = await runCommand(register, ['demo-data', '--out', join(dir, 'x'), '--n', 'many']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--n <images>.*expected an integer, got 'many'/);
    r = await runCommand(register, ['demo-data', '--out', join(dir, 'x'), '--size', '8']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--size must be an integer from 64/);
    r = await runCommand(register, ['demo-data']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--out <dir>/);
    await writeFile(join(dir, 'notes.txt'), 'keep me');
    r = await runCommand(register, ['demo-data', '--out', dir, '--n', '2', '--size', '64']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not empty.*refusing to overwrite/);
    assert.deepEqual(await readdir(dir), ['notes.txt']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
