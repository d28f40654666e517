/**
 * The web page's files, in memory: index.html and style.css as they are, app.js bundled by esbuild from the
 * TypeScript in app/, and onnxruntime-web's own ES module and WebAssembly read from node_modules/onnxruntime-web,
 * so the page needs no internet (no CDN). The server mounts every entry at its path.
 *
 * The built package (dist/) carries the page prebuilt by `npm run build` in dist/serve/web/page/, and reads it from
 * there: esbuild is a build tool (a devDependency), not needed to serve. Run from the sources (tsx), the folder is
 * absent and app.js is bundled on first use (a few tens of ms).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WebAsset {
  body: Buffer | string;
  /** The Content-Type header to send. */
  type: string;
}

/** Url path ('/', '/app.js', '/ort/ort-wasm-simd-threaded.wasm', ...) -> file. */
export type WebAssets = Map<string, WebAsset>;

const HERE = dirname(fileURLToPath(import.meta.url));

/** The page as `npm run build` writes it next to the built module: PAGE_FILES, in this folder. */
export const PREBUILT_DIR = 'page';

/** The page's own files (onnxruntime-web's are read from its package). */
export interface PageFiles {
  html: string;
  css: string;
  /** app.js, and its source map app.js.map. */
  js: string;
  map: string;
}
/** PageFiles' file names in PREBUILT_DIR. */
export const PAGE_FILES = {
  html: 'index.html',
  css: 'style.css',
  js: 'app.js',
  map: 'app.js.map',
} as const satisfies Record<keyof PageFiles, string>;

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
  const prebuilt = join(HERE, PREBUILT_DIR);
  const [page, ort] = await Promise.all([
    existsSync(join(prebuilt, PAGE_FILES.js)) ? readPage(prebuilt) : buildPage(),
    readOrtFiles(),
  ]);
  const assets: WebAssets = new Map([
    ['/', { body: page.html, type: TYPES.html }],
    ['/style.css', { body: page.css, type: TYPES.css }],
    ['/app.js', { body: page.js, type: TYPES.js }],
    ['/app.js.map', { body: page.map, type: TYPES.map }],
  ]);
  for (const [name, body] of ort)
    assets.set(`/ort/${name}`, { body, type: name.endsWith('.wasm') ? TYPES.wasm : TYPES.js });
  return assets;
}

/** The page from the sources next to this file (src/serve/web): what `npm run build` writes to PREBUILT_DIR. */
export async function buildPage(): Promise<PageFiles> {
  const [html, css, app] = await Promise.all([
    readFile(join(HERE, 'index.html'), 'utf8'),
    readFile(join(HERE, 'style.css'), 'utf8'),
    bundleApp(),
  ]);
  return { html, css, ...app };
}

async function readPage(dir: string): Promise<PageFiles> {
  const read = (name: string) => readFile(join(dir, name), 'utf8');
  const [html, css, js, map] = await Promise.all([
    read(PAGE_FILES.html),
    read(PAGE_FILES.css),
    read(PAGE_FILES.js),
    read(PAGE_FILES.map),
  ]);
  return { html, css, js, map };
}

/** app/main.ts and what it imports (including src/image's crop and tensor code) as one minified ES module. */
async function bundleApp(): Promise<{ js: string; map: string }> {
  const { build } = await import('esbuild');
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
