// `npm run build` (also run by `npm install` in the repository, as `prepare`, and by `npm pack`): the package as
// published, in dist/.
//   - dist/**/*.js + .d.ts: src/ compiled by tsc (tsconfig.build.json; relative '.ts' imports rewritten to '.js'),
//     without src/serve/web/app (browser code, bundled below);
//   - dist/serve/web/page/: the web page (index.html, style.css, app.js + app.js.map bundled by esbuild), so that
//     serving it needs no esbuild at run time.
// dist/ is replaced as a whole: a file whose source was deleted does not linger in the package.
//   node --import tsx scripts/build.ts
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { buildPage, PAGE_FILES, PREBUILT_DIR } from '../src/serve/web/build.ts';

const ROOT = join(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const t0 = Date.now();

rmSync(DIST, { recursive: true, force: true });
// typescript's package.json exports no bin/ path: its bin is found from the package folder.
const tsc = join(createRequire(import.meta.url).resolve('typescript/package.json'), '..', 'bin', 'tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${r.status ?? r.signal})\n`);
  process.exit(1);
}

// The declarations keep the sources' relative '.ts' specifiers (tsc rewrites them in .js only): a consumer's tsc
// would look for .ts files that are not in the package. Point them at the emitted files.
const specifier = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g;
let declarations = 0;
for (const file of walk(DIST)) {
  if (!file.endsWith('.d.ts')) continue;
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(specifier, '$1$2.js$3');
  if (fixed !== text) writeFileSync(file, fixed);
  declarations++;
}

const page = await buildPage();
const pageDir = join(DIST, 'serve', 'web', PREBUILT_DIR);
mkdirSync(pageDir, { recursive: true });
for (const key of Object.keys(PAGE_FILES) as (keyof typeof PAGE_FILES)[])
  writeFileSync(join(pageDir, PAGE_FILES[key]), page[key]);

const files = [...walk(DIST)].length;
console.log(
  `build: dist/ (${files} files, ${declarations} declarations, web page in dist/serve/web/${PREBUILT_DIR}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}
