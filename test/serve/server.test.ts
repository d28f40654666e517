// The HTTP server on a real loopback port (port 0): good images, bad ones, oversized bodies and images,
// path traversal, the bounded queue under a burst, timeouts, and the JSON error contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadModel, type DermtlModel } from '../../src/serve/api.ts';
import { createServer, type ServerOptions } from '../../src/serve/server.ts';
import { hugePngHeader, rampImage, TINY_LABELS, tinyModelDir } from './helpers.ts';

const dir = await tinyModelDir();
const model = await loadModel(dir, { threads: 1 });
test.after(async () => {
  await model.dispose();
  await rm(dirname(dir), { recursive: true, force: true });
});
const jpeg = await rampImage('jpeg', 64, 48, 1);
const png = await rampImage('png', 48, 64, 2);
const webp = await rampImage('webp', 50, 50, 3);

interface Running {
  app: FastifyInstance;
  url: string;
  port: number;
}
async function start(opts: Partial<ServerOptions> = {}): Promise<Running> {
  const app = createServer({ model, web: null, ...opts });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  return { app, url: `http://127.0.0.1:${port}`, port };
}

async function postImage(url: string, body: Uint8Array | string, type = 'image/jpeg', query = '') {
  const res = await fetch(`${url}/api/predict${query}`, {
    method: 'POST',
    body: body as BodyInit,
    headers: { 'content-type': type },
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

/** multipart/form-data with one file part (field name and file name exactly as given, not escaped). */
function multipart(
  field: string,
  filename: string,
  data: Uint8Array,
  type = 'image/jpeg',
): { body: Buffer; type: string } {
  const boundary = '----dermtltest7d1f';
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`;
  return {
    body: Buffer.concat([Buffer.from(head), data, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    type: `multipart/form-data; boundary=${boundary}`,
  };
}

/** A request written byte for byte on a socket (no client-side URL normalisation), the whole answer read back. */
function rawRequest(port: number, text: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    // write, not end: Node closes a half-closed socket before an async answer is written.
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let data = '';
    s.on('data', (c) => (data += c));
    s.on('error', reject);
    s.on('close', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), head, body: rest.join('\r\n\r\n') });
    });
  });
}

/** A big body with node:http (fetch hides the early 413 behind an upload error). */
function postBig(
  port: number,
  size: number,
  chunked: boolean,
  type = 'image/jpeg',
  body?: Buffer,
): Promise<{ status?: number; json?: any; error?: string }> {
  return new Promise((resolve) => {
    const data = body ?? Buffer.alloc(size, 0xab);
    const headers: Record<string, string> = { 'content-type': type };
    if (!chunked) headers['content-length'] = String(data.length);
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/predict', headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    if (chunked) for (let i = 0; i < data.length; i += 1 << 20) req.write(data.subarray(i, i + (1 << 20)));
    req.end(chunked ? undefined : data);
  });
}

/** Every error is {error: {code, message}} and carries no stack trace or source path. */
function assertJsonError(json: any, code: string, message?: RegExp): void {
  assert.deepEqual(Object.keys(json), ['error'], JSON.stringify(json));
  assert.equal(json.error.code, code, JSON.stringify(json));
  assert.equal(typeof json.error.message, 'string');
  assert.doesNotMatch(json.error.message, /\n\s+at |\.ts:\d+|node_modules/);
  if (message) assert.match(json.error.message, message);
}

test('good JPEG, PNG and WebP (raw body and multipart field image): the same answer as model.predict', async () => {
  const s = await start();
  try {
    for (const [img, type] of [
      [jpeg, 'image/jpeg'],
      [png, 'image/png'],
      [webp, 'image/webp'],
      [jpeg, 'application/octet-stream'],
    ] as const) {
      const r = await postImage(s.url, img, type);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const want = await model.predict(img, { top: 5 });
      assert.deepEqual(Object.keys(r.json), ['image', 'lesions', 'location', 'tta', 'timing']);
      assert.equal(r.json.image, null);
      assert.equal(r.json.tta, 'center');
      assert.deepEqual(r.json.lesions, want.lesions);
      assert.deepEqual(r.json.location, want.location);
      assert.equal(r.json.lesions.length, TINY_LABELS.lesion.length);
      assert.ok(r.json.timing.totalMs >= r.json.timing.inferenceMs);
    }
    const r = await postImage(s.url, png, 'image/png', '?tta=10crop&top=2');
    const want = await model.predict(png, { tta: '10crop', top: 2 });
    assert.equal(r.json.tta, '10crop');
    assert.deepEqual([r.json.lesions, r.json.location], [want.lesions, want.location]);
    const m = multipart('image', 'lesion.webp', webp, 'image/webp');
    const rm = await postImage(s.url, m.body, m.type, '?top=1');
    assert.equal(rm.status, 200, JSON.stringify(rm.json));
    assert.equal(rm.json.image, 'lesion.webp');
    assert.deepEqual(rm.json.location, (await model.predict(webp, { top: 1 })).location);
  } finally {
    await s.app.close();
  }
});

test('bad inputs get JSON errors: truncated JPEG, text named .jpg, empty body, wrong type, bad query', async () => {
  const s = await start();
  try {
    assertJsonError(
      (await postImage(s.url, jpeg.subarray(0, Math.floor(jpeg.length / 2)))).json,
      'bad_image',
      /truncated or corrupt/,
    );
    const text = multipart('image', 'notes.jpg', Buffer.from('Dear diary, this is not a JPEG.\n'.repeat(20)));
    const rt = await postImage(s.url, text.body, text.type);
    assert.equal(rt.status, 422);
    assertJsonError(rt.json, 'bad_image', /^notes\.jpg: not a readable image/);
    for (const [body, type] of [
      [Buffer.alloc(0), 'image/jpeg'],
      [Buffer.alloc(0), 'image/png'],
    ] as const) {
      const r = await postImage(s.url, body, type);
      assert.equal(r.status, 400);
      assertJsonError(r.json, 'empty_body', /no image in the request/);
    }
    const none = await fetch(`${s.url}/api/predict`, { method: 'POST' });
    assert.equal(none.status, 400);
    assertJsonError(await none.json(), 'empty_body');
    const emptyFile = multipart('image', 'a.jpg', Buffer.alloc(0));
    assertJsonError((await postImage(s.url, emptyFile.body, emptyFile.type)).json, 'empty_body');
    const otherField = multipart('photo', 'a.jpg', jpeg);
    assertJsonError(
      (await postImage(s.url, otherField.body, otherField.type)).json,
      'bad_request',
      /field 'photo'.*field 'image'/,
    );
    const json = await postImage(s.url, '{"image": "x"}', 'application/json');
    assert.equal(json.status, 415);
    assertJsonError(json.json, 'unsupported_media_type', /image\/jpeg/);
    for (const q of ['?tta=5crop', '?top=0', '?top=abc', '?top=1001', '?tpo=3', '?tta=../../etc/passwd']) {
      const r = await postImage(s.url, jpeg, 'image/jpeg', q);
      assert.equal(r.status, 400, q);
      assertJsonError(r.json, 'bad_request', /querystring/);
    }
    const wrongMethod = await fetch(`${s.url}/api/predict`);
    assert.equal(wrongMethod.status, 404);
    assertJsonError(await wrongMethod.json(), 'not_found');
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
  } finally {
    await s.app.close();
  }
});

test('a 30 MB body gets 413 (with Content-Length, chunked, and as a multipart file); the server stays healthy', async () => {
  const s = await start();
  try {
    for (const chunked of [false, true]) {
      const r = await postBig(s.port, 30 * 1024 * 1024, chunked);
      assert.equal(r.status, 413, JSON.stringify(r));
      assertJsonError(r.json, 'body_too_large', /limit of 10\.0 MB/);
    }
    const m = multipart('image', 'big.jpg', Buffer.alloc(30 * 1024 * 1024, 0xab));
    const r = await postBig(s.port, 0, false, m.type, m.body);
    assert.equal(r.status, 413, JSON.stringify(r));
    assertJsonError(r.json, 'body_too_large');
    assert.equal((await postImage(s.url, jpeg)).status, 200);
  } finally {
    await s.app.close();
  }
  // A lower limit applies to both kinds of upload.
  const small = await start({ bodyLimit: 1000 });
  try {
    const big = await rampImage('png', 200, 200, 4);
    assert.ok(big.length > 1000);
    assert.equal((await postImage(small.url, big, 'image/png')).status, 413);
    const m = multipart('image', 'big.png', big, 'image/png');
    assert.equal((await postImage(small.url, m.body, m.type)).status, 413);
  } finally {
    await small.app.close();
  }
});

test('a PNG header claiming 30000x30000 is refused from its header (422), without decoding it', async () => {
  const s = await start();
  try {
    const before = process.memoryUsage.rss();
    const huge = hugePngHeader(30000, 30000);
    assert.ok(huge.length < 200);
    const r = await postImage(s.url, huge, 'image/png');
    assert.equal(r.status, 422);
    assertJsonError(
      r.json,
      'image_too_large',
      /30000x30000 \(900\.0 megapixels\), more than the limit of 50000000 pixels/,
    );
    const m = multipart('image', 'huge.png', huge, 'image/png');
    assertJsonError((await postImage(s.url, m.body, m.type)).json, 'image_too_large');
    // Decoding it would need 2.7 GB; refusing it costs next to nothing.
    assert.ok(
      process.memoryUsage.rss() - before < 100e6,
      `RSS grew by ${(process.memoryUsage.rss() - before) / 1e6} MB`,
    );
  } finally {
    await s.app.close();
  }
  const strict = await start({ maxPixels: 64 * 48 - 1 });
  try {
    const r = await postImage(strict.url, jpeg);
    assertJsonError(r.json, 'image_too_large', /64x48/);
  } finally {
    await strict.app.close();
  }
});

test('path traversal: no URL and no multipart file name reaches the file system', async () => {
  const pages = new Map([
    ['/', { body: '<!doctype html><p>page</p>', type: 'text/html; charset=utf-8' }],
    ['/app.js', { body: 'console.log(1)', type: 'text/javascript' }],
  ]);
  const s = await start({ web: async () => pages });
  try {
    const paths = [
      '/../../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/..%2f..%2f..%2fetc%2fpasswd',
      '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/model.onnx/../../../etc/passwd',
      '/api/../../../../etc/passwd',
      '//etc/passwd',
      '/app.js/..%5c..%5c..%5cetc%5cpasswd',
      '/..\\..\\etc\\passwd',
      '/static/../../../../../../etc/passwd',
      '/etc/passwd',
      `/${'..%2f'.repeat(12)}etc/passwd`,
      '/%zz/../etc/passwd',
      '/%00/etc/passwd',
      '/model.onnx%00.txt',
    ];
    for (const p of paths) {
      const r = await rawRequest(s.port, `GET ${p} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
      assert.doesNotMatch(r.body, /root:|daemon:/, p);
      assert.match(r.head, /content-type: application\/json/i, p);
      assert.equal(JSON.parse(r.body).error.code, r.status === 404 ? 'not_found' : 'bad_request', p);
    }
    // The page's own assets are served from memory with their types.
    const page = await fetch(`${s.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.equal(await page.text(), '<!doctype html><p>page</p>');
    assert.equal(await (await fetch(`${s.url}/app.js?v=3`)).text(), 'console.log(1)');
    // A multipart file name is only echoed, reduced to its last component.
    for (const [name, shown] of [
      ['../../x', 'x'],
      ['..\\..\\windows\\x.jpg', 'x.jpg'],
      ['/etc/passwd', 'passwd'],
      ['../..', null],
    ] as const) {
      const m = multipart('image', name, jpeg);
      const r = await postImage(s.url, m.body, m.type);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.image, shown);
      assert.deepEqual(
        r.json.lesions,
        (await model.predict(jpeg, { top: 5 })).lesions,
        'the uploaded bytes were predicted, not a file',
      );
    }
    const bad = multipart('image', '../../../../etc/passwd', Buffer.from('hello'));
    const rb = await postImage(s.url, bad.body, bad.type);
    assert.equal(rb.status, 422);
    assert.doesNotMatch(JSON.stringify(rb.json), /root:/);
    assert.match(rb.json.error.message, /^passwd: not a readable image/);
  } finally {
    await s.app.close();
  }
});

test('GET /model.onnx (bytes, type, ETag, 304), /api/model, /healthz, /api/openapi.json', async () => {
  const s = await start();
  try {
    const r = await fetch(`${s.url}/model.onnx`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const etag = r.headers.get('etag')!;
    assert.match(etag, /^"[0-9a-f]{64}"$/);
    assert.deepEqual(new Uint8Array(await r.arrayBuffer()), model.onnx);
    const again = await fetch(`${s.url}/model.onnx`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await again.arrayBuffer()).byteLength, 0);
    assert.equal((await fetch(`${s.url}/model.onnx`, { headers: { 'if-none-match': '"other"' } })).status, 200);

    const info = (await (await fetch(`${s.url}/api/model`)).json()) as any;
    assert.equal(info.format, 'dermtl-model');
    assert.equal(info.formatVersion, 1);
    assert.deepEqual(info.labels, TINY_LABELS);
    assert.deepEqual(info.metrics, { mapClass: 0.42, top1: 0.5 });
    assert.equal(info.preprocessing.resizeShorter, 37);
    assert.deepEqual(info.preprocessing.mean, [103.939, 116.779, 123.68]);
    assert.deepEqual(info.onnx, { url: '/model.onnx', bytes: model.onnx.byteLength, sha256: etag.slice(1, -1) });
    assert.deepEqual(
      info.outputs.map((o: any) => o.name),
      ['lesion_probs', 'location_probs'],
    );
    assert.deepEqual(info.tta, ['center', '10crop']);
    assert.equal(info.takesSite, false);

    const health = (await (await fetch(`${s.url}/healthz`)).json()) as any;
    assert.equal(health.status, 'ok');
    assert.deepEqual(health.queue, { running: 0, waiting: 0, concurrency: 2, size: 8 });
    assert.ok(health.memory.peakRssBytes >= health.memory.rssBytes * 0.5);

    const doc = (await (await fetch(`${s.url}/api/openapi.json`)).json()) as any;
    assert.match(doc.openapi, /^3\.0\./);
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/api/explain',
      '/api/model',
      '/api/openapi.json',
      '/api/predict',
      '/explain.onnx',
      '/healthz',
      '/model.onnx',
    ]);
    const params = doc.paths['/api/predict'].post.parameters;
    assert.deepEqual(
      params.map((p: any) => [p.name, p.in]),
      [
        ['tta', 'query'],
        ['top', 'query'],
        ['location', 'query'],
      ],
    );
    assert.deepEqual(params[0].schema.enum, ['center', '10crop']);
    assert.deepEqual(Object.keys(doc.paths['/api/predict'].post.requestBody.content), [
      'image/jpeg',
      'image/png',
      'image/webp',
      'application/octet-stream',
      'multipart/form-data',
    ]);
    assert.deepEqual(Object.keys(doc.paths['/api/predict'].post.responses), [
      '200',
      '400',
      '413',
      '415',
      '422',
      '503',
      '504',
    ]);
    assert.deepEqual(doc.components.schemas.Prediction.required, ['image', 'lesions', 'location', 'tta', 'timing']);
  } finally {
    await s.app.close();
  }
});

/** The real model behind a gate: predictions wait until open() is called. */
function gatedModel(): { model: DermtlModel; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  return { model: { ...model, predict: async (img, o) => (await gate, model.predict(img, o)) }, open };
}

test('a burst beyond the queue: the excess gets 503 + Retry-After at once, the admitted ones all succeed, the server stays healthy', async () => {
  const g = gatedModel();
  const s = await start({ model: g.model, concurrency: 1, queueSize: 3 });
  try {
    const answers: { status: number; retry: string | null; json: any }[] = [];
    const all = Array.from({ length: 20 }, (_, i) =>
      postImage(s.url, i % 2 ? png : jpeg, i % 2 ? 'image/png' : 'image/jpeg').then((r) => {
        answers.push({ status: r.status, retry: r.headers.get('retry-after'), json: r.json });
      }),
    );
    // The 16 refused requests are answered while the 4 admitted ones still wait at the gate.
    while (answers.length < 16) await new Promise((r) => setTimeout(r, 10));
    const health = (await (await fetch(`${s.url}/healthz`)).json()) as any;
    assert.deepEqual([health.queue.running, health.queue.waiting], [1, 3]);
    g.open();
    await Promise.all(all);
    const busy = answers.filter((a) => a.status === 503);
    const ok = answers.filter((a) => a.status === 200);
    assert.equal(busy.length, 16);
    assert.equal(ok.length, 4);
    for (const b of busy) {
      assert.match(b.retry ?? '', /^[1-9]\d*$/);
      assertJsonError(b.json, 'busy', /queue is full/);
    }
    for (const a of ok) assert.equal(a.json.lesions.length, 3);
    const after = (await (await fetch(`${s.url}/healthz`)).json()) as any;
    assert.deepEqual([after.status, after.queue.running, after.queue.waiting], ['ok', 0, 0]);
    assert.equal((await postImage(s.url, jpeg)).status, 200);
  } finally {
    g.open();
    await s.app.close();
  }
});

test('timeouts: a running prediction past the limit gets 504, one still waiting gets 503 + Retry-After', async () => {
  const g = gatedModel();
  const s = await start({ model: g.model, concurrency: 1, queueSize: 1, timeoutMs: 150 });
  try {
    const [running, waiting] = await Promise.all([
      postImage(s.url, jpeg),
      new Promise((r) => setTimeout(r, 30)).then(() => postImage(s.url, png, 'image/png')),
    ]);
    assert.equal(running.status, 504);
    assertJsonError(running.json, 'timeout', /more than 150 ms/);
    assert.equal(waiting.status, 503);
    assert.match(waiting.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assertJsonError(waiting.json, 'queue_timeout');
    // The timed-out run still holds the model until it ends; then the server is free again.
    const busy = (await (await fetch(`${s.url}/healthz`)).json()) as any;
    assert.deepEqual([busy.queue.running, busy.queue.waiting], [1, 0]);
    g.open();
    let health: any;
    do health = await (await fetch(`${s.url}/healthz`)).json();
    while (health.queue.running > 0);
    assert.equal((await postImage(s.url, jpeg)).status, 200);
  } finally {
    g.open();
    await s.app.close();
  }
});

test('many concurrent requests on the real model: none crash, RSS returns near its baseline', async () => {
  const s = await start({ concurrency: 2, queueSize: 8 });
  try {
    const photo = await rampImage('jpeg', 640, 480, 5);
    const burst = () =>
      Promise.all(
        Array.from({ length: 40 }, (_, i) => postImage(s.url, photo, 'image/jpeg', i % 4 ? '' : '?tta=10crop')),
      );
    await burst(); // warm-up: allocator pools, JIT, sharp caches
    const baseline = process.memoryUsage.rss();
    let statuses: number[] = [];
    for (let round = 0; round < 3; round++) statuses = statuses.concat((await burst()).map((r) => r.status));
    assert.deepEqual(
      [...new Set(statuses)].filter((c) => c !== 200 && c !== 503),
      [],
      'only successes and busy refusals',
    );
    assert.ok(statuses.filter((c) => c === 200).length >= 30, `${statuses.filter((c) => c === 200).length} successes`);
    const grown = (process.memoryUsage.rss() - baseline) / 1e6;
    assert.ok(grown < 60, `RSS grew by ${grown.toFixed(1)} MB over 3 bursts after warm-up`);
    assert.equal(((await (await fetch(`${s.url}/healthz`)).json()) as any).status, 'ok');
  } finally {
    await s.app.close();
  }
});

test('web page: absent module -> 404 web_not_built at /; a failing build -> 500 without its stack', async () => {
  const absent = await start({ web: async () => null });
  try {
    const r = await fetch(`${absent.url}/`);
    assert.equal(r.status, 404);
    assertJsonError(await r.json(), 'web_not_built', /web page not built/);
    assertJsonError(await (await fetch(`${absent.url}/app.js`)).json(), 'not_found');
  } finally {
    await absent.app.close();
  }
  let calls = 0;
  const failing = await start({
    web: async () => {
      calls++;
      throw new Error('esbuild: secret/path/app.ts:3:1 syntax error');
    },
  });
  try {
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${failing.url}/`);
      assert.equal(r.status, 500);
      const json = await r.json();
      assertJsonError(json, 'web_build_failed');
      assert.doesNotMatch(JSON.stringify(json), /secret|syntax/);
    }
    assert.equal(calls, 1, 'a failed build is not retried per request');
    assert.equal((await postImage(failing.url, jpeg)).status, 200, 'the API works without the page');
  } finally {
    await failing.app.close();
  }
});
