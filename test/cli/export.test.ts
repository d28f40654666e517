// dermtl export: a frozen run's heads-only model folder -> a self-contained model.onnx with the same predictions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { register as registerExport } from '../../src/cli/commands/export.ts';
import { loadModel } from '../../src/models/modelFile.ts';
import { trainRun } from '../../src/train/trainTask.ts';
import { runCommand } from '../data/helpers.ts';
import { demoSet, tempDir, tinyConfig } from '../train/fixture.ts';

test("dermtl export RUN --out DIR writes model.onnx with the whole network; the same predictions as the run's model", async () => {
  const demo = await demoSet();
  const root = await tempDir();
  const run = join(root, 'run');
  await trainRun({
    manifest: demo.manifest,
    out: run,
    task: 'mtl',
    folds: demo.folds,
    fold: 0,
    config: tinyConfig(join(demo.root, 'cache')),
    log: () => {},
    progress: false,
  });
  assert.ok((await readdir(join(run, 'model'))).includes('heads.onnx'));
  const out = join(root, 'exported');
  const r = await runCommand(registerExport, ['export', run, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^wrote .*exported \(model\.onnx \d+\.\d MB, from .*run[/\\]model\)$/m);
  const files = await readdir(out);
  assert.ok(files.includes('model.onnx') && !files.includes('heads.onnx'), files.join(' '));
  const [a, b] = [await loadModel(join(run, 'model'), { threads: 1 }), await loadModel(out, { threads: 1 })];
  try {
    assert.equal(b.manifest.trunk, undefined);
    assert.deepEqual(b.calibration, a.calibration);
    assert.ok(a.calibration, 'the tiny run is calibrated: export keeps it');
    assert.deepEqual(b.params(), a.params());
    const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i) * 50);
    assert.deepEqual(await a.predict(x, 1), await b.predict(x, 1));
  } finally {
    await a.release();
    await b.release();
  }
  // a model folder is a source too, and an existing model folder is replaced
  assert.equal((await runCommand(registerExport, ['export', out, '--out', out])).code, 0);
});

test('dermtl export: a source that is no run or model, or an --out holding other files, is refused naming it', async () => {
  const root = await tempDir();
  let r = await runCommand(registerExport, ['export', root, '--out', join(root, 'x')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /neither a run folder \(run\.json\) nor a model folder \(dermtl\.json\)/);
  const busy = join(root, 'busy');
  await mkdir(busy);
  await writeFile(join(busy, 'notes.txt'), 'mine');
  const model = join(root, 'm');
  await mkdir(model);
  await writeFile(join(model, 'dermtl.json'), '{}');
  r = await runCommand(registerExport, ['export', model, '--out', busy]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--out .*busy: a folder that is neither empty nor a dermtl model folder/);
});
