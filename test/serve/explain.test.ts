// POST /api/explain: the prediction plus every label's Grad-CAM map (as predict(..., { explain: true }) gives them),
// the same error contract as /api/predict; GET /explain.onnx with an ETag; both in the OpenAPI document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { loadModel } from '../../src/serve/api.ts';
import { createServer } from '../../src/serve/server.ts';
import { rampImage, TINY_LABELS, tinyModelDir } from './helpers.ts';

const dir = await tinyModelDir();
const model = await loadModel(dir, { threads: 1 });
const app = createServer({ model, web: null });
await app.listen({ port: 0, host: '127.0.0.1' });
const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
test.after(async () => {
  await app.close();
  await model.dispose();
  await rm(dirname(dir), { recursive: true, force: true });
});
const jpeg = await rampImage('jpeg', 64, 48, 1);

test('POST /api/explain: the prediction and the maps of every label, equal to the library call', async () => {
  const res = await fetch(`${url}/api/explain?tta=10crop&top=2`, {
    method: 'POST',
    body: jpeg as BodyInit,
    headers: { 'content-type': 'image/jpeg' },
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as any;
  const want = await model.predict(jpeg, { tta: '10crop', top: 2, explain: true });
  assert.deepEqual(body.lesions, want.lesions);
  assert.equal(body.tta, '10crop');
  assert.equal(body.explanation.method, 'grad-cam');
  assert.deepEqual(
    body.explanation.lesions.map((m: any) => m.label),
    TINY_LABELS.lesion,
    'every label, not only the top 2',
  );
  assert.deepEqual(
    body.explanation.location.map((m: any) => m.map),
    want.explanation!.location.map((m) => m.map),
  );
  assert.deepEqual(body.explanation.view, want.explanation!.view);
  // /api/predict stays as it was: no maps
  const plain = (await (
    await fetch(`${url}/api/predict`, {
      method: 'POST',
      body: jpeg as BodyInit,
      headers: { 'content-type': 'image/jpeg' },
    })
  ).json()) as any;
  assert.equal(plain.explanation, undefined);
});

test('POST /api/explain: bad input gets the same JSON errors as /api/predict', async () => {
  const text = await fetch(`${url}/api/explain`, {
    method: 'POST',
    body: 'hello',
    headers: { 'content-type': 'text/plain' },
  });
  assert.equal(text.status, 415);
  const broken = await fetch(`${url}/api/explain`, {
    method: 'POST',
    body: jpeg.subarray(0, 300) as BodyInit,
    headers: { 'content-type': 'image/jpeg' },
  });
  assert.equal(broken.status, 422);
  assert.equal(((await broken.json()) as any).error.code.length > 0, true);
  const query = await fetch(`${url}/api/explain?tta=5crop`, {
    method: 'POST',
    body: jpeg as BodyInit,
    headers: { 'content-type': 'image/jpeg' },
  });
  assert.equal(query.status, 400);
});

test("GET /explain.onnx: the model folder's explain.onnx with an ETag (304 when unchanged); documented in OpenAPI", async () => {
  const res = await fetch(`${url}/explain.onnx`);
  assert.equal(res.status, 200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  assert.deepEqual(bytes, await model.explainOnnx());
  const again = await fetch(`${url}/explain.onnx`, { headers: { 'if-none-match': res.headers.get('etag')! } });
  assert.equal(again.status, 304);
  const doc = (await (await fetch(`${url}/api/openapi.json`)).json()) as any;
  assert.ok(doc.paths['/api/explain'].post.responses[200]);
  assert.ok(doc.paths['/explain.onnx'].get);
  assert.ok(doc.components.schemas.ExplainedPrediction.properties.explanation.properties.lesions);
});
