// dermtl predict: one JSON line per image in order, errors as lines with a non-zero exit at the end, folders
// expanded (sorted, recursive, image extensions), the default model and its absence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { register } from '../../src/cli/commands/predict.ts';
import { loadModel } from '../../src/serve/api.ts';
import { DEFAULT_MODEL_PATH } from '../../src/serve/defaultModel.ts';
import { runCommand, tempDir } from '../data/helpers.ts';
import { rampImage, TINY_LABELS, tinyModelDir } from '../serve/helpers.ts';

const root = await tempDir('dermtl-predict-');
const modelDir = await tinyModelDir(root);
const model = await loadModel(modelDir, { threads: 1 });
test.after(() => model.dispose());
// The real command as a user runs it, from the sources (scripts/dermtl-dev.js registers tsx itself; bin/dermtl.js runs
// the same CLI built into dist/, which test/package.test.ts checks).
const ENTRY = join(import.meta.dirname, '../../scripts/dermtl-dev.js');
/** tsx by URL: the child runs in a folder without node_modules. */

async function image(path: string, format: 'jpeg' | 'png' | 'webp', seed: number): Promise<Buffer> {
  const bytes = await rampImage(format, 60, 45, seed);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, bytes);
  return bytes;
}

const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('good and bad images in one batch: a line each, in order, the error as a line, exit 1 at the end', async () => {
  const good = join(root, 'batch/good.jpg');
  const goodBytes = await image(good, 'jpeg', 1);
  const text = join(root, 'batch/notes.jpg');
  await writeFile(text, 'this is a text file, renamed .jpg\n');
  const cut = join(root, 'batch/cut.jpg');
  await writeFile(cut, goodBytes.subarray(0, 400));
  const other = join(root, 'batch/other.png');
  await image(other, 'png', 2);
  const missing = join(root, 'batch/missing.jpg');
  const r = await runCommand(register, ['predict', '--model', modelDir, good, text, cut, missing, other]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /dermtl: 3 of 5 images failed \(see their "error" lines\)/);
  const out = lines(r.stdout);
  assert.deepEqual(
    out.map((l) => l.image),
    [good, text, cut, missing, other],
  );
  assert.deepEqual(Object.keys(out[0]), ['image', 'lesions', 'location']);
  const want = await model.predict(good, { top: 5 });
  assert.deepEqual(out[0].lesions, want.lesions);
  assert.deepEqual(out[0].location, want.location);
  assert.equal(out[0].lesions.length, TINY_LABELS.lesion.length);
  assert.equal(out[0].location.length, TINY_LABELS.location.length);
  assert.deepEqual(Object.keys(out[1]), ['image', 'error']);
  assert.match(out[1].error, /notes\.jpg: not a readable image/);
  assert.match(out[2].error, /cut\.jpg: cannot decode image .*truncated or corrupt/);
  assert.match(out[3].error, /missing\.jpg: no such file or folder/);
  assert.deepEqual(out[4].location, (await model.predict(other, { top: 5 })).location);
});

test('a folder: every image inside, recursive, sorted by path; other files skipped; --tta 10crop --top 2', async () => {
  const dir = join(root, 'folder');
  await image(join(dir, 'b.png'), 'png', 3);
  await image(join(dir, 'a.jpg'), 'jpeg', 4);
  await image(join(dir, 'sub/c.WEBP'), 'webp', 5);
  await image(join(dir, 'sub/deeper/d.jpeg'), 'jpeg', 6);
  await writeFile(join(dir, 'readme.txt'), 'not an image');
  await writeFile(join(dir, 'sub/labels.csv'), 'image,label\n');
  const r = await runCommand(register, ['predict', '--model', modelDir, '--tta', '10crop', '--top', '2', dir]);
  assert.equal(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  assert.deepEqual(
    out.map((l) => l.image),
    ['a.jpg', 'b.png', 'sub/c.WEBP', 'sub/deeper/d.jpeg'].map((f) => join(dir, f)),
  );
  for (const l of out) {
    assert.equal(l.lesions.length, 2);
    assert.equal(l.location.length, 2);
    assert.ok(l.lesions[0].p >= l.lesions[1].p);
  }
  const want = await model.predict(join(dir, 'sub/c.WEBP'), { tta: '10crop', top: 2 });
  assert.deepEqual(out[2].lesions, want.lesions);
  const empty = join(root, 'empty');
  await mkdir(empty);
  const re = await runCommand(register, ['predict', '--model', modelDir, empty]);
  assert.equal(re.code, 1);
  assert.match(lines(re.stdout)[0].error, /folder has no images/);
});

test('bad flags are usage errors (exit 2)', async () => {
  const img = join(root, 'flags.jpg');
  await image(img, 'jpeg', 7);
  for (const args of [
    ['--tta', '3crop'],
    ['--top', '0'],
    ['--top', 'x'],
  ]) {
    const r = await runCommand(register, ['predict', '--model', modelDir, ...args, img]);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
  }
});

test('without --model: the default model folder when present, else one line saying how to get one', async () => {
  const cwd = await tempDir('dermtl-predict-cwd-');
  const img = join(cwd, 'x.png');
  await image(img, 'png', 8);
  const run = () => spawnSync(process.execPath, [ENTRY, 'predict', 'x.png'], { cwd, encoding: 'utf8' });
  const missing = run();
  assert.equal(missing.status, 1);
  assert.equal(missing.stdout, '');
  assert.equal(
    missing.stderr,
    `dermtl: no model at ./${DEFAULT_MODEL_PATH}: run npm start first, or pass --model DIR\n`,
  );
  await cp(modelDir, join(cwd, DEFAULT_MODEL_PATH), { recursive: true });
  const found = run();
  assert.equal(found.status, 0, found.stderr);
  const [line] = lines(found.stdout);
  assert.equal(line.image, 'x.png');
  assert.deepEqual(line.location, (await model.predict(img, { top: 5 })).location);
});

test('--location: a fusion model\'s lesion head gets the site (lines carry "site"); an unknown site exits 1 naming the known ones', async () => {
  const { fusionModel } = await import('../serve/fusionFixture.ts');
  const fused = await fusionModel();
  const photo = fused.demo.loaded.samples[1].path;
  const fusion = await loadModel(fused.model, { threads: 1 });
  try {
    const r = await runCommand(register, ['predict', '--model', fused.model, '--location', 'leg', '--top', '3', photo]);
    assert.equal(r.code, 0, r.stderr);
    const [line] = lines(r.stdout);
    assert.deepEqual(Object.keys(line), ['image', 'lesions', 'location', 'site']);
    assert.deepEqual(line.site, { given: 'leg', used: true });
    assert.deepEqual(line.lesions, (await fusion.predict(photo, { location: 'leg', top: 3 })).lesions);
    const none = lines(
      (await runCommand(register, ['predict', '--model', fused.model, '--top', '3', photo])).stdout,
    )[0];
    assert.equal(none.site.given, null);
    assert.notDeepEqual(none.lesions, line.lesions);
    const bad = await runCommand(register, ['predict', '--model', fused.model, '--location', 'elbow', photo]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, '', 'refused before any image');
    assert.match(
      bad.stderr,
      /dermtl: unknown body site 'elbow'; this model's body sites are arm, back, chest, face, foot, hand, leg, scalp\n$/,
    );
  } finally {
    await fusion.dispose();
  }
  // a model without site inputs: predicted as without --location, the line says the site was not used
  const img = join(root, 'plain-site.jpg');
  await image(img, 'jpeg', 9);
  const r = await runCommand(register, ['predict', '--model', modelDir, '--location', 'face', img]);
  assert.equal(r.code, 0, r.stderr);
  const [line] = lines(r.stdout);
  assert.equal(line.site.used, false);
  assert.deepEqual(line.lesions, (await model.predict(img, { top: 5 })).lesions);
  assert.equal((await runCommand(register, ['predict', '--model', modelDir, '--location', 'moon', img])).code, 1);
});
