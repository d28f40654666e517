// The library API: loadModel(folder | model.onnx) -> predict(path | bytes) gives the model's own outputs, averaged
// over the views, ranked; options and bad input are checked; dispose frees the session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { centerCrop, tenCrop } from '../../src/image/index.ts';
import { loadModel as loadFolder } from '../../src/models/modelFile.ts';
import { loadModel } from '../../src/serve/api.ts';
import { meanOverViews, rankLabels } from '../../src/serve/predictor.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { hugePngHeader, rampImage, TINY_LABELS, TINY_PREP, tinyModelDir } from './helpers.ts';

const dir = await tinyModelDir();
test.after(() => rm(dirname(dir), { recursive: true, force: true }));
const model = await loadModel(dir, { threads: 1 });
const raw = await loadFolder(dir, { threads: 1 });
test.after(async () => {
  await model.dispose();
  await raw.release();
});
const jpeg = await rampImage('jpeg', 64, 48, 1);

/** The expected ranking computed straight from the model folder's session on the image's views. */
async function expected(views: Float32Array, n: number) {
  const out = await raw.predict(views, n);
  return {
    lesion: Array.from(meanOverViews(out.lesion!, n)),
    location: Array.from(meanOverViews(out.location!, n)),
  };
}

const asMap = (list: { label: string; p: number }[]) => new Map(list.map((s) => [s.label, s.p]));

test('centre crop: every label, the model probabilities to 6 significant digits, sorted high to low', async () => {
  const p = await model.predict(jpeg);
  const want = await expected((await centerCrop(jpeg, { prep: TINY_PREP })).data, 1);
  assert.equal(p.tta, 'center');
  assert.deepEqual(p.lesions.map((s) => s.label).sort(), [...TINY_LABELS.lesion].sort());
  assert.deepEqual(p.location.map((s) => s.label).sort(), [...TINY_LABELS.location].sort());
  const lesion = asMap(p.lesions);
  TINY_LABELS.lesion.forEach((l, i) =>
    assert.ok(Math.abs(lesion.get(l)! - want.lesion[i]) <= 5e-6 * want.lesion[i], l),
  );
  const location = asMap(p.location);
  TINY_LABELS.location.forEach((l, i) =>
    assert.ok(Math.abs(location.get(l)! - want.location[i]) <= 5e-6 * want.location[i], l),
  );
  for (const list of [p.lesions, p.location])
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].p >= list[i].p);
  assert.ok(Math.abs(p.location.reduce((s, x) => s + x.p, 0) - 1) < 1e-5, 'location is a softmax');
  assert.ok(
    p.lesions.some((s) => s.p > 0.05 && s.p < 0.95),
    'probabilities are not saturated',
  );
  for (const k of ['decodeMs', 'inferenceMs', 'totalMs'] as const)
    assert.ok(p.timing[k] >= 0 && Number.isFinite(p.timing[k]), k);
  assert.ok(p.timing.totalMs >= p.timing.decodeMs);
});

test('10crop is the mean over the ten views (and differs from the centre crop); top keeps the k best', async () => {
  const p = await model.predict(jpeg, { tta: '10crop', top: 2 });
  const want = await expected((await tenCrop(jpeg, { prep: TINY_PREP })).data, 10);
  assert.equal(p.tta, '10crop');
  assert.equal(p.lesions.length, 2);
  assert.equal(p.location.length, 2);
  const best = (probs: number[], labels: string[]) =>
    labels
      .map((label, i) => ({ label, p: probs[i] }))
      .sort((a, b) => b.p - a.p)
      .slice(0, 2);
  const lesionWant = best(want.lesion, TINY_LABELS.lesion);
  assert.deepEqual(
    p.lesions.map((s) => s.label),
    lesionWant.map((s) => s.label),
  );
  p.lesions.forEach((s, i) => assert.ok(Math.abs(s.p - lesionWant[i].p) <= 5e-6 * lesionWant[i].p));
  assert.deepEqual(
    p.location.map((s) => s.label),
    best(want.location, TINY_LABELS.location).map((s) => s.label),
  );
  const centre = await model.predict(jpeg, { top: 2 });
  assert.notDeepEqual(
    centre.lesions.map((s) => s.p),
    p.lesions.map((s) => s.p),
  );
});

test('a path, the model.onnx path and the bytes give the same answer; PNG and WebP work', async () => {
  const file = join(dirname(dir), 'x.jpg');
  await writeFile(file, jpeg);
  const byOnnx = await loadModel(join(dir, 'model.onnx'), { threads: 1 });
  try {
    assert.equal(byOnnx.dir, dir);
    assert.deepEqual(byOnnx.labels, TINY_LABELS);
    assert.deepEqual(byOnnx.metrics, { mapClass: 0.42, top1: 0.5 });
    assert.equal(byOnnx.formatVersion, 1);
    assert.equal(byOnnx.preprocessing.resizeShorter, 37);
    const a = await byOnnx.predict(file);
    const b = await model.predict(jpeg);
    assert.deepEqual(a.lesions, b.lesions);
    assert.deepEqual(a.location, b.location);
  } finally {
    await byOnnx.dispose();
  }
  for (const f of ['png', 'webp'] as const) {
    const p = await model.predict(await rampImage(f, 40, 60, 2));
    assert.equal(p.lesions.length, 3);
    assert.equal(p.location.length, 4);
  }
});

test('bad options and bad images are DermtlErrors naming the problem', async () => {
  await assert.rejects(
    model.predict(jpeg, { tta: 'five' as never }),
    (e: Error) => e instanceof DermtlError && /unknown tta 'five'/.test(e.message),
  );
  await assert.rejects(
    model.predict(jpeg, { top: 0 }),
    (e: Error) => e instanceof DermtlError && /top must be a whole number >= 1, got 0/.test(e.message),
  );
  await assert.rejects(
    model.predict(jpeg.subarray(0, 300), { name: 'cut.jpg' }),
    (e: Error) => e instanceof DermtlError && /^cut\.jpg: /.test(e.message),
  );
  await assert.rejects(
    model.predict(Buffer.from('not an image at all')),
    (e: Error) => e instanceof DermtlError && /not a readable image/.test(e.message),
  );
  await assert.rejects(
    model.predict(hugePngHeader(30000, 30000)),
    (e: Error) => e instanceof DermtlError && /30000x30000.*more than the limit/.test(e.message),
  );
  await assert.rejects(
    model.predict(jpeg, { maxPixels: 1000 }),
    (e: Error) => e instanceof DermtlError && /64x48.*limit of 1000 pixels/.test(e.message),
  );
  await assert.rejects(
    model.predict('/no/such/image.jpg'),
    (e: Error) => e instanceof DermtlError && /image file not found/.test(e.message),
  );
  await assert.rejects(
    loadModel(join(dirname(dir), 'nothing-here')),
    (e: Error) => e instanceof DermtlError && /no such folder/.test(e.message),
  );
});

test('concurrent predictions all complete, and dispose waits for them; predict afterwards fails', async () => {
  const m = await loadModel(dir, { threads: 1 });
  const imgs = await Promise.all([0, 1, 2, 3].map((s) => rampImage('png', 50, 50, s)));
  const running = imgs.map((img) => m.predict(img, { tta: '10crop' }));
  const disposed = m.dispose();
  const results = await Promise.allSettled(running);
  await disposed;
  // Those already decoding when dispose was called may still run or be refused, but none may crash.
  for (const r of results)
    if (r.status === 'rejected') assert.ok(r.reason instanceof DermtlError && /disposed/.test(r.reason.message));
  await assert.rejects(m.predict(jpeg), /disposed/);
});

test('rankLabels: ties keep label order, 6 significant digits; meanOverViews averages rows', () => {
  assert.deepEqual(rankLabels(['a', 'b', 'c'], [0.25, 0.5, 0.25]), [
    { label: 'b', p: 0.5 },
    { label: 'a', p: 0.25 },
    { label: 'c', p: 0.25 },
  ]);
  assert.deepEqual(rankLabels(['a', 'b'], [1 / 3, 2e-9], 1), [{ label: 'a', p: 0.333333 }]);
  assert.deepEqual(Array.from(meanOverViews(Float32Array.from([0.5, 0.25, 0.25, 0.75]), 2)), [0.375, 0.5]);
});
