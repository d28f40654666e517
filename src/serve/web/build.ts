/**
 * The web page's files, built in memory: index.html and style.css as they are, app.js bundled by esbuild from
 * the TypeScript in app/ (a few tens of ms), and onnxruntime-web's own ES module and WebAssembly read from
 * node_modules/onnxruntime-web, so the page needs no internet (no CDN). The server mounts every entry at its path.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface WebAsset {
  body: Buffer | string;
  /** The Content-Type header to send. */
  type: string;
}

/** Url path ('/', '/app.js', '/ort/ort-wasm-simd-threaded.wasm', ...) -> file. */
export type WebAssets = Map<string, WebAsset>;

const HERE = dirname(fileURLToPath(import.meta.url));

const TYPES = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  map: 'application/json; charset=utf-8',
  wasm: 'application/wasm',
} as const;

/**
 * onnxruntime-web files the page loads, under /ort/: the wasm-only ES module (ort.wasm.min.mjs) imports the
 * Emscripten glue (ort-wasm-simd-threaded.mjs), which fetches the WebAssembly binary. The WebGPU/JSPI variants
 * are not served (the page runs the plain wasm backend).
 */
export const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'] as const;

let cached: Promise<WebAssets> | null = null;

/** Builds once per process (later calls share the result); a failed build is retried on the next call. */
export function buildWebAssets(): Promise<WebAssets> {
  cached ??= buildAll();
  cached.catch(() => (cached = null));
  return cached;
}

async function buildAll(): Promise<WebAssets> {
  const [html, css, app, ort] = await Promise.all([
    readFile(join(HERE, 'index.html'), 'utf8'),
    readFile(join(HERE, 'style.css'), 'utf8'),
    bundleApp(),
    readOrtFiles(),
  ]);
  const assets: WebAssets = new Map([
    ['/', { body: html, type: TYPES.html }],
    ['/style.css', { body: css, type: TYPES.css }],
    ['/app.js', { body: app.js, type: TYPES.js }],
    ['/app.js.map', { body: app.map, type: TYPES.map }],
  ]);
  for (const [name, body] of ort) assets.set(`/ort/${name}`, { body, type: name.endsWith('.wasm') ? TYPES.wasm : TYPES.js });
  return assets;
}

/** app/main.ts and what it imports (including src/image's crop and tensor code) as one minified ES module. */
async function bundleApp(): Promise<{ js: string; map: string }> {
  const result = await build({
    entryPoints: [join(HERE, 'app', 'main.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['chrome100', 'firefox100', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    outfile: 'app.js',
    logLevel: 'silent',
  });
  const file = (ext: string) => result.outputFiles.find((f) => f.path.endsWith(ext))?.text;
  const js = file('.js');
  const map = file('.js.map');
  if (js === undefined || map === undefined) throw new Error('esbuild produced no app.js');
  return { js, map };
}

async function readOrtFiles(): Promise<[string, Buffer][]> {
  // The package exports its .wasm file; its folder holds the rest of dist/.
  const dist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  return Promise.all(ORT_FILES.map(async (name) => [name, await readFile(join(dist, name))] as [string, Buffer]));
}
