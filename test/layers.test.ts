// The house rules of src/ (README "Layout", scripts/check-layers.ts): no file imports itself back through others,
// and no import runs up the layer order util < data < image < graph < models < metrics < train < eval < report <
// explain < serve < cli < index.ts. Plus the scanner itself on small sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkLayers, formatReport, layerOf, scanImports, stripComments } from '../scripts/check-layers.ts';

const SRC = join(import.meta.dirname, '..', 'src');

test('src/: no import cycles and no import up the layers', () => {
  const r = checkLayers(SRC);
  assert.ok(r.files > 100 && r.edges.length > 400, `scanned ${r.files} files, ${r.edges.length} imports`);
  const problems = [
    ...r.cycles.map((c) => c.loop.join(' -> ')),
    ...r.upward.map((e) => `${e.from}:${e.line} -> ${e.to}`),
  ];
  assert.deepEqual(problems, [], formatReport(r));
});

test('every folder of src/ has a place in the layer order', () => {
  const r = checkLayers(SRC);
  const unplaced = r.paths.filter((f) => layerOf(f) < 0);
  assert.deepEqual(unplaced, []);
});

test('scanImports: every kind of relative import, with its line; bare and commented-out ones ignored', () => {
  const src = [
    "import { a, type B } from './a.ts';", // 1
    "import type { C } from '../c.ts';", // 2
    "import { type D, type E } from './d.ts';", // 3
    "import F, { type G } from './f.ts';", // 4
    "export { h } from './h.ts';", // 5
    "export * from './star.ts';", // 6
    "export type { I } from './i.ts';", // 7
    "import './side.ts';", // 8
    "import fs from 'node:fs';", // 9
    '// import { x } from "./commented.ts";', // 10
    '/* export * from "./block.ts"; */', // 11
    'const s = \'import y from "./in-a-string"\';', // 12 import-like text right after a quote is not taken
    'const re = /["\']/g;', // 13
    "const m = await import('./lazy.ts');", // 14
    'const t = `${a}`; export const k = 1;', // 15
    'import {', // 16
    '  multi,', // 17
    "} from './multi.ts';", // 18
  ].join('\n');
  assert.deepEqual(scanImports(src), [
    { specifier: './a.ts', kind: 'static', line: 1 },
    { specifier: '../c.ts', kind: 'type', line: 2 },
    { specifier: './d.ts', kind: 'type', line: 3 },
    { specifier: './f.ts', kind: 'static', line: 4 },
    { specifier: './h.ts', kind: 'static', line: 5 },
    { specifier: './star.ts', kind: 'static', line: 6 },
    { specifier: './i.ts', kind: 'type', line: 7 },
    { specifier: './side.ts', kind: 'static', line: 8 },
    { specifier: './lazy.ts', kind: 'dynamic', line: 14 },
    { specifier: './multi.ts', kind: 'static', line: 16 },
  ]);
});

test('stripComments keeps strings, templates and regular expressions, and the line count', () => {
  const src = "const a = '// not a comment'; // gone\nconst b = `x ${'/*'} y`; /* gone\ngone */ const c = /\\/\\//;";
  const out = stripComments(src);
  assert.equal(out.split('\n').length, 3);
  assert.match(out, /'\/\/ not a comment'/);
  assert.match(out, /`x \$\{'\/\*'\} y`/);
  assert.match(out, /\/\\\/\\\/\//);
  assert.doesNotMatch(out, /gone/);
});

test('layerOf: folders in order, src/index.ts on top', () => {
  assert.ok(layerOf('util/errors.ts') < layerOf('data/types.ts'));
  assert.ok(layerOf('metrics/metrics.ts') < layerOf('train/epochs.ts'));
  assert.ok(layerOf('train/epochs.ts') < layerOf('eval/study.ts'));
  assert.ok(layerOf('serve/api.ts') < layerOf('cli/main.ts'));
  assert.ok(layerOf('cli/main.ts') < layerOf('index.ts'));
  assert.equal(layerOf('nowhere/x.ts'), -1);
});
