// predict's lesion decisions: present = p >= the model's threshold for the label (calibration.json), 0.5 for a
// model trained without calibration; the server returns the same fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CALIBRATION_VERSION, type ModelCalibration } from '../../src/models/calibration.ts';
import { saveModel } from '../../src/models/modelFile.ts';
import { buildNetwork, collectParams } from '../../src/models/network.ts';
import { loadModel } from '../../src/serve/api.ts';
import { createServer } from '../../src/serve/server.ts';
import { rampImage, TINY_LABELS, TINY_PREP, TINY_SPEC, tinyModelDir } from './helpers.ts';

test("lesion scores say present / threshold: the model's thresholds, or 0.5 without calibration; the server agrees", async () => {
  const root = await mkdtemp(join(tmpdir(), 'dermtl-decisions-'));
  test.after(() => rm(root, { recursive: true, force: true }));
  const jpeg = await rampImage('jpeg', 64, 48, 2);
  const plain = await loadModel(await tinyModelDir(join(root, 'a')), { threads: 1 });
  const p0 = await plain.predict(jpeg);
  assert.ok(
    p0.lesions.every((s) => s.threshold === 0.5 && s.present === s.p >= 0.5),
    JSON.stringify(p0.lesions),
  );
  assert.ok(
    p0.location.every((s) => !('present' in s)),
    'locations are ranked, not thresholded',
  );
  // a model whose thresholds put one label just below and one just above its probability
  const [a, b] = p0.lesions;
  const thresholds = { [a.label]: a.p + 1e-3, [b.label]: b.p - 1e-3 };
  const calibration: ModelCalibration = {
    version: CALIBRATION_VERSION,
    fittedOn: { images: 9, tta: '10crop', note: 'test' },
    thresholds: {
      rule: 'test',
      labels: Object.fromEntries(
        Object.entries(thresholds).map(([l, t]) => [l, { threshold: t, f1: 0.5, source: 'validation' as const }]),
      ),
    },
  };
  const dir = join(root, 'b');
  await saveModel(dir, {
    network: TINY_SPEC,
    params: collectParams(buildNetwork(TINY_SPEC, { batch: 1, mode: 'train' }).graph),
    labels: TINY_LABELS,
    preprocessing: TINY_PREP,
    calibration,
  });
  const model = await loadModel(dir, { threads: 1 });
  const p = await model.predict(jpeg);
  const by = new Map(p.lesions.map((s) => [s.label, s]));
  assert.deepEqual([by.get(a.label)!.present, by.get(a.label)!.threshold], [false, thresholds[a.label]]);
  assert.deepEqual([by.get(b.label)!.present, by.get(b.label)!.threshold], [true, thresholds[b.label]]);
  const other = TINY_LABELS.lesion.find((l) => !(l in thresholds))!;
  assert.equal(by.get(other)!.threshold, 0.5, 'a label the record does not name keeps 0.5');
  const app = createServer({ model });
  try {
    const r = await app.inject({
      method: 'POST',
      url: '/api/predict',
      payload: jpeg,
      headers: { 'content-type': 'image/jpeg' },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json().lesions, p.lesions);
    // the page reads the thresholds (and the record) from /api/model, for its in-browser path too
    const info = (await app.inject({ method: 'GET', url: '/api/model' })).json();
    assert.deepEqual(info.thresholds, Object.fromEntries(p.lesions.map((s) => [s.label, s.threshold])));
    assert.deepEqual(info.calibration, calibration);
  } finally {
    await app.close();
    await model.dispose();
    await plain.dispose();
  }
});
