import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTable1, table1, table1Markdown } from '../../../src/report/study/table1.ts';
import { syntheticResults } from './fixture.ts';

test('one row per lesion label with its positives, then mAP-class and mAP-image', () => {
  const t = table1(syntheticResults());
  assert.deepEqual(
    t.lesion.rows.map((r) => r.label),
    ['nevus', 'melanoma', 'dermatofibroma', 'vascular', 'mAP-class', 'mAP-image'],
  );
  assert.deepEqual(
    t.lesion.rows.map((r) => r.positives),
    [120, 33, 1, 0, null, null],
  );
  assert.equal(t.summaryStart, 4);
  assert.deepEqual(
    t.lesion.columns.map((c) => c.model),
    ['lesion', 'mtl', 'ensemble', 'linear', 'prior'],
  );
  assert.deepEqual(
    t.location.columns.map((c) => c.model),
    ['location', 'mtl', 'linear', 'prior'],
  );
  const nevus = t.lesion.rows[0].cells;
  assert.deepEqual(
    nevus.map((c) => c.pooled),
    [0.82, 0.84, 0.845, 0.79, 0.47],
  );
  assert.deepEqual(
    nevus.map((c) => c.best),
    [false, false, true, false, false],
  );
  assert.deepEqual(
    nevus.map((c) => c.n),
    [3, 3, 3, 3, 3],
  );
  // MTL's nevus per-fold mean: 0.84 + mean(0.01 + 0.01, -0.015 - 0.025, 0.005) = 0.835
  assert.ok(Math.abs(nevus[1].mean! - 0.835) < 1e-12);
  const vascular = t.lesion.rows[3].cells;
  assert.deepEqual(
    vascular.map((c) => [c.pooled, c.mean, c.best, c.bestMean]),
    new Array(5).fill([null, undefined, false, false]),
  );
  const mapClass = t.lesion.rows[4].cells;
  assert.deepEqual(
    mapClass.map((c) => c.pooled),
    [0.59, 0.61, 0.615, 0.56, 0.24],
  );
  assert.deepEqual(
    t.location.rows.map((r) => r.cells.map((c) => c.pooled)),
    [
      [0.5, 0.52, 0.45, 0.3],
      [0.85, 0.86, 0.8, 0.6],
    ],
  );
  assert.deepEqual(
    t.location.rows.map((r) => r.cells.map((c) => c.n)),
    [
      [2, 3, 3, 3],
      [2, 3, 3, 3],
    ],
  );
});

test('values equal on the shown decimals are all bold; a lone value is not', () => {
  const r = syntheticResults();
  r.models.mtl.pooled!.ap.nevus = 0.8449; // shows as 0.845, like the ensemble
  r.models.lesion.pooled!.ap.melanoma = 0.9;
  for (const m of ['mtl', 'ensemble', 'linear', 'prior'] as const) delete r.models[m].pooled!.ap.dermatofibroma;
  r.models.linear.pooled!.ap.nevus = 0.845; // a baseline competes for the bold like any model
  const t = table1(r);
  assert.deepEqual(
    t.lesion.rows[0].cells.map((c) => c.best),
    [false, true, true, true, false],
  );
  assert.deepEqual(
    t.lesion.rows[1].cells.map((c) => c.best),
    [true, false, false, false, false],
  );
  assert.deepEqual(
    t.lesion.rows[2].cells.map((c) => [c.pooled, c.best]),
    [
      [0.4, false],
      [null, false],
      [null, false],
      [null, false],
      [null, false],
    ],
  );
});

test('Markdown: padded pipe tables with bold best values, per-fold mean ± std and footnotes', () => {
  const md = table1Markdown(syntheticResults());
  const lines = md.split('\n');
  const row = (label: string, from = 0) => lines.slice(from).find((l) => l.startsWith(`| ${label} `))!;
  assert.match(row('nevus'), /^\| nevus +\| +120 \| +0\.820 +\| 0\.840 +\| \*\*0\.845\*\* \| 0\.790 +\| 0\.470 +\|$/);
  assert.match(row('vascular'), /\| +0 \|( +n\/a +\|){5}$/);
  assert.match(row('**mAP-class**'), /0\.590 +\| 0\.610 +\| \*\*0\.615\*\* \| 0\.560 +\| 0\.240 +\|$/);
  const perFold = lines.findIndex((l) => l.startsWith('## AP per class, per-fold mean ± std (3 folds)'));
  assert.ok(perFold > 0);
  assert.match(
    row('nevus', perFold),
    /0\.820 ± 0\.013 +\| 0\.835 ± 0\.031 +\| \*\*0\.845 ± 0\.013\*\* \| 0\.790 ± 0\.013 +\| 0\.470 ± 0\.013 +\|$/,
  );
  assert.match(
    row('dermatofibroma', perFold),
    /0\.410 \(1\) +\| +\*\*0\.440 \(1\)\*\* \| +0\.435 \(1\) +\| +0\.380 \(1\) +\| +0\.060 \(1\) +\|$/,
  );
  assert.match(
    row('top-1'),
    /^\| top-1 +\| +0\.500 +\| +0\.497 ± 0\.018 \(2\) +\| +\*\*0\.520\*\* \| \*\*0\.520 ± 0\.013\*\* \| +0\.450 +\| 0\.450 ± 0\.013 +\| +0\.300 +\| 0\.300 ± 0\.013 +\|$/,
  );
  // every row of a table has the same width, so it lines up in a terminal
  const table = lines.slice(lines.indexOf('## AP per class, pooled out-of-fold') + 2, perFold - 1);
  assert.equal(table.length, 8);
  assert.equal(new Set(table.map((l) => l.length)).size, 1);
  assert.match(md, /- n\/a: no positive test image, so AP is undefined and the label is not averaged: vascular\./);
  assert.match(
    md,
    /- location-only was not trained in fold 2: the training part of fold 2 has a single location label\./,
  );
  assert.match(
    md,
    /- Linear \(baseline\): L2-regularised logistic regression .* Lambdas per fold \(lesion\/location\): 0\.3\/1, 0\.1\/1, 0\.1\/0\.1\./,
  );
  assert.match(md, /- Prior \(baseline\): every test image gets the training part's label frequencies/);
});

test('plain text: no Markdown syntax, best marked with *, columns aligned', () => {
  const lines = formatTable1(syntheticResults());
  assert.ok(!lines.some((l) => l.includes('|') || l.includes('**')));
  const nevus = lines.find((l) => l.startsWith('nevus '))!;
  assert.match(nevus, /^nevus +120 +0\.820  +0\.840  +0\.845\* +0\.790  +0\.470$/);
  const header = lines[1];
  // digits line up: a value ends one column before its header does (the '*' or a space follows it)
  assert.equal(nevus.indexOf('0.845') + 6, header.indexOf('Ensemble') + 'Ensemble'.length);
  assert.equal(nevus.indexOf('0.820') + 6, header.indexOf('Lesion-only') + 'Lesion-only'.length);
  assert.ok(lines.includes('* best in the row'));
});
