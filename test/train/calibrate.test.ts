import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphSession } from '../../src/graph/index.ts';
import { readMetadata } from '../../src/graph/onnx.ts';
import { foldTemperatures } from '../../src/models/calibration.ts';
import { HEAD_TENSORS } from '../../src/models/heads.ts';
import { loadModel, METADATA_KEYS, serializeInference } from '../../src/models/modelFile.ts';
import { collectParams, type NetworkSpec } from '../../src/models/network.ts';
import { fitLesions, MIN_LABEL_EXAMPLES } from '../../src/train/calibrate.ts';
import { buildFeaturesNetwork, FEATURES_INPUT } from '../../src/train/frozen.ts';
import { trainRun } from '../../src/train/trainTask.ts';
import { Rng } from '../../src/util/rng.ts';
import { sample } from '../eval/helpers.ts';
import { demoSet, tempDir, tinyConfig } from './fixture.ts';

const SPEC: NetworkSpec = {
  trunk: { depth: 'tiny' },
  imageSize: 32,
  seed: 3,
  heads: { lesion: 3, location: 4, shared: { hidden: 8, dropout: 0.5 } },
};

async function probs(
  params: ReadonlyMap<string, Float32Array>,
  features: Float32Array,
  n: number,
): Promise<{ lesion: Float32Array; location: Float32Array }> {
  const net = buildFeaturesNetwork(SPEC, 16, 1, 'inference', { values: params });
  const s = await GraphSession.fromBytes(serializeInference(net.graph), { threads: 1 });
  const out = await s.run({ [FEATURES_INPUT]: { data: features, dims: [n, 16] } });
  await s.release();
  return {
    lesion: out[HEAD_TENSORS.lesionProbs].data as Float32Array,
    location: out[HEAD_TENSORS.locationProbs].data as Float32Array,
  };
}

test('folding temperatures into the heads divides each lesion logit by its T and the location logits by theirs', async () => {
  const params = collectParams(buildFeaturesNetwork(SPEC, 16, 1, 'train').graph);
  const rng = Rng.seeded(4);
  const n = 5;
  // moderate logits: float32 probabilities near 0 or 1 lose the digits a logit needs
  const features = Float32Array.from({ length: n * 16 }, () => rng.normal(0, 0.5));
  const t = { lesion: [2, 0.5, 1], location: 3 };
  const raw = await probs(params, features, n);
  const cal = await probs(foldTemperatures(params, t), features, n);
  const logit = (p: number) => Math.log(p / (1 - p));
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++)
      assert.ok(Math.abs(logit(cal.lesion[i * 3 + c]) - logit(raw.lesion[i * 3 + c]) / t.lesion[c]) < 1e-3);
    // softmax: log-ratios to class 0 shrink by T
    for (let c = 1; c < 4; c++) {
      const ratio = (p: Float32Array) => Math.log(p[i * 4 + c] / p[i * 4]);
      assert.ok(Math.abs(ratio(cal.location) - ratio(raw.location) / t.location) < 1e-3);
    }
  }
  assert.equal(foldTemperatures(params, {}).get('heads/lesion/weight'), params.get('heads/lesion/weight'));
});

test('lesion temperatures: a label with enough validation positives and negatives gets its own, the others the shared one', () => {
  const rng = Rng.seeded(9);
  const images = 3 * MIN_LABEL_EXAMPLES;
  // label a: half positive, logits far too confident (true T about 4); label b: 3 positives
  const validation = Array.from({ length: images }, (_, i) =>
    sample(`i${i}.jpg`, [...(i % 2 ? ['a'] : []), ...(i < 3 ? ['b'] : [])], 'x'),
  );
  const data = new Float32Array(images * 2);
  validation.forEach((s, i) => {
    data[i * 2] = (s.lesions.includes('a') ? 1 : -1) * rng.uniform(0, 4) * 4 + rng.normal(0, 8);
    data[i * 2 + 1] = rng.normal(s.lesions.includes('b') ? 1 : -1, 1);
  });
  const { record, temperatures } = fitLesions({ data, images, views: 1, classes: 2 }, [0], ['a', 'b'], validation);
  assert.equal(record.mode, 'mixed');
  assert.equal(record.labels.a.source, 'label');
  assert.equal(record.labels.b.source, 'shared');
  assert.deepEqual([record.labels.b.positives, record.labels.b.negatives], [3, images - 3]);
  assert.equal(temperatures[1], record.shared.temperature);
  assert.ok(temperatures[0] > 1.5, `an over-confident label is softened: T ${temperatures[0]}`);
});

test('training fits the calibration on the validation part and stores it in the model folder and the ONNX metadata', async () => {
  const demo = await demoSet();
  const out = join(await tempDir(), 'run');
  const lines: string[] = [];
  await trainRun({
    manifest: demo.manifest,
    out,
    task: 'mtl',
    folds: demo.folds,
    fold: 0,
    progress: false,
    log: (l) => lines.push(l),
    config: tinyConfig(join(demo.root, 'cache'), { validation: { fraction: 0.25 } }),
  });
  const info = JSON.parse(await readFile(join(out, 'run.json'), 'utf8'));
  const model = await loadModel(join(out, 'model'), { session: false });
  const cal = model.calibration;
  assert.ok(cal, 'calibration.json');
  assert.equal(cal.fittedOn.images, info.split.validation.length);
  assert.equal(cal.fittedOn.tta, '10crop');
  assert.ok(cal.location && cal.location.nllAfter <= cal.location.nllBefore + 1e-12);
  assert.ok(
    cal.lesion && cal.lesion.mode === 'shared',
    'a few validation images support one shared lesion temperature only',
  );
  assert.deepEqual(Object.keys(cal.thresholds!.labels), info.labels.lesion);
  assert.ok(Object.values(cal.thresholds!.labels).every((t) => t.threshold > 0 && t.threshold <= 1));
  assert.deepEqual(
    JSON.parse(
      readMetadata(new Uint8Array(await readFile(join(out, 'model', 'heads.onnx'))))[METADATA_KEYS.calibration],
    ),
    cal,
  );
  assert.deepEqual(JSON.parse(readMetadata(model.onnx)[METADATA_KEYS.calibration]), cal);
  assert.ok(
    lines.some((l) => /^calibration: location temperature \d/.test(l)),
    lines.join('\n'),
  );
});
