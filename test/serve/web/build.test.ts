// buildWebAssets: every file the page needs, with its content type, onnxruntime-web's files byte-identical to the
// installed package (no CDN), a browser bundle free of Node imports, built once per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { buildWebAssets, ORT_FILES } from '../../../src/serve/web/index.ts';

const t0 = performance.now();
const assets = await buildWebAssets();
const buildMs = performance.now() - t0;

test('assets: page, stylesheet, bundle with source map, and ORT wasm files under /ort/, each with its content type', () => {
  assert.deepEqual([...assets.keys()].sort(), [
    '/',
    '/app.js',
    '/app.js.map',
    '/ort/ort-wasm-simd-threaded.mjs',
    '/ort/ort-wasm-simd-threaded.wasm',
    '/ort/ort.wasm.min.mjs',
    '/style.css',
  ]);
  const type = (p: string) => assets.get(p)!.type;
  assert.equal(type('/'), 'text/html; charset=utf-8');
  assert.equal(type('/style.css'), 'text/css; charset=utf-8');
  assert.equal(type('/app.js'), 'text/javascript; charset=utf-8');
  assert.equal(type('/ort/ort.wasm.min.mjs'), 'text/javascript; charset=utf-8');
  assert.equal(type('/ort/ort-wasm-simd-threaded.wasm'), 'application/wasm');
  assert.ok(buildMs < 10_000, `built in ${Math.round(buildMs)} ms`);
});

test('the page refers only to files in the map, by relative URL (works under a path prefix, no external host)', () => {
  const html = String(assets.get('/')!.body);
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((u) => !u.startsWith('data:'));
  assert.deepEqual(refs.sort(), ['app.js', 'style.css']);
  for (const r of refs) assert.ok(assets.has(`/${r}`), r);
  assert.doesNotMatch(
    html,
    /https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
    'no external URL (the SVG namespace is a name, never fetched)',
  );
  assert.match(html, /<html lang="en">/);
  assert.match(html, /<label [^>]*for="file"/);
  assert.match(html, /id="in-browser"[^>]*role="switch"/);
});

test('app.js: one minified ES module, no Node built-ins, ORT loaded at run time from ort/ of this server', () => {
  const js = String(assets.get('/app.js')!.body);
  assert.doesNotMatch(js, /\bnode:|require\(/);
  assert.doesNotMatch(js, /https?:\/\/(?!www\.w3\.org)/, 'no external URL');
  assert.match(js, /"ort\/ort\.wasm\.min\.mjs"/);
  assert.match(js, /sourceMappingURL=app\.js\.map/);
  assert.ok(js.length < 60_000, `${js.length} bytes (ORT itself is not bundled)`);
  const map = JSON.parse(String(assets.get('/app.js.map')!.body)) as { sources: string[] };
  // The page bundles the server's own crop geometry and tensor writer (one implementation for both paths).
  assert.ok(
    map.sources.some((s) => s.endsWith('image/crops.ts')) && map.sources.some((s) => s.endsWith('image/preprocess.ts')),
    map.sources.join(),
  );
});

test('ORT files are the installed onnxruntime-web dist files, byte for byte', async () => {
  const dist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  for (const name of ORT_FILES) {
    const body = assets.get(`/ort/${name}`)!.body;
    assert.ok(Buffer.isBuffer(body), name);
    assert.ok((body as Buffer).equals(await readFile(join(dist, name))), name);
  }
  const wasm = assets.get('/ort/ort-wasm-simd-threaded.wasm')!.body as Buffer;
  assert.deepEqual([...wasm.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], 'WebAssembly magic');
});

test('built once per process: a second call gives the same map', async () => {
  assert.equal(await buildWebAssets(), assets);
});
