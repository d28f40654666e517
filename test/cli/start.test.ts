import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { register } from '../../src/cli/commands/start.ts';
import { runCommand, tempDir } from '../data/helpers.ts';

test('dermtl start generates demo data once, prints its statistics and writes Figure 1', async () => {
  const dir = await tempDir('dermtl-start-');
  try {
    const out = join(dir, 'demo');
    let r = await runCommand(register, ['start', '--out', out, '--n', '16', '--size', '64', '--no-study']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /generating 16 SYNTHETIC demo images/);
    assert.match(r.stdout, /images: 16\n/);
    assert.match(r.stdout, /locations \(\d\):/);
    for (const f of ['figure1.svg', 'figure1.png', 'figure1.json']) assert.ok(r.stdout.includes(join(out, f)), f);
    assert.equal((await sharp(join(out, 'figure1.png')).metadata()).format, 'png');
    assert.match(await readFile(join(out, 'figure1.svg'), 'utf8'), /^<svg/);
    const manifest = join(out, 'data', 'manifest.csv');
    const before = (await stat(manifest)).mtimeMs;
    // second run: the data is reused, not regenerated
    r = await runCommand(register, ['start', '--out', out, '--no-study']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /using the dataset at/);
    assert.match(r.stdout, /images: 16\n/);
    assert.equal((await stat(manifest)).mtimeMs, before);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
