// `dermtl cv` end to end on the tiny trunk: a valid results.json and report, the per-fold run folders, pooled
// metrics equal to metrics of the concatenated fold scores, the prior and linear baselines, reuse on a re-run,
// resume after a stop, refusal of other settings, and a reported skip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadManifest, writeManifest } from '../../src/data/manifest.ts';
import { runStudy, concatTables, type StudyOptions } from '../../src/eval/study.ts';
import { evaluate, evaluationJson } from '../../src/metrics/metrics.ts';
import { readScores, type ScoreTable } from '../../src/metrics/scores.ts';
import { readResults, writeStudyReport, type StudyResults } from '../../src/report/study/index.ts';
import { DEFAULT_MODEL_PATH } from '../../src/serve/defaultModel.ts';
import { unitDir } from '../../src/eval/studyPlan.ts';
import { siteCorrected } from '../../src/eval/siteCorrection.ts';
import { labelsFor } from '../../src/train/targets.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { studyDemo, tempDir, tinyStudyConfig } from './studyFixture.ts';

const TRAINED = ['lesion', 'location', 'mtl'] as const;
const ALL = ['lesion', 'location', 'mtl', 'ensemble', 'prior', 'site-prior', 'linear'] as const;
/** 3 trained models and 3 baselines per fold. */
const UNITS = (k: number) => 6 * k;

async function options(
  extra: Partial<StudyOptions> & { cfg?: Record<string, unknown> } = {},
): Promise<StudyOptions & { lines: string[] }> {
  const demo = await studyDemo();
  const { cfg, ...rest } = extra;
  const lines: string[] = [];
  return {
    manifest: demo.manifest,
    out: join(await tempDir(), 'study'),
    folds: 3,
    config: tinyStudyConfig(demo.cache, cfg),
    progress: false,
    log: (l) => lines.push(l),
    lines,
    writeReport: writeStudyReport,
    ...rest,
  };
}

async function mtime(path: string): Promise<number> {
  return (await stat(path)).mtimeMs;
}

/** The fold tables of a model as written in its unit folders. */
async function foldTables(study: string, model: string, k: number): Promise<ScoreTable[]> {
  return Promise.all(
    Array.from({ length: k }, (_, f) => readScores(join(study, 'models', model, `fold-${f}`, 'scores.csv'))),
  );
}

/** Per-fold, pooled and paired numbers of a results file, without timing and dates. */
function numbers(r: StudyResults): unknown {
  return { models: r.models, paired: r.paired, skipped: r.skipped };
}

/** Deep equality, numbers within 1e-12 (results.json rounds an AP of 1 + 1 ulp to 1). */
function assertClose(actual: unknown, expected: unknown, at: string): void {
  if (typeof expected === 'number') {
    assert.equal(typeof actual, 'number', at);
    assert.ok(Math.abs((actual as number) - expected) <= 1e-12, `${at}: ${actual} vs ${expected}`);
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', at);
    assert.deepEqual(Object.keys(actual as object).sort(), Object.keys(expected).sort(), at);
    for (const [k, v] of Object.entries(expected)) assertClose((actual as Record<string, unknown>)[k], v, `${at}.${k}`);
  } else {
    assert.deepEqual(actual, expected, at);
  }
}

let first: { opts: StudyOptions & { lines: string[] }; results: StudyResults } | null = null;

async function firstStudy(): Promise<{ opts: StudyOptions & { lines: string[] }; results: StudyResults }> {
  if (first) return first;
  const opts = await options();
  const r = await runStudy(opts);
  assert.deepEqual(r.counts, { trained: UNITS(3), reused: 0, skipped: 0 });
  first = { opts, results: r.results };
  return first;
}

test('a 3-fold study writes a valid results.json, the report and a run folder per model and fold', async () => {
  const { opts } = await firstStudy();
  const dir = opts.out;
  const results = await readResults(join(dir, 'results.json')); // validates with the schema
  assert.equal(results.folds, 3);
  assert.equal(results.dataset.stats.images, 36);
  assert.equal(results.lesionLabels.length, 10);
  assert.deepEqual(
    results.locationLabels,
    ['arm', 'back', 'chest', 'face', 'foot', 'hand', 'leg', 'scalp'].filter((l) => results.locationLabels.includes(l)),
  );
  assert.ok(results.locationLabels.length >= 5);
  assert.deepEqual(results.skipped, []);
  assert.equal(results.config.trunk, 'tiny');
  assert.equal((results.config.eval as { tta: string }).tta, '10crop');
  assert.equal('task' in results.config, false);
  assert.match(
    results.command,
    /^dermtl cv --manifest \S+manifest\.csv --out \S+study --folds 3 --mode frozen --seed 0 --tta 10crop$/,
  );

  const folds = JSON.parse(await readFile(join(dir, 'folds.json'), 'utf8'));
  assert.equal(folds.folds, 3);
  const testSizes = folds.splits.map((s: { test: string[] }) => s.test.length);
  assert.equal(
    testSizes.reduce((a: number, b: number) => a + b, 0),
    36,
  );
  for (const model of ALL) {
    assert.deepEqual(
      results.models[model]!.folds.map((f) => f!.n),
      testSizes,
      model,
    );
    assert.equal(results.models[model]!.pooled!.n, 36, model);
    assert.equal(results.timing.models[model]!.length, 3);
  }
  for (const model of TRAINED) {
    for (let f = 0; f < 3; f++) {
      const u = unitDir(dir, model, f);
      const run = JSON.parse(await readFile(join(u, 'run.json'), 'utf8'));
      assert.equal(run.status, 'done');
      assert.equal(run.task, model);
      assert.equal(run.folds.fold, f);
      assert.equal(run.seed, 0);
      assert.ok((await stat(join(u, 'model', 'heads.onnx'))).size > 0, 'a frozen run keeps its heads only');
      await assert.rejects(stat(join(u, 'checkpoints')), 'a finished run keeps no checkpoint');
      const unit = JSON.parse(await readFile(join(u, 'unit.json'), 'utf8'));
      assert.equal(unit.images, testSizes[f]);
      // the fold's entry is evalRun's metrics.json of the same scores
      const metrics = JSON.parse(await readFile(join(u, 'metrics.json'), 'utf8'));
      assert.equal(
        metrics.mapClass ?? null,
        (results.models[model].folds[f] as { mapClass?: number }).mapClass ?? null,
      );
      assert.equal(metrics.top1 ?? null, (results.models[model].folds[f] as { top1?: number }).top1 ?? null);
    }
  }
  // the serving default is the MTL fold-0 model of the demo study
  assert.equal(DEFAULT_MODEL_PATH, join('demo', 'study', 'models', 'mtl', 'fold-0', 'model'));
  // heads: lesion-only has no location metrics, location-only no lesion metrics
  assert.equal('top1' in results.models.lesion.pooled!, false);
  assert.equal('mapClass' in results.models.location.pooled!, false);
  assert.ok(
    results.models.mtl.pooled!.top1! >= 0 && results.models.mtl.pooled!.top3! >= results.models.mtl.pooled!.top1!,
  );

  const html = await readFile(join(dir, 'report.html'), 'utf8');
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /3-fold cross-validation/);
  assert.ok((html.match(/<svg/g) ?? []).length >= 2, 'Figures 1 and 3 are inlined');
  for (const f of ['table1.md', 'figure1.svg', 'figure1.png', 'figure3.svg', 'figure3.png', 'study.json'])
    assert.ok((await stat(join(dir, f))).size > 0, f);
  // calibration before/after per trained model and head, discrimination metrics, reliability diagrams, confusion matrices
  for (const model of ['lesion', 'location', 'mtl'] as const) {
    const before = results.beforeCalibration?.[model];
    assert.ok(before?.pooled && before.folds.every((f) => f !== null), model);
    const after = results.models[model].pooled!.calibration as Record<string, { ece: number } | undefined>;
    for (const head of ['lesion', 'location'] as const)
      assert.equal(before.pooled[head] === undefined, after[head] === undefined, `${model} ${head}`);
  }
  assert.equal(typeof results.models.mtl.pooled!.meanAuc, 'number');
  assert.equal(typeof results.models.mtl.mean.balancedAccuracy, 'number');
  assert.deepEqual((results.models.location.pooled!.confusion as { labels: string[] }).labels, results.locationLabels);
  assert.match(html, /<section id="calibration">[\s\S]*ECE before[\s\S]*mean AUC[\s\S]*MTL sensitivity/);
  const ops = results.operatingPoints?.mtl;
  assert.ok(ops && ops.folds.every((f) => f !== null), 'each fold at its own thresholds');
  assert.deepEqual(Object.keys(ops.pooled), results.lesionLabels);
  for (const label of results.lesionLabels) {
    const fold0: { threshold: number; sensitivity: number | null } = ops.folds[0]![label];
    assert.ok(fold0.threshold > 0 && fold0.threshold <= 1);
    const positives = (results.models.mtl.folds[0] as { positives: { lesion: Record<string, number> } }).positives
      .lesion[label];
    assert.equal(
      fold0.sensitivity === null,
      !positives,
      'sensitivity is undefined exactly without a positive test image',
    );
  }
  for (const f of ['reliability.svg', 'reliability.png', 'confusion.svg', 'confusion.png'])
    assert.ok((await stat(join(dir, f))).size > 0, f);
  // one progress line per model and fold, with the study's ETA
  const unitLines = opts.lines.filter((l) => /^\[\s*\d+\/21\]/.test(l));
  assert.equal(unitLines.length, 21);
  assert.match(
    unitLines[0],
    /^\[ 1\/21\] lesion-only\s+fold 1\/3: trained and evaluated in [\d.]+ s; mAP-class [\d.]+, mAP-image [\d.]+ on \d+ test images \| study ETA \d+ s$/,
  );
  assert.match(
    unitLines[4],
    /^\[ 5\/21\] prior\s+fold 1\/3: baseline fitted in [\d.]+ s; mAP-class [\d.]+, mAP-image [\d.]+, top-1 [\d.]+, top-3 [\d.]+ on \d+ test images/,
  );
  assert.match(
    unitLines[5],
    /^\[ 6\/21\] site prior\s+fold 1\/3: baseline fitted in [\d.]+ s; mAP-class [\d.]+, mAP-image [\d.]+ on \d+ test images/,
  );
  assert.match(
    unitLines[6],
    /^\[ 7\/21\] linear\s+fold 1\/3: baseline fitted in [\d.]+ s; lambda [\d.e-]+ \(lesion\), [\d.e-]+ \(location\); mAP-class/,
  );
  assert.match(unitLines[17], /ensemble\s+fold 3\/3: max of the lesion-only and MTL scores.*\| study done$/);
  assert.match(unitLines[20], /^\[21\/21\] linear\s+fold 3\/3: .*\| study done$/);
});

test("pooled metrics are the metrics of all folds' held-out scores concatenated; the ensemble is the max of its members", async () => {
  const { opts, results } = await firstStudy();
  const manifest = await loadManifest(opts.manifest);
  const byImage = new Map(manifest.samples.map((s) => [s.image, s]));
  for (const model of ALL) {
    const all = concatTables(await foldTables(opts.out, model, 3));
    assert.equal(all.images.length, 36);
    assert.equal(new Set(all.images).size, 36, 'every image is scored exactly once, by the fold that held it out');
    const expected = evaluationJson(
      evaluate(
        all.images.map((i) => byImage.get(i)!),
        all,
      ),
    );
    assertClose(results.models[model]!.pooled, JSON.parse(JSON.stringify(expected)), model);
  }
  // pooled is not the mean of the folds (AP is not additive), and the per-fold mean is reported separately
  const m = results.models.mtl;
  const foldMean = m.folds.reduce((a, f) => a + f!.mapClass!, 0) / 3;
  assert.ok(Math.abs(m.mean.mapClass! - foldMean) < 1e-12);
  assert.notEqual(m.pooled!.mapClass, m.mean.mapClass);
  // ensemble = per image and label the max of the lesion-only and MTL scores
  const [lesion, mtl, ens] = await Promise.all(
    ['lesion', 'mtl', 'ensemble'].map(async (n) => concatTables(await foldTables(opts.out, n, 3))),
  );
  const row = (t: ScoreTable, image: string) => t.lesion[t.images.indexOf(image)];
  for (const image of ens.images) {
    const want = Array.from(row(lesion, image), (x, c) => Math.max(x, row(mtl, image)[c]));
    assert.deepEqual(Array.from(row(ens, image)), want);
  }
  assert.deepEqual(ens.locationLabels, []);
  // paired MTL - lesion-only differences, fold by fold
  const p = results.paired.mapClass!;
  assert.deepEqual(p.folds, [0, 1, 2]);
  p.differences.forEach((d, f) =>
    assert.ok(
      Math.abs(d - (results.models.mtl.folds[f]!.mapClass! - results.models.lesion.folds[f]!.mapClass!)) < 1e-12,
    ),
  );
  assert.ok(p.ci[0] <= p.mean && p.mean <= p.ci[1]);
});

test("the baselines: prior scores are the training part's label frequencies; linear has its lambdas; both are in table1.md and report.html", async () => {
  const { opts, results } = await firstStudy();
  const manifest = await loadManifest(opts.manifest);
  const folds = JSON.parse(await readFile(join(opts.out, 'folds.json'), 'utf8')).splits as { test: string[] }[];
  for (let f = 0; f < 3; f++) {
    const test = new Set(folds[f].test);
    const train = manifest.samples.filter((s) => !test.has(s.image));
    const prior = await readScores(join(unitDir(opts.out, 'prior', f), 'scores.csv'));
    const withLesions = train.filter((s) => s.lesions.length > 0);
    prior.lesionLabels.forEach((label, c) => {
      const want = withLesions.filter((s) => s.lesions.includes(label)).length / withLesions.length;
      for (const row of prior.lesion) assert.ok(Math.abs(row[c] - want) < 1e-15, `${label} in fold ${f}`);
    });
    prior.locationLabels.forEach((label, c) => {
      const want = train.filter((s) => s.location === label).length / train.length;
      for (const row of prior.location) assert.ok(Math.abs(row[c] - want) < 1e-15);
    });
    // a constant score: the AP of a label is its test positive rate
    const ev = results.models.prior.folds[f]!;
    for (const [label, ap] of Object.entries(ev.ap))
      assert.ok(Math.abs(ap - ev.positives.lesion![label] / ev.n) < 1e-12, label);
    const linear = unitDir(opts.out, 'linear', f);
    const file = JSON.parse(await readFile(join(linear, 'linear.json'), 'utf8'));
    assert.equal(file.format, 'dermtl-linear-baseline');
    assert.equal(file.choice.rule, 'validation');
    assert.ok(file.choice.path.length >= 3, 'the path runs at least PATIENCE + 1 lambdas');
    assert.deepEqual(results.models.linear.choices[f], {
      lesionLambda: file.choice.lesionLambda,
      locationLambda: file.choice.locationLambda,
      rule: 'validation',
      validationImages: file.choice.validationImages,
    });
    const metrics = JSON.parse(await readFile(join(linear, 'metrics.json'), 'utf8'));
    assert.equal(metrics.kind, 'linear');
    assert.equal(metrics.mapClass, results.models.linear.folds[f]!.mapClass);
    assert.equal(JSON.parse(await readFile(join(linear, 'unit.json'), 'utf8')).model, 'linear');
  }
  // both heads; the comparisons against linear
  for (const m of ['prior', 'linear'] as const) {
    assert.equal(typeof results.models[m].pooled!.mapClass, 'number');
    assert.ok(results.models[m].pooled!.top3! >= results.models[m].pooled!.top1!);
  }
  // the site prior scores lesions only
  const sitePrior = results.models['site-prior']!.pooled!;
  assert.equal(typeof sitePrior.mapClass, 'number');
  assert.equal('top1' in sitePrior, false);
  assert.deepEqual(
    results.comparisons.map((c) => `${c.a}-${c.b}`),
    ['mtl-linear', 'lesion-linear', 'location-linear'],
  );
  const d = results.comparisons[0].mapClass!;
  d.differences.forEach((x, f) =>
    assert.ok(
      Math.abs(x - (results.models.mtl.folds[f]!.mapClass! - results.models.linear.folds[f]!.mapClass!)) < 1e-12,
    ),
  );
  const md = await readFile(join(opts.out, 'table1.md'), 'utf8');
  assert.match(md, /\| Lesion-only \| +MTL \| +Ensemble \| +Linear \| +Prior \| +Site prior \|/);
  assert.match(md, /Lambdas per fold \(lesion\/location\): /);
  const html = await readFile(join(opts.out, 'report.html'), 'utf8');
  assert.match(html, /<section id="baselines">/);
  assert.match(html, /<td>MTL − linear<\/td>/);
  assert.match(await readFile(join(opts.out, 'figure3.svg'), 'utf8'), />Prior</);
});

test('a re-run reuses every finished model/fold (no retraining) and gives the same numbers', async () => {
  const { opts, results } = await firstStudy();
  const model = join(unitDir(opts.out, 'mtl', 1), 'model', 'heads.onnx');
  const before = await mtime(model);
  const lines: string[] = [];
  const r = await runStudy({ ...opts, log: (l) => lines.push(l) });
  assert.deepEqual(r.counts, { trained: 0, reused: UNITS(3), skipped: 0 });
  assert.equal(await mtime(model), before);
  assert.equal(lines.filter((l) => / reused \(finished earlier/.test(l)).length, UNITS(3));
  assert.doesNotMatch(lines.join('\n'), /features \(/, 'nothing to train: no feature is even looked up');
  assert.deepEqual(numbers(r.results), numbers(results));
  assert.ok(
    r.results.timing.totalSeconds >= results.timing.totalSeconds,
    "the study's time adds up over its invocations",
  );
});

test('a stopped study continues where it stopped: a half-trained run resumes, a damaged one is redone', async () => {
  const { results } = await firstStudy();
  const opts = await options({ verbose: true });
  const ac = new AbortController();
  let units = 0;
  // stop during the location-only training of fold 2 (the 9th unit line: 7 per fold), after its first epoch
  const log = (l: string) => {
    if (/^\[\s*\d+\/21\]/.test(l)) units++;
    if (units === 8 && l.startsWith('epoch 1/')) ac.abort();
  };
  await assert.rejects(
    runStudy({ ...opts, log, signal: ac.signal }),
    (e: unknown) =>
      e instanceof DermtlError && e.exitCode === 130 && /was stopped; run the same command again/.test(e.message),
  );
  const half = unitDir(opts.out, 'location', 1);
  assert.equal(JSON.parse(await readFile(join(half, 'run.json'), 'utf8')).status, 'training');
  await assert.rejects(stat(join(half, 'unit.json')));
  await assert.rejects(stat(join(opts.out, 'results.json')), 'no results from a stopped study');
  const spentBeforeStop = JSON.parse(await readFile(join(opts.out, 'study.json'), 'utf8')).spentSeconds;
  assert.ok(spentBeforeStop > 0, "the stopped invocation's time is kept");
  const kept = await mtime(join(unitDir(opts.out, 'mtl', 0), 'model', 'heads.onnx'));
  // a damaged run folder of a later unit (no run.json, something else in it) is deleted and trained afresh
  const damaged = unitDir(opts.out, 'mtl', 2);
  await mkdir(damaged, { recursive: true });
  await writeFile(join(damaged, 'scores.csv'), 'image,lesion:macule\nnot-a-real-image.jpg,0.5\n');

  const lines: string[] = [];
  const r = await runStudy({ ...opts, verbose: false, log: (l) => lines.push(l) });
  // reused: fold 1's three models and three baselines, fold 2's lesion-only; the rest (the damaged unit too) is done now
  assert.deepEqual(r.counts, { trained: 11, reused: 7, skipped: 0 });
  assert.equal(await mtime(join(unitDir(opts.out, 'mtl', 0), 'model', 'heads.onnx')), kept);
  assert.equal(JSON.parse(await readFile(join(damaged, 'run.json'), 'utf8')).status, 'done');
  assert.ok(r.results.timing.totalSeconds > spentBeforeStop);
  // the resumed training ends where an uninterrupted one does
  assert.deepEqual(numbers(r.results), numbers(results));
});

test('a stop while features are being cached ends the study with exit code 130; the re-run finishes it', async () => {
  const opts = await options({ config: tinyStudyConfig(join(await tempDir(), 'fresh-cache')) });
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(
    runStudy({ ...opts, signal: ac.signal }),
    (e: unknown) => e instanceof DermtlError && e.exitCode === 130 && /stopped while caching features/.test(e.message),
  );
  await assert.rejects(stat(unitDir(opts.out, 'lesion', 0)), 'nothing was trained');
  const r = await runStudy(opts);
  assert.deepEqual(r.counts, { trained: UNITS(3), reused: 0, skipped: 0 });
});

test('a re-run with other settings is refused; --force discards the old study', async () => {
  const { opts } = await firstStudy();
  const demo = await studyDemo();
  await assert.rejects(
    runStudy({ ...opts, seed: 1 }),
    (e: unknown) =>
      e instanceof DermtlError &&
      /other settings; refusing to mix results/.test(e.message) &&
      /--seed: started with 0, now 1/.test(e.message),
  );
  await assert.rejects(runStudy({ ...opts, folds: 2 }), /--folds: started with 3, now 2/);
  await assert.rejects(runStudy({ ...opts, tta: 'center' }), /--tta: started with 10crop, now center/);
  await assert.rejects(
    runStudy({
      ...opts,
      config: tinyStudyConfig(demo.cache, { frozen: { epochs: 3, views: 2, shared: { hidden: 16, dropout: 0.5 } } }),
    }),
    /the resolved config differs in frozen\.epochs/,
  );
  // another manifest (one label changed)
  const m = await loadManifest(opts.manifest);
  const other = join(demo.root, 'demo', 'other.csv');
  await writeManifest(
    other,
    m.samples.map((s, i) => ({
      image: s.image,
      lesions: s.lesions,
      location: i === 0 ? 'scalp' : s.location,
      group: s.group,
    })),
  );
  await assert.rejects(runStudy({ ...opts, manifest: other }), /the manifest differs/);
  // a folder that is not a study
  const foreign = await tempDir();
  await writeFile(join(foreign, 'thesis.txt'), 'mine');
  await assert.rejects(runStudy({ ...opts, out: foreign }), /not empty and holds no dermtl study/);

  // --force: a fresh study of the new settings in the same folder
  const copy = await options({ out: join(await tempDir(), 'study') });
  await runStudy(copy);
  const r = await runStudy({ ...copy, folds: 2, force: true });
  assert.deepEqual(r.counts, { trained: UNITS(2), reused: 0, skipped: 0 });
  assert.equal(r.results.folds, 2);
  await assert.rejects(stat(unitDir(copy.out, 'mtl', 2)), 'fold 2 of the old 3-fold study is gone');
});

test('a model that cannot be trained in a fold is reported as skipped and the study goes on', async () => {
  const demo = await studyDemo();
  const m = await loadManifest(demo.manifest);
  // every image at "arm" except one group at "back": the fold that holds that group out has a single location to train on
  const backGroup = m.samples[0].group;
  const file = join(demo.root, 'demo', 'one-back.csv');
  await writeManifest(
    file,
    m.samples.map((s) => ({
      image: s.image,
      lesions: s.lesions,
      location: s.group === backGroup ? 'back' : 'arm',
      group: s.group,
    })),
  );
  const opts = await options({ manifest: file, cfg: { validation: { fraction: 0 } } });
  const r = await runStudy(opts);
  const folds = JSON.parse(await readFile(join(opts.out, 'folds.json'), 'utf8'));
  const held = folds.splits.findIndex((s: { test: string[] }) => s.test.includes(m.samples[0].image));
  // the baselines need what MTL needs: skipped in the same fold
  assert.deepEqual(r.counts, { trained: 13, reused: 0, skipped: 5 });
  assert.deepEqual(
    r.results.skipped.map((s) => [s.model, s.fold]),
    [
      ['location', held],
      ['mtl', held],
      ['ensemble', held],
      ['prior', held],
      ['site-prior', held],
      ['linear', held],
    ],
  );
  assert.match(
    r.results.skipped[0].reason,
    /fold \d's training part: task location needs at least 2 body locations among the training images, they all show "arm"/,
  );
  assert.match(r.results.skipped[2].reason, /needs the lesion-only and MTL models/);
  assert.match(r.results.skipped[4].reason, /they all show "arm"/);
  assert.equal(r.results.models.linear.choices[held], null);
  // validation.fraction 0: no validation part to choose lambda on
  const c = r.results.models.linear.choices.find((x) => x !== null)!;
  assert.deepEqual([c.rule, c.lesionLambda, c.reason], ['default', 0.1, 'validation.fraction is 0']);
  assert.match(opts.lines.join('\n'), /location-only fold \d\/3: SKIPPED: /);
  const results = await readResults(join(opts.out, 'results.json'));
  assert.equal(results.models.location.folds[held], null);
  assert.equal(results.models.mtl.folds[held], null);
  assert.notEqual(results.models.lesion.folds[held], null);
  assert.equal(results.models.location.pooled!.n, 36 - folds.splits[held].test.length);
  assert.equal(results.models.lesion.pooled!.n, 36);
  assert.equal(results.timing.models.mtl![held], null);
  assert.deepEqual(
    results.paired.mapClass!.folds,
    [0, 1, 2].filter((f) => f !== held),
  );
  // the skip is not cached: a re-run reports it again and reuses the rest
  const again = await runStudy(opts);
  assert.deepEqual(again.counts, { trained: 0, reused: 13, skipped: 5 });
  assert.match(await readFile(join(opts.out, 'report.html'), 'utf8'), /location-only/);
});

test('finetune mode: the baselines still use the ten-crop features of the trunk as initialised, computed once for them', async () => {
  const opts = await options({
    folds: 2,
    mode: 'finetune',
    config: tinyStudyConfig(join(await tempDir(), 'ft-cache'), { finetune: { epochs: 1 } }),
  });
  const r = await runStudy(opts);
  assert.deepEqual(r.counts, { trained: UNITS(2), reused: 0, skipped: 0 });
  assert.equal(
    opts.lines.filter((l) =>
      /^baseline features \(10 test crops per image\): 36 image\(s\) computed, 0 from the cache/.test(l),
    ).length,
    1,
  );
  assert.equal(typeof r.results.models.linear.pooled!.mapClass, 'number');
  assert.equal(r.results.models.linear.choices.length, 2);
});

test('--only-folds: a partial study runs those folds alone, is labelled PARTIAL everywhere and never mixes with a full one', async () => {
  const opts = await options();
  await assert.rejects(
    runStudy({ ...opts, onlyFolds: '3' }),
    (e: unknown) => e instanceof DermtlError && /--only-folds 3: expected fold numbers 0\.\.2/.test(e.message),
  );
  await assert.rejects(runStudy({ ...opts, onlyFolds: 'x,1' }), /not a fold: x/);
  await assert.rejects(stat(opts.out), 'a refused --only-folds leaves no study folder');
  const r = await runStudy({ ...opts, onlyFolds: '1' });
  assert.deepEqual(r.results.onlyFolds, [1]);
  assert.equal(r.counts.trained, UNITS(1));
  for (const m of ALL) {
    assert.equal(r.results.models[m]!.folds[0], null, `${m}: fold 0 not run`);
    assert.notEqual(r.results.models[m]!.folds[1], null, `${m}: fold 1 run`);
  }
  await assert.rejects(stat(unitDir(opts.out, 'mtl', 0)));
  // each trained model's kept epoch (chosen on validation) is in results.json and the report
  for (const m of TRAINED) {
    const s = r.results.selection?.[m]?.[1];
    assert.ok(s && s.epoch >= 1 && s.epoch <= 2 && s.epochs === 2, `${m}: ${JSON.stringify(s)}`);
    assert.equal(r.results.selection?.[m]?.[0], null);
  }
  assert.match(await readFile(join(opts.out, 'report.html'), 'utf8'), /<h2>Model selection<\/h2>/);
  assert.match(r.results.command, /--only-folds 1/);
  assert.match(await readFile(join(opts.out, 'table1.md'), 'utf8'), /PARTIAL STUDY: fold\(s\) 1 of 3 only/);
  assert.match(await readFile(join(opts.out, 'report.html'), 'utf8'), /PARTIAL STUDY: fold\(s\) 1 of 3 only/);
  assert.match(opts.lines.join('\n'), /PARTIAL STUDY/);
  await assert.rejects(runStudy(opts), /--only-folds: started with 1, now all/);
});

test('--models: only those trained models run, the others (and an ensemble without both members) are skipped with the reason; never mixed', async () => {
  const opts = await options();
  await assert.rejects(
    runStudy({ ...opts, models: 'lesion,fused' }),
    (e: unknown) =>
      e instanceof DermtlError &&
      /--models lesion,fused: expected trained models among lesion, location, mtl, mtl-uw, mtl-tuned, fusion.*not one: "fused"/.test(
        e.message,
      ),
  );
  await assert.rejects(stat(opts.out), 'a refused --models leaves no study folder');
  const r = await runStudy({ ...opts, onlyFolds: '0', models: 'mtl,lesion' });
  assert.equal(r.counts.trained, 2 + 3, 'lesion and mtl, then the three baselines');
  assert.notEqual(r.results.models.lesion.folds[0], null);
  assert.notEqual(r.results.models.mtl.folds[0], null);
  assert.notEqual(r.results.models.ensemble.folds[0], null, 'lesion and mtl ran, so the ensemble did');
  assert.equal(r.results.models.location.folds[0], null);
  assert.deepEqual(
    r.results.skipped.filter((s) => s.fold === 0).map((s) => [s.model, s.reason]),
    [['location', 'not in --models']],
  );
  await assert.rejects(stat(unitDir(opts.out, 'location', 0)));
  assert.match(r.results.command, /--only-folds 0 --models lesion,mtl/);
  const html = await readFile(join(opts.out, 'report.html'), 'utf8');
  assert.match(html, /not in --models/);
  // the mode's cost per training image, for the models that ran (24 of the 36 images train in fold 0 of 3)
  const perImage = (m: string) =>
    html.match(new RegExp(`<th scope="row">${m}</th>.*?<td class="num">(\\d+) ms</td></tr>`))?.[1];
  const secs = r.results.timing.models.lesion![0]!;
  assert.equal(Number(perImage('lesion-only')), Math.round((1000 * secs) / (36 - r.results.models.lesion.folds[0]!.n)));
  assert.equal(perImage('location-only'), undefined, 'skipped: no cost');
  await assert.rejects(
    runStudy({ ...opts, onlyFolds: '0' }),
    /--models: started with lesion,mtl, now the standard lesion,location,mtl/,
  );
  const only = await runStudy({ ...opts, out: `${opts.out}-location`, onlyFolds: '0', models: ['location'] });
  assert.equal(only.results.models.ensemble.folds[0], null);
  assert.ok(
    only.results.skipped.some((s) => s.model === 'ensemble'),
    'no members: the ensemble is skipped with its reason',
  );
});

test('--models with the ways of using location (issue 9): mtl-uw, mtl-tuned, fusion (+ fusion-nosite) in results, paired against lesion-only, per-label AP change, task weights, report', async () => {
  const opts = await options();
  const r = await runStudy({ ...opts, onlyFolds: '0', models: 'lesion,mtl,mtl-uw,mtl-tuned,fusion' });
  const m = r.results.models;
  for (const name of ['mtl-uw', 'mtl-tuned', 'fusion', 'fusion-nosite', 'lesion-site'] as const) {
    assert.ok(m[name]?.folds[0], `${name} has fold 0`);
    assert.ok(r.results.versusLesion?.[name], `${name} vs lesion-only`);
    assert.deepEqual(
      Object.keys(r.results.versusLesion![name]!.apChange).sort(),
      Object.keys((m.lesion.pooled as { ap: object }).ap).sort(),
    );
  }
  // the site-unknown scores are the same model's: identical location scores, other lesion scores
  const given = await readFile(join(unitDir(opts.out, 'fusion', 0), 'scores.csv'), 'utf8');
  const unknown = await readFile(join(unitDir(opts.out, 'fusion-nosite', 0), 'scores.csv'), 'utf8');
  assert.notEqual(given, unknown);
  assert.deepEqual(
    JSON.parse(await readFile(join(unitDir(opts.out, 'fusion-nosite', 0), 'metrics.json'), 'utf8')).site,
    'unknown',
  );
  assert.equal(r.results.models['fusion-nosite']!.folds[0]!.top1, m.fusion!.folds[0]!.top1);
  // with fusion, the lesion-only model's scores shifted by the training part's site log-odds (nothing trained)
  const folds = JSON.parse(await readFile(join(opts.out, 'folds.json'), 'utf8'));
  const manifest = await loadManifest(opts.manifest);
  const test0 = new Set<string>(folds.splits[0].test);
  const expected = siteCorrected(
    await readScores(join(unitDir(opts.out, 'lesion', 0), 'scores.csv')),
    new Map(manifest.samples.map((s) => [s.image, s])),
    manifest.samples.filter((s) => !test0.has(s.image)),
    labelsFor('mtl', manifest.samples).location,
  );
  const corrected = await readScores(join(unitDir(opts.out, 'lesion-site', 0), 'scores.csv'));
  assert.deepEqual(corrected.images, expected.images);
  corrected.lesion.forEach((row, i) => row.forEach((x, j) => assert.ok(Math.abs(x - expected.lesion[i][j]) < 1e-6)));
  const byImage = new Map(manifest.samples.map((s) => [s.image, s]));
  const recomputed = evaluate(
    corrected.images.map((i) => byImage.get(i)!),
    corrected,
  ).lesion!.mapClass!;
  assert.ok(Math.abs(m['lesion-site']!.folds[0]!.mapClass! - recomputed) < 1e-9);
  assert.notEqual(m['lesion-site']!.folds[0]!.mapClass, m.lesion.folds[0]!.mapClass, 'the site moved the scores');
  const w = r.results.taskWeights!;
  assert.equal(w.mtl![0]!.kind, 'fixed');
  assert.equal(w['mtl-uw']![0]!.kind, 'uncertainty');
  assert.notEqual(w['mtl-uw']![0]!.location, 1, 'learned, not the initial weight');
  assert.equal(w['mtl-tuned']![0]!.kind, 'tuned');
  assert.deepEqual(
    w['mtl-tuned']![0]!.candidates!.map((c) => c.location),
    [0.1, 0.3, 1],
  );
  assert.equal(
    r.results.skipped
      .filter((s) => s.fold === 0)
      .map((s) => s.model)
      .join(),
    'location',
  );
  const html = await readFile(join(opts.out, 'report.html'), 'utf8');
  assert.match(html, /id="location-use"/);
  assert.match(html, /fusion \(no site\) − lesion-only/);
  // one fold (a partial study): no paired interval, and the verdict says so rather than guessing
  assert.match(html, /No paired mAP-class difference against lesion-only could be computed \(fewer than 2 folds\)/);
  const sitePrior = r.results.models['site-prior']!.pooled!.mapClass!;
  assert.match(html, new RegExp(`The site alone .* scores pooled mAP-class ${sitePrior.toFixed(3)}, against`));
  const table = await readFile(join(opts.out, 'table1.md'), 'utf8');
  assert.match(table, /MTL-UW.*MTL-tuned.*Fusion \(site\).*Fusion \(no site\)/);
  // absent models stay absent: a standard study has no variant keys
  const plain = await runStudy({ ...opts, out: `${opts.out}-plain`, onlyFolds: '0', models: 'lesion,mtl' });
  assert.equal(plain.results.models.fusion, undefined);
  assert.equal(plain.results.models['lesion-site'], undefined);
});
