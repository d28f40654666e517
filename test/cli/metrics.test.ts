import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { register } from '../../src/cli/commands/metrics.ts';
import { writeManifest } from '../../src/data/manifest.ts';
import { runCommand, tempDir } from '../data/helpers.ts';

const HEADER = 'image,lesion:streaks:irregular,lesion:dots,location:upper limbs,location:head:neck,location:back';
// hand-checked below: AP streaks 1, AP dots 5/6, mAP-image (1 + 1/2) / 2, top-1 2/4, top-3 4/4
const ROWS = [
  'a.jpg,0.9,0.4,0.6,0.3,0.1', // truth streaks+dots, upper limbs (rank 1)
  'b.jpg,0.85,0.8,0.5,0.5,0', // truth dots (2nd of its 2 scores), head:neck tied with upper limbs (rank 2)
  'c.jpg,0.1,0.5,0.2,0.3,0.5', // no lesion, back (rank 1)
  'd.jpg,0.3,0.3,0.1,0.1,0.1', // veil only (no column): not in mAP-image; back tied three ways (rank 3)
];

/** A manifest of 6 images (no image files: metrics need only labels) and a score file for 4 of them. */
async function fixture(rows = ROWS): Promise<{ dir: string; manifest: string; scores: string }> {
  const dir = await tempDir('dermtl-metrics-');
  const manifest = join(dir, 'm.csv');
  await writeManifest(manifest, [
    { image: 'a.jpg', lesions: ['streaks:irregular', 'dots'], location: 'upper limbs', group: '1' },
    { image: 'b.jpg', lesions: ['dots'], location: 'head:neck', group: '2' },
    { image: 'c.jpg', lesions: [], location: 'back', group: '3' },
    { image: 'd.jpg', lesions: ['veil'], location: 'back', group: '4' },
    { image: 'e.jpg', lesions: ['dots'], location: 'back', group: '5' },
    { image: 'f.jpg', lesions: ['veil'], location: 'upper limbs', group: '6' },
  ]);
  const scores = join(dir, 's.csv');
  await writeFile(scores, [HEADER, ...rows].join('\n') + '\n');
  return { dir, manifest, scores };
}

const near = (actual: unknown, expected: number) =>
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) < 1e-12, `expected ${expected}, got ${actual}`);

test('dermtl metrics evaluates the images in the score file, prints a table and writes JSON', async () => {
  const { dir, manifest, scores } = await fixture();
  const out = join(dir, 'metrics.json');
  const r = await runCommand(register, ['metrics', '--manifest', manifest, '--scores', scores, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^evaluated 4 of 6 manifest images \(those in .*s\.csv\)\n/);
  assert.match(r.stdout, /note: lesion label\(s\) of the manifest with no score column, not evaluated: veil/);
  assert.match(r.stdout, /lesion thresholds: 0\.5 for every label \(default\)\n/);
  // label, positives, AP, AUC, threshold, sensitivity, specificity
  assert.match(r.stdout, /streaks:irregular\s+1\s+1\.0000\s+1\.0000\s+0\.5000\s+1\.0000\s+0\.6667\n/);
  assert.match(r.stdout, /dots\s+2\s+0\.8333\s+0\.7500\s+0\.5000\s+0\.5000\s+0\.5000\n/);
  assert.match(r.stdout, /mean AUC 0\.8750 over 2 label\(s\)/);
  assert.match(r.stdout, /location balanced accuracy 0\.5000 {2}macro AUC 0\.9583 \(one-vs-rest\)/);
  assert.match(r.stdout, /location calibration: ECE 0\.1250 {2}Brier 0\.4925/);
  assert.match(r.stdout, /mAP-class 0\.9167 over 2 class\(es\)/);
  assert.match(r.stdout, /mAP-image 0\.7500 over 2 image\(s\) with a lesion label/);
  assert.match(r.stdout, /location top-1 0\.5000 {2}top-3 1\.0000 {2}\(4 images, 3 locations; ties count against\)/);
  assert.match(r.stdout, /skipped, not averaged: veil \(no score column\)/);
  const doc = JSON.parse(await readFile(out, 'utf8'));
  assert.equal(doc.n, 4);
  assert.equal(doc.manifestImages, 6);
  assert.equal(doc.manifest, 'm.csv');
  assert.deepEqual(doc.scores, ['s.csv']);
  assert.deepEqual(Object.keys(doc.ap), ['streaks:irregular', 'dots']);
  near(doc.ap['streaks:irregular'], 1);
  near(doc.ap.dots, 5 / 6);
  near(doc.mapClass, 11 / 12);
  near(doc.mapImage, 0.75);
  assert.equal(doc.top1, 0.5);
  assert.equal(doc.top3, 1);
  assert.deepEqual(doc.skipped, [{ label: 'veil', reason: 'no score column' }]);
  assert.deepEqual(doc.positives, {
    lesion: { 'streaks:irregular': 1, dots: 2 },
    location: { 'upper limbs': 1, 'head:neck': 1, back: 2 },
  });
  // by hand (see ROWS): dots AUC = pairs (a, b) x (c, d) won: a<c, a>d, b>c, b>d -> 3/4
  assert.deepEqual(doc.auc, { 'streaks:irregular': 1, dots: 0.75 });
  near(doc.meanAuc, 0.875);
  assert.deepEqual(doc.operatingPoints.dots, { threshold: 0.5, sensitivity: 0.5, specificity: 0.5 });
  assert.equal(doc.thresholdSource, '0.5 for every label (default)');
  // predicted: a upper limbs, b upper limbs (tied with its true head:neck), c back, d upper limbs (three-way tie)
  assert.deepEqual(doc.confusion, {
    labels: ['upper limbs', 'head:neck', 'back'],
    matrix: [
      [1, 0, 0],
      [1, 0, 0],
      [1, 0, 1],
    ],
  });
  assert.equal(doc.balancedAccuracy, 0.5);
  // back: positives c .5, d .1 vs negatives a .1, b 0 -> 1 + 1 + 1/2 + 1 of 4
  assert.deepEqual(doc.locationAuc, { 'upper limbs': 1, 'head:neck': 1, back: 0.875 });
  near(doc.macroAuc, (1 + 1 + 0.875) / 3);
  near(doc.calibration.location.ece, 0.125);
  near(doc.calibration.location.brier, 1.97 / 4);
  near(doc.calibration.lesion.brier, 1.5725 / 8);
  assert.equal(doc.calibration.lesion.bins.length, 15);
});

test('dermtl metrics --thresholds: one number, a JSON file of label thresholds, a model folder; bad values name the flag', async () => {
  const { dir, manifest, scores } = await fixture();
  const one = await runCommand(register, [
    'metrics',
    '--manifest',
    manifest,
    '--scores',
    scores,
    '--thresholds',
    '0.82',
    '--out',
    join(dir, 'one.json'),
  ]);
  assert.equal(one.code, 0, one.stderr);
  // streaks >= .82: a and b -> sensitivity 1, specificity 2/3; dots >= .82: none
  const doc = JSON.parse(await readFile(join(dir, 'one.json'), 'utf8'));
  assert.deepEqual(doc.operatingPoints.dots, { threshold: 0.82, sensitivity: 0, specificity: 1 });
  assert.equal(doc.thresholdSource, '0.82 for every label (--thresholds)');
  const file = join(dir, 't.json');
  await writeFile(file, JSON.stringify({ 'streaks:irregular': 0.88, dots: 0.45 }));
  const perLabel = await runCommand(register, [
    'metrics',
    '--manifest',
    manifest,
    '--scores',
    scores,
    '--thresholds',
    file,
    '--out',
    join(dir, 'two.json'),
  ]);
  assert.equal(perLabel.code, 0, perLabel.stderr);
  const two = JSON.parse(await readFile(join(dir, 'two.json'), 'utf8'));
  assert.deepEqual(two.operatingPoints['streaks:irregular'], { threshold: 0.88, sensitivity: 1, specificity: 1 });
  assert.deepEqual(two.operatingPoints.dots, { threshold: 0.45, sensitivity: 0.5, specificity: 0.5 });
  await writeFile(file, JSON.stringify({ dots: 0.45 }));
  const missing = await runCommand(register, [
    'metrics',
    '--manifest',
    manifest,
    '--scores',
    scores,
    '--thresholds',
    file,
  ]);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /--thresholds .*t\.json: no threshold for 1 scored lesion label\(s\)[\s\S]*streaks:irregular/,
  );
  const bad = await runCommand(register, [
    'metrics',
    '--manifest',
    manifest,
    '--scores',
    scores,
    '--thresholds',
    '1.5',
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--thresholds 1\.5: a single threshold must be in \[0, 1\]/);
  const nowhere = await runCommand(register, [
    'metrics',
    '--manifest',
    manifest,
    '--scores',
    scores,
    '--thresholds',
    join(dir, 'nope'),
  ]);
  assert.match(
    nowhere.stderr,
    /--thresholds .*nope: neither a number in \[0, 1\] nor an existing model folder or JSON file/,
  );
  const noCalibration = await runCommand(register, [
    'metrics',
    '--manifest',
    manifest,
    '--scores',
    scores,
    '--thresholds',
    dir,
  ]);
  assert.match(noCalibration.stderr, /the model folder has no calibration\.json/);
  // a model folder's calibration.json
  const labels = (t: number) => ({ threshold: t, f1: 0.5, source: 'validation' });
  await writeFile(
    join(dir, 'calibration.json'),
    JSON.stringify({
      version: 1,
      fittedOn: { images: 9, tta: '10crop', note: 'test' },
      thresholds: {
        rule: 'max F1',
        labels: { 'streaks:irregular': labels(0.88), dots: labels(0.45), veil: labels(0.5) },
      },
    }),
  );
  const fromModel = await runCommand(register, [
    'metrics',
    '--manifest',
    manifest,
    '--scores',
    scores,
    '--thresholds',
    dir,
    '--out',
    join(dir, 'three.json'),
  ]);
  assert.equal(fromModel.code, 0, fromModel.stderr);
  const three = JSON.parse(await readFile(join(dir, 'three.json'), 'utf8'));
  assert.deepEqual(three.operatingPoints, two.operatingPoints);
  assert.match(three.thresholdSource, /calibration\.json \(chosen on the model's validation part\)$/);
});

test('dermtl metrics with two score files evaluates their per-label max', async () => {
  const { dir, manifest, scores } = await fixture();
  const second = join(dir, 's2.csv');
  // only d.jpg changes: its back score .9 makes it a top-1 hit; its lesion scores stay below the first model's
  await writeFile(
    second,
    [HEADER, 'd.jpg,0,0,0,0,0.9', 'c.jpg,0,0,0,0,0', 'b.jpg,0,0,0,0,0', 'a.jpg,0,0,0,0,0'].join('\n'),
  );
  const out = join(dir, 'ens.json');
  const r = await runCommand(register, ['metrics', '--manifest', manifest, '--scores', scores, second, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /those in the max-ensemble of .*s\.csv, .*s2\.csv/);
  const doc = JSON.parse(await readFile(out, 'utf8'));
  assert.equal(doc.top1, 0.75);
  near(doc.mapClass, 11 / 12);
  assert.deepEqual(doc.scores, ['s.csv', 's2.csv']);
  // files that do not score the same images cannot be combined
  await writeFile(second, [HEADER, 'd.jpg,0,0,0,0,0.9'].join('\n'));
  const bad = await runCommand(register, ['metrics', '--manifest', manifest, '--scores', scores, second]);
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /cannot ensemble .*s\.csv and .*s2\.csv: they must score the same images and labels[\s\S]*image\(s\) only in .*s\.csv: a\.jpg, b\.jpg, c\.jpg/,
  );
});

test('dermtl metrics: a lesion-only score file gives no top-k keys', async () => {
  const { dir, manifest, scores } = await fixture();
  await writeFile(scores, 'image,lesion:dots\na.jpg,0.2\nb.jpg,0.7\nc.jpg,0.5\n');
  const out = join(dir, 'l.json');
  const r = await runCommand(register, ['metrics', '--manifest', manifest, '--scores', scores, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /top-1/);
  const doc = JSON.parse(await readFile(out, 'utf8'));
  assert.equal('top1' in doc || 'top3' in doc, false);
  assert.equal(doc.n, 3);
  near(doc.mapClass, 5 / 6); // b+ (.7), c (.5), a+ (.2)
  near(doc.mapImage, 1); // a and b each have one scored label, which is positive
  assert.deepEqual(doc.skipped, [
    { label: 'streaks:irregular', reason: 'no score column' },
    { label: 'veil', reason: 'no score column' },
  ]);
});

/** Runs the command on a fixture whose score file is `text`; returns exit code and stderr. */
async function failing(text: string, extra: string[] = []): Promise<{ code: number; stderr: string; scores: string }> {
  const { manifest, scores } = await fixture();
  await writeFile(scores, text);
  const r = await runCommand(register, ['metrics', '--manifest', manifest, '--scores', scores, ...extra]);
  return { code: r.code, stderr: r.stderr, scores };
}

test('dermtl metrics: bad score files exit 1 with one message naming file, line and column', async () => {
  const cases: [string, RegExp][] = [
    [
      [HEADER, ROWS[0], 'b.jpg,0.85,oops,0.5,0.5,0'].join('\n'),
      /invalid score file .*s\.csv \(1 problem\):\n {2}- line 3, column "lesion:dots": "oops" is not a finite number/,
    ],
    [
      [HEADER, ROWS[0], 'b.jpg,0.85,NaN,0.5,0.5,0'].join('\n'),
      /line 3, column "lesion:dots": "NaN" is not a finite number/,
    ],
    [[HEADER, ROWS[0], ROWS[0]].join('\n'), /line 3: duplicate image "a\.jpg" \(first at line 2\)/],
    [
      [HEADER, ROWS[0], 'zz.jpg,0,0,0,0,0'].join('\n'),
      /does not match manifest .*m\.csv \(1 problem\):\n {2}- line 3: image "zz\.jpg" is not in manifest/,
    ],
    [
      [HEADER + ',lesion:globules', ROWS[0] + ',0'].join('\n'),
      /column "lesion:globules": "globules" is not a lesion label of the manifest/,
    ],
    [
      ['image,lesion:dots,location:back', 'a.jpg,0,1'].join('\n'),
      /no score column \(top-k needs every location\): location:head:neck, location:upper limbs/,
    ],
    [
      ['image,score', 'a.jpg,1'].join('\n'),
      /line 1: column "score" is neither "image" nor lesion:<label> nor location:<label>/,
    ],
    [[HEADER, 'a.jpg,0.9'].join('\n'), /line 2: expected 6 columns, found 2/],
    ['', /invalid score file .*s\.csv: it is empty/],
  ];
  for (const [text, expected] of cases) {
    const r = await failing(text);
    assert.equal(r.code, 1, `${text}\n${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.ok(r.stderr.includes(r.scores), `the message names the score file: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('dermtl metrics: missing files and flags', async () => {
  const { manifest, scores } = await fixture();
  const noScores = await runCommand(register, ['metrics', '--manifest', manifest, '--scores', scores + '.missing']);
  assert.equal(noScores.code, 1);
  assert.match(noScores.stderr, /score file not found: .*s\.csv\.missing/);
  const noManifest = await runCommand(register, ['metrics', '--manifest', '/nonexistent/m.csv', '--scores', scores]);
  assert.equal(noManifest.code, 1);
  assert.match(noManifest.stderr, /manifest not found: \/nonexistent\/m\.csv/);
  const noFlag = await runCommand(register, ['metrics', '--manifest', manifest]);
  assert.equal(noFlag.code, 2);
  assert.match(noFlag.stderr, /required option '--scores <s\.csv\.\.\.>' not specified/);
  const help = await runCommand(register, ['metrics', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--out <m\.json>\s+also write the metrics as JSON/);
  assert.match(help.stdout, /ties count against|ranks above it/);
});
