// Model folders: save -> load gives the same outputs (tiny net), the ONNX file stands alone (metadata, dynamic
// batch, standard ops, runs in onnxruntime-web's wasm backend in Node), and bad folders give clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ortWeb from 'onnxruntime-web';
import { GraphSession, OPSET, readMetadata, readModelInputs } from '../../src/graph/index.ts';
import { CAFFE_PREPROCESSING } from '../../src/image/index.ts';
import {
  loadModel,
  MODEL_FORMAT_VERSION,
  readParams,
  saveModel,
  serializeInference,
  type ModelToSave,
} from '../../src/models/modelFile.ts';
import { buildNetwork, collectParams, type NetworkSpec } from '../../src/models/network.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';

const SPEC: NetworkSpec = {
  trunk: { depth: 'tiny' },
  imageSize: 32,
  seed: 3,
  heads: { lesion: 3, location: 4, shared: { hidden: 12, dropout: 0.3 }, featureDropout: 0.1 },
};
const LABELS = { lesion: ['macule', 'papule', 'plaque'], location: ['face', 'trunk', 'arm', 'leg'] };

/** A "trained" model: the init of a training network with every param perturbed, so nothing is at its default. */
function trainedModel(): ModelToSave {
  const net = buildNetwork(SPEC, { batch: 2, mode: 'train' });
  const r = Rng.seeded(99);
  const trained = new Map(net.graph.params().map((p) => [p.name, p.data.map((v) => v + 0.01 * r.normal())]));
  return {
    network: SPEC,
    params: collectParams(net.graph, trained),
    labels: LABELS,
    preprocessing: { ...CAFFE_PREPROCESSING, size: 32, resizeShorter: 37 },
    config: { epochs: 3, lr: 0.001 },
    metrics: { mapClass: 0.5 },
  };
}

const images = (n: number, seed = 1) => {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: n * 3 * 32 * 32 }, () => r.normal(0, 50));
};

/** Reference outputs: the in-memory inference network with the same params, at batch n. */
async function reference(m: ModelToSave, x: Float32Array, n: number) {
  const net = buildNetwork(m.network, { batch: n, mode: 'inference', values: m.params, requireValues: true });
  const s = await GraphSession.fromGraph(net.graph);
  const out = await s.run({ image: x });
  await s.release();
  return { lesion: out.lesion_probs.data as Float32Array, location: out.location_probs.data as Float32Array };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const root = await mkdtemp(join(tmpdir(), 'dermtl-modelfile-'));
test.after(() => rm(root, { recursive: true, force: true }));
const model = trainedModel();
const dir = join(root, 'model');
await saveModel(dir, model);

test('save -> load: seven files, same outputs as the in-memory network to 1e-6 at batch 1 and 3 (dynamic N)', async () => {
  assert.deepEqual((await readdir(dir)).sort(), [
    'config.json',
    'dermtl.json',
    'explain.onnx',
    'labels.json',
    'metrics.json',
    'model.onnx',
    'preprocessing.json',
  ]);
  const m = await loadModel(dir, { threads: 1 });
  try {
    assert.deepEqual(m.labels, LABELS);
    assert.deepEqual(m.network, SPEC);
    assert.deepEqual(m.config, { epochs: 3, lr: 0.001 });
    assert.deepEqual(m.metrics, { mapClass: 0.5 });
    assert.equal(m.preprocessing.resizeShorter, 37);
    assert.equal(m.manifest.version, MODEL_FORMAT_VERSION);
    for (const n of [1, 3]) {
      const x = images(n, n);
      const got = await m.predict(x, n);
      const want = await reference(model, x, n);
      assert.equal(got.lesion!.length, n * 3);
      assert.equal(got.location!.length, n * 4);
      assert.ok(maxDiff(got.lesion!, want.lesion) <= 1e-6, `lesion ${maxDiff(got.lesion!, want.lesion)}`);
      assert.ok(maxDiff(got.location!, want.location) <= 1e-6, `location ${maxDiff(got.location!, want.location)}`);
      assert.ok(
        want.location.some((v) => v > 0.3) && want.lesion.some((v) => v < 0.45 || v > 0.55),
        'outputs are not trivially uniform',
      );
    }
    // Params come back bit-exact from the initializers (e.g. to continue training).
    const params = m.params();
    assert.equal(params.size, model.params.size);
    for (const [k, v] of model.params) assert.deepEqual(params.get(k), v, k);
  } finally {
    await m.release();
  }
});

test('model.onnx alone: opset 17, only standard ops, input image [N,3,32,32], labels/preprocessing/version in metadata_props', async () => {
  const bytes = new Uint8Array(await readFile(join(dir, 'model.onnx')));
  const proto = onnxProto.onnx.ModelProto.decode(bytes);
  assert.deepEqual(
    proto.opsetImport.map((o) => [o.domain ?? '', Number(o.version)]),
    [['', OPSET]],
  );
  assert.equal(OPSET, 17);
  const ops = new Set(proto.graph!.node!.map((n) => n.opType));
  assert.ok(
    [...ops].every((o) =>
      [
        'Conv',
        'Relu',
        'Add',
        'MaxPool',
        'GlobalAveragePool',
        'Flatten',
        'Gemm',
        'Sigmoid',
        'Softmax',
        'Identity',
      ].includes(o!),
    ),
    [...ops].join(),
  );
  assert.ok(proto.graph!.node!.every((n) => !n.domain));
  assert.deepEqual(readModelInputs(bytes), [{ name: 'image', shape: [-1, 3, 32, 32], dtype: 'float32' }]);
  assert.equal(proto.graph!.input![0].type!.tensorType!.shape!.dim![0].dimParam, 'N');
  assert.deepEqual(
    proto.graph!.output!.map((o) => [
      o.name,
      o.type!.tensorType!.shape!.dim![0].dimParam,
      Number(o.type!.tensorType!.shape!.dim![1].dimValue),
    ]),
    [
      ['lesion_probs', 'N', 3],
      ['location_probs', 'N', 4],
      ['conv5_x', 'N', 64],
    ],
  );
  const meta = readMetadata(bytes);
  assert.equal(meta['dermtl.format'], 'dermtl-model');
  assert.equal(meta['dermtl.format_version'], '1');
  assert.deepEqual(JSON.parse(meta['dermtl.lesion_labels']), LABELS.lesion);
  assert.deepEqual(JSON.parse(meta['dermtl.location_labels']), LABELS.location);
  assert.deepEqual(JSON.parse(meta['dermtl.preprocessing']).mean, [103.939, 116.779, 123.68]);
  assert.equal(JSON.parse(meta['dermtl.preprocessing']).channelOrder, 'BGR');
  assert.deepEqual(JSON.parse(meta['dermtl.network']), SPEC);
  assert.match(proto.docString!, /Input 'image' float32 \[N,3,32,32\]/);
});

test('model.onnx runs in onnxruntime-web (wasm backend, in Node) with the same outputs as onnxruntime-node', async () => {
  const bytes = new Uint8Array(await readFile(join(dir, 'model.onnx')));
  ortWeb.env.wasm.numThreads = 1;
  const s = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  try {
    const x = images(2, 5);
    const out = await s.run({ image: new ortWeb.Tensor('float32', x, [2, 3, 32, 32]) });
    const want = await reference(model, x, 2);
    assert.deepEqual(out.lesion_probs.dims, [2, 3]);
    // Different kernels (wasm SIMD vs native MLAS): equal to fp32 rounding of the summation order.
    assert.ok(maxDiff(out.lesion_probs.data as Float32Array, want.lesion) < 1e-5);
    assert.ok(maxDiff(out.location_probs.data as Float32Array, want.location) < 1e-5);
  } finally {
    await s.release();
  }
});

test('saving refuses missing params and label counts that do not fit the heads; the old folder survives', async () => {
  const params = new Map(model.params);
  params.delete('res3a_branch1/weight');
  await assert.rejects(
    saveModel(dir, { ...model, params }),
    (e) => e instanceof DermtlError && /res3a_branch1\/weight are missing/.test(e.message),
  );
  await assert.rejects(
    saveModel(dir, { ...model, labels: { ...LABELS, location: ['face', 'arm'] } }),
    (e) => e instanceof DermtlError && /location: 2 names, the network's location head has 4 outputs/.test(e.message),
  );
  await assert.rejects(
    saveModel(dir, { ...model, labels: { ...LABELS, lesion: ['a', 'a', 'b'] } }),
    /lesion: names repeat/,
  );
  const m = await loadModel(dir, { session: false });
  assert.deepEqual(m.labels, LABELS);
});

test('saving again replaces the folder atomically (no temp folders left)', async () => {
  const other = join(root, 'replace');
  await saveModel(other, model);
  await writeFile(join(other, 'stray.txt'), 'old');
  await saveModel(other, { ...model, metrics: { mapClass: 0.75 } });
  assert.deepEqual((await readdir(other)).includes('stray.txt'), false);
  assert.deepEqual((await loadModel(other, { session: false })).metrics, { mapClass: 0.75 });
  assert.deepEqual(
    (await readdir(root)).filter((n) => n.startsWith('.tmp-')),
    [],
  );
});

/** A copy of the saved folder with one change. */
async function variant(name: string, change: (d: string) => Promise<void>): Promise<string> {
  const d = join(root, name);
  await saveModel(d, model);
  await change(d);
  return d;
}

test('loading bad folders: clear DermtlErrors naming the folder or file', async () => {
  const fails = (p: Promise<unknown>, re: RegExp) =>
    assert.rejects(p, (e) => e instanceof DermtlError && re.test(e.message));
  await fails(loadModel(join(root, 'nope')), /nope: no such folder/);
  await fails(loadModel(join(dir, 'model.onnx')), /model\.onnx: not a folder/);
  await fails(loadModel(root), /is not a dermtl model folder \(it has no dermtl\.json\)/);
  const setVersion = (v: number) => async (d: string) => {
    const j = JSON.parse(await readFile(join(d, 'dermtl.json'), 'utf8'));
    await writeFile(join(d, 'dermtl.json'), JSON.stringify({ ...j, version: v }));
  };
  await fails(loadModel(await variant('v2', setVersion(2))), /model format version 2; this dermtl reads version 1/);
  await fails(
    loadModel(await variant('nometrics', (d) => rm(join(d, 'metrics.json')))),
    /incomplete dermtl model folder[\s\S]*metrics\.json: missing/,
  );
  await fails(
    loadModel(await variant('badjson', (d) => writeFile(join(d, 'labels.json'), '{"lesion": ['))),
    /labels\.json: not valid JSON/,
  );
  await fails(
    loadModel(
      await variant('relabel', (d) =>
        writeFile(join(d, 'labels.json'), JSON.stringify({ ...LABELS, lesion: ['a', 'b', 'c'] })),
      ),
    ),
    /model\.onnx: its lesion labels differ from labels\.json/,
  );
  await fails(
    loadModel(
      await variant('fewer', (d) => writeFile(join(d, 'labels.json'), JSON.stringify({ ...LABELS, lesion: ['a'] }))),
    ),
    /labels\.json[\s\S]*lesion: 1 names, the network's lesion head has 3 outputs/,
  );
  await fails(
    loadModel(
      await variant('prep', (d) =>
        writeFile(join(d, 'preprocessing.json'), JSON.stringify({ ...CAFFE_PREPROCESSING, channelOrder: 'HSV' })),
      ),
    ),
    /preprocessing\.json: unexpected content[\s\S]*channelOrder/,
  );
  await fails(
    loadModel(await variant('notonnx', (d) => writeFile(join(d, 'model.onnx'), 'hello'))),
    /model\.onnx: not (a readable ONNX model|written by dermtl)/,
  );
});

test('serializeInference refuses graphs with trainable params or batch-dependent ops', () => {
  const train = buildNetwork(SPEC, { batch: 1, mode: 'train' });
  assert.throws(() => serializeInference(train.graph), /params are graph inputs/);
  const inf = buildNetwork(SPEC, { batch: 1, mode: 'inference' });
  inf.graph.output(inf.graph.reshape(inf.trunk.features, [1, -1]), 'flat');
  assert.throws(() => serializeInference(inf.graph), /Reshape may depend on the batch size/);
  assert.ok(serializeInference(inf.graph, { dynamicBatch: false }).length > 1000);
});

test('readParams ignores non-param initializers', () => {
  const net = buildNetwork(SPEC, { batch: 1, mode: 'inference' });
  const names = [...readParams(serializeInference(net.graph)).keys()];
  assert.equal(names.length, net.graph.params().length);
  assert.ok(names.every((n) => /\/(weight|bias)$/.test(n)));
});
