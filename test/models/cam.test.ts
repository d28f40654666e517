// The Grad-CAM graph (models/cam.ts): scores, probabilities and every label's map against an fp64 reference whose
// gradients are central finite differences with respect to the conv5_x activation itself; model.onnx's conv5_x output
// feeds it to the same probabilities as the model's; the saved explain.onnx runs in onnxruntime-web as in -node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ortWeb from 'onnxruntime-web';
import { CAFFE_PREPROCESSING } from '../../src/image/index.ts';
import { GraphSession } from '../../src/graph/index.ts';
import {
  buildCamGraphOn,
  CAM_INPUT,
  CAM_OUTPUTS,
  camModelBytes,
  conv5Shape,
  withConv5Output,
} from '../../src/models/cam.ts';
import { loadModel, saveModel, serializeInference } from '../../src/models/modelFile.ts';
import { buildNetwork, collectParams, type NetworkSpec } from '../../src/models/network.ts';
import { trunkLayout } from '../../src/models/resnet.ts';
import { Rng } from '../../src/util/rng.ts';

const randn = (seed: number, n: number, sd = 1) => {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: n }, () => r.normal(0, sd));
};

const C = 6,
  H = 3,
  W = 3,
  HID = 5,
  P = 3,
  Q = 4;

/** fp64 heads: pooled A -> FC + ReLU -> lesion logits [P] and location logits [Q]. */
function scores(a: Float64Array, v: Map<string, Float32Array>): number[] {
  const f = Array.from({ length: C }, (_, c) => {
    let s = 0;
    for (let i = 0; i < H * W; i++) s += a[c * H * W + i];
    return s / (H * W);
  });
  const lin = (x: number[], w: Float32Array, b: Float32Array, out: number) =>
    Array.from({ length: out }, (_, o) => x.reduce((s, xi, i) => s + xi * w[o * x.length + i], b[o]));
  const h = lin(f, v.get('heads/shared/weight')!, v.get('heads/shared/bias')!, HID).map((x) => Math.max(0, x));
  return [
    ...lin(h, v.get('heads/lesion/weight')!, v.get('heads/lesion/bias')!, P),
    ...lin(h, v.get('heads/location/weight')!, v.get('heads/location/bias')!, Q),
  ];
}

test('Grad-CAM graph: scores, probabilities and all maps match finite differences of an fp64 reference', async () => {
  const spec: NetworkSpec = {
    trunk: { depth: 'tiny' },
    imageSize: 96,
    heads: { lesion: P, location: Q, shared: { hidden: HID, dropout: 0.5 } },
    seed: 1,
  };
  const values = new Map([
    ['heads/shared/weight', randn(1, HID * C)],
    ['heads/shared/bias', randn(2, HID, 0.3)],
    ['heads/lesion/weight', randn(3, P * HID)],
    ['heads/lesion/bias', randn(4, P)],
    ['heads/location/weight', randn(5, Q * HID)],
    ['heads/location/bias', randn(6, Q)],
  ]);
  // the tiny trunk's conv5_x at 96 is 64 channels at 3x3; the check runs on a small activation of C channels
  assert.deepEqual(conv5Shape(trunkLayout('tiny'), 96), [64, 3, 3]);
  const small = buildCamGraphOn(spec, values, [C, H, W]);
  assert.deepEqual(
    small.inputs.map((i) => [i.name, i.shape]),
    [[CAM_INPUT, [1, C, H, W]]],
  );
  assert.deepEqual(small.outputs.map((o) => o.name).sort(), Object.values(CAM_OUTPUTS).sort());
  const s = await GraphSession.fromGraph(small);
  const a32 = Float32Array.from(randn(7, C * H * W), (x) => Math.max(0, x + 0.3));
  const out = await s.run({ [CAM_INPUT]: a32 });
  await s.release();
  const a = Float64Array.from(a32);
  const z = scores(a, values);
  const got = [
    ...(out[CAM_OUTPUTS.lesionScores].data as Float32Array),
    ...(out[CAM_OUTPUTS.locationScores].data as Float32Array),
  ];
  got.forEach((v, k) => assert.ok(Math.abs(v - z[k]) < 1e-4, `score ${k}: ${v} vs ${z[k]}`));
  const lp = out[CAM_OUTPUTS.lesionProbs].data as Float32Array;
  lp.forEach((v, k) => assert.ok(Math.abs(v - 1 / (1 + Math.exp(-z[k]))) < 1e-5));
  const ez = z.slice(P).map(Math.exp);
  (out[CAM_OUTPUTS.locationProbs].data as Float32Array).forEach((v, k) =>
    assert.ok(Math.abs(v - ez[k] / ez.reduce((x, y) => x + y)) < 1e-5),
  );

  // finite differences: dz_k/dA_cij, its spatial mean per channel, then ReLU(sum_c alpha_kc A_c)
  const eps = 1e-4;
  const grad = Array.from({ length: P + Q }, () => new Float64Array(C * H * W));
  for (let i = 0; i < a.length; i++) {
    const up = Float64Array.from(a),
      down = Float64Array.from(a);
    up[i] += eps;
    down[i] -= eps;
    const zu = scores(up, values),
      zd = scores(down, values);
    for (let k = 0; k < P + Q; k++) grad[k][i] = (zu[k] - zd[k]) / (2 * eps);
  }
  const maps = [
    ...(out[CAM_OUTPUTS.lesionCam].data as Float32Array),
    ...(out[CAM_OUTPUTS.locationCam].data as Float32Array),
  ];
  assert.deepEqual(out[CAM_OUTPUTS.lesionCam].dims, [1, P, H, W]);
  assert.deepEqual(out[CAM_OUTPUTS.locationCam].dims, [1, Q, H, W]);
  let nonzero = 0;
  for (let k = 0; k < P + Q; k++) {
    const alpha = Array.from(
      { length: C },
      (_, c) => grad[k].subarray(c * H * W, (c + 1) * H * W).reduce((x, y) => x + y) / (H * W),
    );
    for (let p = 0; p < H * W; p++) {
      const ref = Math.max(
        0,
        alpha.reduce((sum, al, c) => sum + al * a[c * H * W + p], 0),
      );
      const v = maps[k * H * W + p];
      assert.ok(Math.abs(v - ref) < 1e-4 * (1 + Math.abs(ref)), `map ${k} at ${p}: ${v} vs ${ref}`);
      if (ref > 1e-3) nonzero++;
    }
  }
  assert.ok(nonzero > (P + Q) * H * W * 0.2, `maps are mostly zero (${nonzero}); the check would be weak`);
});

test('model.onnx with conv5_x + the CAM graph give the model probabilities (tiny trunk, dynamic batch)', async () => {
  const spec: NetworkSpec = {
    trunk: { depth: 'tiny' },
    imageSize: 64,
    heads: { lesion: 3, location: 2, shared: { hidden: 7, dropout: 0.5 } },
    seed: 3,
  };
  const net = buildNetwork(spec, { batch: 1, mode: 'inference' });
  const params = collectParams(net.graph);
  const model = withConv5Output(serializeInference(net.graph, {}), spec);
  assert.equal(withConv5Output(model, spec), model, 'idempotent');
  const m = await GraphSession.fromBytes(model);
  const image = randn(9, 2 * 3 * 64 * 64, 50);
  const out = await m.run({ image: { data: image, dims: [2, 3, 64, 64] } });
  await m.release();
  assert.deepEqual(out[CAM_INPUT].dims, [2, 64, 2, 2]);
  const e = await GraphSession.fromBytes(camModelBytes(spec, params));
  const first = (out[CAM_INPUT].data as Float32Array).slice(0, 64 * 4);
  const cam = await e.run({ [CAM_INPUT]: first });
  await e.release();
  const close = (x: Float32Array, y: Float32Array) => x.every((v, i) => Math.abs(v - y[i]) < 1e-5);
  assert.ok(
    close(cam[CAM_OUTPUTS.lesionProbs].data as Float32Array, (out.lesion_probs.data as Float32Array).slice(0, 3)),
  );
  assert.ok(
    close(cam[CAM_OUTPUTS.locationProbs].data as Float32Array, (out.location_probs.data as Float32Array).slice(0, 2)),
  );
});

test('a saved folder ships explain.onnx (float16 head weights): the same maps in onnxruntime-web (wasm) as in onnxruntime-node', async () => {
  const root = await mkdtemp(join(tmpdir(), 'dermtl-cam-'));
  try {
    const spec: NetworkSpec = {
      trunk: { depth: 'tiny' },
      imageSize: 64,
      heads: { lesion: 3, location: 2, shared: { hidden: 7, dropout: 0.5 } },
      seed: 4,
    };
    const net = buildNetwork(spec, { batch: 1, mode: 'inference' });
    const r = Rng.seeded(5);
    const params = new Map(
      [...collectParams(net.graph)].map(([k, v]) => [k, k.startsWith('heads/') ? v.map(() => r.normal(0, 0.5)) : v]),
    );
    await saveModel(join(root, 'm'), {
      network: spec,
      params,
      labels: { lesion: ['a', 'b', 'c'], location: ['x', 'y'] },
      preprocessing: { ...CAFFE_PREPROCESSING, size: 64, resizeShorter: 72 },
    });
    const m = await loadModel(join(root, 'm'), { threads: 1 });
    const out = await m.predict(randn(6, 3 * 64 * 64, 50), 1, { conv5: true });
    const bytes = await m.explainOnnx();
    await m.release();
    const proto = onnxProto.onnx.ModelProto.decode(bytes);
    assert.ok(
      proto.graph!.initializer!.some((t) => t.dataType === onnxProto.onnx.TensorProto.DataType.FLOAT16),
      'float16 weights',
    );
    const node = await GraphSession.fromBytes(bytes);
    const want = await node.run({ [CAM_INPUT]: out.conv5! });
    await node.release();
    ortWeb.env.wasm.numThreads = 1;
    const web = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    const got = await web.run({ [CAM_INPUT]: new ortWeb.Tensor('float32', out.conv5!, [1, 64, 2, 2]) });
    await web.release();
    for (const name of Object.values(CAM_OUTPUTS)) {
      const a = got[name].data as Float32Array,
        b = want[name].data as Float32Array;
      assert.equal(a.length, b.length, name);
      assert.ok(
        a.every((v, i) => Math.abs(v - b[i]) < 1e-5 * (1 + Math.abs(b[i]))),
        name,
      );
    }
    // float16 head weights: the probabilities stay within 1e-3 of model.onnx's float32 ones
    (want[CAM_OUTPUTS.lesionProbs].data as Float32Array).forEach((v, i) =>
      assert.ok(Math.abs(v - out.lesion![i]) < 1e-3),
    );
    assert.ok(
      (want[CAM_OUTPUTS.lesionCam].data as Float32Array).some((v) => v > 0),
      'some map is non-zero',
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
