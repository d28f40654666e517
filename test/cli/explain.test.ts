// dermtl explain: overlays for the top labels or the --label ones, the JSON with every label's raw map (the same as
// predict(..., { explain: true })), unknown labels listed with the known ones, unreadable images named, exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { register } from '../../src/cli/commands/explain.ts';
import { loadModel } from '../../src/serve/api.ts';
import { runCommand, tempDir } from '../data/helpers.ts';
import { rampImage, TINY_LABELS, tinyModelDir } from '../serve/helpers.ts';

const root = await tempDir('dermtl-explain-');
const modelDir = await tinyModelDir(root);
const photo = join(root, 'photo.jpg');
await writeFile(photo, await rampImage('jpeg', 60, 45, 1));

test('default: overlays of the 3 most probable lesions and the top location, and the raw maps of every label', async () => {
  const out = join(root, 'out-default');
  const r = await runCommand(register, ['explain', photo, '--model', modelDir, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const files = (await readdir(out)).sort();
  assert.equal(files.filter((f) => f.endsWith('.png')).length, 4);
  assert.ok(files.includes('photo.json'));
  const json = JSON.parse(await readFile(join(out, 'photo.json'), 'utf8'));
  const model = await loadModel(modelDir, { threads: 1 });
  const want = await model.predict(photo, { explain: true });
  await model.dispose();
  assert.deepEqual(json.lesions, want.lesions);
  const e = json.explanation;
  assert.equal(e.method, 'grad-cam');
  assert.deepEqual(e.grid, { h: 1, w: 1 }); // the tiny trunk at 32 px: a 1x1 conv5_x
  assert.deepEqual(
    e.lesions.map((m: { label: string }) => m.label),
    TINY_LABELS.lesion,
  );
  assert.deepEqual(
    e.location.map((m: { label: string }) => m.label),
    TINY_LABELS.location,
  );
  assert.deepEqual(
    e.lesions.map((m: { map: number[] }) => m.map),
    want.explanation!.lesions.map((m) => m.map),
  );
  for (const m of [...e.lesions, ...e.location])
    assert.ok(m.map.every((v: number) => v >= 0) && m.max === Math.max(0, ...m.map));
  const top = want.lesions.slice(0, 3).map((l) => `photo-lesion-${l.label}.png`);
  for (const f of [...top, `photo-location-${want.location[0].label}.png`]) assert.ok(files.includes(f), f);
  const meta = await sharp(join(out, top[0])).metadata();
  assert.equal(meta.format, 'png');
  assert.ok(meta.width! >= 60 && meta.height! > 45, `${meta.width}x${meta.height}: photo plus caption panel`);
});

test('--label picks labels of either head; an unknown one fails before any file, listing the known labels', async () => {
  const out = join(root, 'out-labels');
  const r = await runCommand(register, [
    'explain',
    photo,
    '--model',
    modelDir,
    '--out',
    out,
    '--label',
    'papule',
    'arm',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await readdir(out)).sort(), ['photo-lesion-papule.png', 'photo-location-arm.png', 'photo.json']);
  const bad = join(root, 'out-bad');
  const b = await runCommand(register, [
    'explain',
    photo,
    '--model',
    modelDir,
    '--out',
    bad,
    '--label',
    'papule',
    'elbow',
  ]);
  assert.notEqual(b.code, 0);
  assert.match(
    b.stderr,
    /--label: unknown label 'elbow'; the model's lesion labels are macule, papule, plaque and its body locations face, trunk, arm, leg/,
  );
  await assert.rejects(readdir(bad), { code: 'ENOENT' });
});

test('an unreadable image is named, the others are explained, the exit status is non-zero', async () => {
  const out = join(root, 'out-mixed');
  const text = join(root, 'notes.jpg');
  await writeFile(text, 'not an image\n');
  const r = await runCommand(register, [
    'explain',
    text,
    photo,
    join(root, 'missing.jpg'),
    '--model',
    modelDir,
    '--out',
    out,
  ]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /notes\.jpg/);
  assert.match(r.stderr, /missing\.jpg: cannot read it \(ENOENT\)/);
  assert.match(r.stderr, /2 of 3 images failed/);
  assert.ok((await readdir(out)).includes('photo.json'));
});

test("--location: a fusion model's maps and scores use the site (IMG.json says so); an unknown one fails before any file", async () => {
  const { fusionModel } = await import('../serve/fusionFixture.ts');
  const fused = await fusionModel();
  const image = fused.demo.loaded.samples[2].path;
  const out = join(root, 'out-site');
  const r = await runCommand(register, ['explain', image, '--model', fused.model, '--out', out, '--location', 'scalp']);
  assert.equal(r.code, 0, r.stderr);
  const [json] = (await readdir(out)).filter((f) => f.endsWith('.json'));
  const doc = JSON.parse(await readFile(join(out, json), 'utf8'));
  assert.deepEqual(doc.site, { given: 'scalp', used: true });
  const model = await loadModel(fused.model, { threads: 1 });
  const want = await model.predict(image, { explain: true, location: 'scalp' });
  await model.dispose();
  assert.deepEqual(doc.lesions, want.lesions);
  assert.deepEqual(
    doc.explanation.lesions.map((m: { score: number }) => m.score),
    want.explanation!.lesions.map((m) => m.score),
  );
  const bad = join(root, 'out-site-bad');
  const b = await runCommand(register, ['explain', image, '--model', fused.model, '--out', bad, '--location', 'elbow']);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /unknown body site 'elbow'; this model's body sites are arm, back/);
  await assert.rejects(readdir(bad), { code: 'ENOENT' });
});
