// npm start's default model (MTL, fold 0) is written whole: its frozen run stored the heads only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/models/modelFile.ts';
import { writeDefaultModel } from '../../src/cli/start.ts';
import { tinyModelDir } from '../serve/helpers.ts';

const root = await mkdtemp(join(tmpdir(), 'dermtl-default-model-'));
test.after(() => rm(root, { recursive: true, force: true }));

test('writeDefaultModel: a heads-only MTL fold-0 model becomes a whole model.onnx (same params); whole or absent: left alone', async () => {
  const study = join(root, 'study');
  assert.equal(await writeDefaultModel(study), null, 'no MTL model: nothing to do');
  const whole = await loadModel(await tinyModelDir(root), { session: false });
  const dir = join(study, 'models', 'mtl', 'fold-0', 'model');
  await saveModel(
    dir,
    { network: whole.network, params: whole.params(), labels: whole.labels, preprocessing: whole.preprocessing },
    { trunk: 'reference' },
  );
  const lean = (await loadModel(dir, { session: false })).params();
  const lines: string[] = [];
  assert.equal(await writeDefaultModel(study, (l) => lines.push(l)), dir);
  const files = await readdir(dir);
  assert.ok(files.includes('model.onnx') && !files.includes('heads.onnx'), files.join(' '));
  assert.match(lines.join('\n'), /default model .*written whole/);
  const m = await loadModel(dir, { session: false });
  assert.equal(m.manifest.trunk, undefined);
  assert.deepEqual(m.params(), lean);
  const before = (await stat(join(dir, 'model.onnx'))).mtimeMs;
  assert.equal(await writeDefaultModel(study), dir);
  assert.equal((await stat(join(dir, 'model.onnx'))).mtimeMs, before, 'a whole model is not written again');
});
