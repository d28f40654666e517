// The library API on a heads-only model folder (a frozen-trunk run's model/): it loads from the folder or its
// heads.onnx path, predicts like the same model saved whole, and serves the whole network's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel as loadModelFolder, saveModel } from '../../src/models/modelFile.ts';
import { loadModel } from '../../src/serve/api.ts';
import { rampImage, tinyModelDir } from './helpers.ts';

const root = await mkdtemp(join(tmpdir(), 'dermtl-lean-serve-'));
test.after(() => rm(root, { recursive: true, force: true }));

test("loadModel on a heads-only folder: onnxPath null, the whole model's bytes, the same predictions as the exported folder", async () => {
  // the tiny model's trunk is its seeded init, so its heads can be stored alone
  const whole = await loadModelFolder(await tinyModelDir(root), { session: false });
  const lean = join(root, 'lean');
  await saveModel(
    lean,
    { network: whole.network, params: whole.params(), labels: whole.labels, preprocessing: whole.preprocessing },
    { trunk: 'reference' },
  );
  const exported = join(root, 'exported');
  const leanLoaded = await loadModelFolder(lean, { session: false });
  await saveModel(exported, {
    network: leanLoaded.network,
    params: leanLoaded.params(),
    labels: leanLoaded.labels,
    preprocessing: leanLoaded.preprocessing,
  });
  const image = await rampImage('jpeg');
  const a = await loadModel(lean, { threads: 1 });
  const b = await loadModel(join(lean, 'heads.onnx'), { threads: 1 });
  const c = await loadModel(exported, { threads: 1 });
  try {
    assert.equal(a.onnxPath, null);
    assert.equal(c.onnxPath, join(exported, 'model.onnx'));
    assert.equal(b.dir, lean);
    assert.ok(a.onnx.byteLength > 0);
    const [pa, pc] = [await a.predict(image, { tta: '10crop' }), await c.predict(image, { tta: '10crop' })];
    assert.deepEqual(pa.lesions, pc.lesions);
    assert.deepEqual(pa.location, pc.location);
  } finally {
    await a.dispose();
    await b.dispose();
    await c.dispose();
  }
});
