// Model folders without their trunk (frozen-trunk runs): heads.onnx + a trunk reference; loadModel rebuilds the
// whole network byte for byte as a full save writes it, heads.onnx runs on its own, and a bad folder is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphSession } from '../../src/graph/index.ts';
import { CAFFE_PREPROCESSING } from '../../src/image/index.ts';
import { HEAD_PREFIX } from '../../src/models/heads.ts';
import { loadModel, readParams, saveModel, type ModelToSave } from '../../src/models/modelFile.ts';
import { buildNetwork, collectParams, type NetworkSpec } from '../../src/models/network.ts';
import { HEADS_FILE, HEADS_INPUT } from '../../src/models/trunkReference.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { fromHalf, toHalf } from '../../src/util/float16.ts';
import { Rng } from '../../src/util/rng.ts';

const SPEC: NetworkSpec = {
  trunk: { depth: 'tiny' },
  imageSize: 32,
  seed: 5,
  heads: { lesion: 3, location: 4, shared: { hidden: 12, dropout: 0.3 }, featureDropout: 0 },
};
const LABELS = { lesion: ['macule', 'papule', 'plaque'], location: ['face', 'trunk', 'arm', 'leg'] };

/** A frozen-trunk model: the trunk at its (seeded) init, the heads perturbed as if trained. */
function frozenModel(): ModelToSave {
  const net = buildNetwork(SPEC, { batch: 2, mode: 'train', trainable: 'heads' });
  const r = Rng.seeded(7);
  const trained = new Map(
    net.graph
      .params()
      .filter((p) => p.name.startsWith(HEAD_PREFIX))
      .map((p) => [p.name, p.data.map((v) => v + 0.05 * r.normal())]),
  );
  return {
    network: SPEC,
    params: collectParams(net.graph, trained),
    labels: LABELS,
    preprocessing: { ...CAFFE_PREPROCESSING, size: 32, resizeShorter: 36 },
    config: { mode: 'frozen' },
    metrics: {},
  };
}

/** `m` with its head weight matrices rounded to float16 (what heads.onnx stores; biases stay float32). */
function halfHeads(m: ModelToSave): ModelToSave {
  const params = new Map(
    [...m.params].map(([k, v]) => [
      k,
      k.startsWith(HEAD_PREFIX) && k.endsWith('/weight') ? v.map((x) => fromHalf(toHalf(x))) : v,
    ]),
  );
  return { ...m, params };
}

const root = await mkdtemp(join(tmpdir(), 'dermtl-trunkref-'));
test.after(() => rm(root, { recursive: true, force: true }));
const model = frozenModel();
const lean = join(root, 'lean');
const full = join(root, 'full');
await saveModel(lean, model, { trunk: 'reference' });
await saveModel(full, halfHeads(model));

test('a lean folder holds heads.onnx (float16 weights) and the trunk reference; loadModel rebuilds the full model.onnx byte for byte', async () => {
  const files = await readdir(lean);
  for (const f of ['config.json', 'dermtl.json', 'heads.onnx', 'labels.json', 'metrics.json', 'preprocessing.json'])
    assert.ok(files.includes(f), f);
  assert.ok(!files.includes('model.onnx'));
  assert.ok(!files.includes('explain.onnx'), 'a heads-only folder builds explain.onnx on use');
  const manifest = JSON.parse(await readFile(join(lean, 'dermtl.json'), 'utf8'));
  assert.deepEqual(manifest.trunk, { weights: 'random', seed: 5 });
  assert.ok(manifest.files.includes(HEADS_FILE) && !manifest.files.includes('model.onnx'));
  const headsBytes = (await readFile(join(lean, HEADS_FILE))).byteLength;
  const fullBytes = (await readFile(join(full, 'model.onnx'))).byteLength;
  assert.ok(headsBytes < fullBytes / 2, `${headsBytes} vs ${fullBytes}`);
  const f32 = join(root, 'f32');
  await saveModel(f32, model);
  const a = await loadModel(lean, { threads: 1 });
  const b = await loadModel(full, { threads: 1 });
  try {
    assert.deepEqual(Buffer.from(a.onnx), Buffer.from(await readFile(join(full, 'model.onnx'))));
    assert.deepEqual([...a.params().keys()].sort(), [...b.params().keys()].sort());
    const x = Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i) * 60);
    assert.deepEqual(await a.predict(x, 2), await b.predict(x, 2));
    assert.deepEqual(
      readParams(await a.explainOnnx()),
      readParams(new Uint8Array(await readFile(join(full, 'explain.onnx')))),
    );
    // against the float32 model: float16 weights move the probabilities by rounding only
    const c = await loadModel(f32, { threads: 1 });
    const [pa, pc] = [await a.predict(x, 2), await c.predict(x, 2)];
    await c.release();
    for (const k of ['lesion', 'location'] as const)
      for (let i = 0; i < pa[k]!.length; i++) assert.ok(Math.abs(pa[k]![i] - pc[k]![i]) < 1e-3);
    // a lean model saved again in full has the same params (what dermtl export does)
    const again = join(root, 'again');
    await saveModel(again, {
      network: a.network,
      params: a.params(),
      labels: a.labels,
      preprocessing: a.preprocessing,
      config: a.config,
      metrics: a.metrics,
    });
    assert.deepEqual(readParams(new Uint8Array(await readFile(join(again, 'model.onnx')))), b.params());
  } finally {
    await a.release();
    await b.release();
  }
});

test('heads.onnx runs on its own: pooled features -> the same probabilities as the full model', async () => {
  const m = await loadModel(full, { threads: 1 });
  const trunk = buildNetwork(SPEC, { batch: 1, mode: 'inference', values: m.params(), requireValues: true });
  trunk.graph.output(trunk.trunk.features);
  const s = await GraphSession.fromBytes(new Uint8Array(await readFile(join(lean, HEADS_FILE))), { threads: 1 });
  const whole = await GraphSession.fromGraph(trunk.graph);
  try {
    const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.cos(i) * 60);
    const feats = await whole.run({ image: x }, [trunk.trunk.features.name, 'lesion_probs']);
    const f = feats[trunk.trunk.features.name].data as Float32Array;
    const out = await s.run({ [HEADS_INPUT]: { data: f, dims: [1, f.length] } });
    const want = feats.lesion_probs.data as Float32Array;
    const got = out.lesion_probs.data as Float32Array;
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-6);
  } finally {
    await s.release();
    await whole.release();
    await m.release();
  }
});

test('a lean folder without heads.onnx, or naming another trunk, is refused with the file named', async () => {
  const copy = async (name: string, change: (d: string) => Promise<void>) => {
    const d = join(root, name);
    await saveModel(d, model, { trunk: 'reference' });
    await change(d);
    return d;
  };
  const noHeads = await copy('noheads', (d) => rm(join(d, HEADS_FILE)));
  await assert.rejects(
    loadModel(noHeads),
    (e: unknown) =>
      e instanceof DermtlError &&
      /incomplete dermtl model folder/.test(e.message) &&
      /heads\.onnx: missing/.test(e.message),
  );
  const other = await copy('other', async (d) => {
    const m = JSON.parse(await readFile(join(d, 'dermtl.json'), 'utf8'));
    await writeFile(join(d, 'dermtl.json'), JSON.stringify({ ...m, trunk: { weights: 'random', seed: 6 } }));
  });
  await assert.rejects(
    loadModel(other),
    (e: unknown) =>
      e instanceof DermtlError &&
      /dermtl\.json: the model's trunk is/.test(e.message) &&
      /dermtl export/.test(e.message),
  );
});
