import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageVersion } from '../../src/cli/main.ts';

// The CLI from the sources (bin/dermtl.js runs the same modules built; test/package.test.ts runs that one).
const ENTRY = join(import.meta.dirname, '../../scripts/dermtl-dev.js');
const VERSION = (
  JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
).version;

// A resolve hook that reports every package (bare specifier, not a Node built-in) the process imports, on stderr;
// except tsx's own imports (esbuild, ...), which the built CLI does not make.
const HOOKS = `import { isBuiltin } from 'node:module';
export async function resolve(s, c, next) {
  if (!/^(node:|file:|data:|[./])/.test(s) && !isBuiltin(s) && !String(c.parentURL).includes('/node_modules/tsx/')) {
    process.stderr.write('IMPORTED ' + s + '\\n');
  }
  return next(s, c);
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;
/** What building the program may import: every command's action imports the rest when it runs. */
const LIGHT = new Set(['tsx/esm/api', 'commander', 'csv-parse/sync', 'csv-stringify/sync']);

function cli(args: string[]): { status: number | null; stdout: string; stderr: string; imported: string[] } {
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, ENTRY, ...args],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const imported = [
    ...new Set(
      r.stderr
        .split('\n')
        .filter((l) => l.startsWith('IMPORTED '))
        .map((l) => l.slice('IMPORTED '.length)),
    ),
  ];
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, imported };
}

test("--version is package.json's version", () => {
  assert.equal(packageVersion(), VERSION);
  const r = cli(['--version']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), VERSION);
});

test('--version and --help load no heavy module (onnxruntime, sharp, vega, fastify, zod, ... load in the commands that use them)', () => {
  for (const args of [['--version'], ['--help'], ['train', '--help'], ['serve', '--help']]) {
    const r = cli(args);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.imported.includes('commander'), `the hook saw no import: ${r.stderr}`);
    const heavy = r.imported.filter((p) => !LIGHT.has(p));
    assert.deepEqual(heavy, [], `dermtl ${args.join(' ')} imported ${heavy.join(', ')}`);
  }
});

test("--help lists every command; a sub-command's --help still shows its choices and defaults", () => {
  const top = cli(['--help']);
  for (const name of [
    'start',
    'import',
    'refine',
    'stats',
    'correlation',
    'split',
    'train',
    'eval',
    'ensemble',
    'cv',
    'metrics',
    'predict',
    'serve',
    'demo-data',
  ]) {
    assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'), name);
  }
  assert.match(cli(['train', '--help']).stdout, /choices: "mtl", "lesion", "location"/);
  assert.match(cli(['predict', '--help']).stdout, /choices: "center", "10crop", default: "center"/);
  assert.match(cli(['serve', '--help']).stdout, /default: 50000000/);
  assert.match(cli(['start', '--help']).stdout, /number of demo images, when generating \(default: 240\)/);
});
