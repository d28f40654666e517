// `dermtl eval` and `dermtl ensemble` on tiny-trunk runs: written files, cached-feature scores agree with model.onnx,
// 10-crop vs centre, the ensemble is the per-cell max, and every bad input is a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imagePathFor, writeManifest } from '../../src/data/manifest.ts';
import { createEnsemble } from '../../src/eval/ensembleRun.ts';
import { evaluateRun, type EvaluateOptions } from '../../src/eval/evaluateRun.ts';
import { evaluate } from '../../src/metrics/metrics.ts';
import { loadScores, readScores } from '../../src/metrics/scores.ts';
import { foldTemperatures, lesionTemperatures } from '../../src/models/calibration.ts';
import { loadModel, saveModel } from '../../src/models/modelFile.ts';
import { loadFolds, selectFold } from '../../src/data/splits.ts';
import { trainRun, type TrainOptions } from '../../src/train/trainTask.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { demoSet, tempDir, tinyConfig } from '../train/fixture.ts';

const quiet = { progress: false, log: () => {} };

async function train(extra: Partial<TrainOptions> = {}): Promise<string> {
  const demo = await demoSet();
  const out = join(await tempDir(), 'run');
  await trainRun({
    manifest: demo.manifest,
    out,
    task: 'mtl',
    folds: demo.folds,
    fold: 0,
    config: tinyConfig(join(demo.root, 'cache')),
    ...quiet,
    ...extra,
  });
  return out;
}

async function evalOpts(extra: Partial<EvaluateOptions> = {}): Promise<EvaluateOptions> {
  const demo = await demoSet();
  return { manifest: demo.manifest, folds: demo.folds, fold: 0, threads: 1, ...quiet, ...extra };
}

const runs = (async () => ({ a: await train({ seed: 1 }), b: await train({ seed: 2 }) }))();

test("eval writes scores.csv and metrics.json for the fold's test images; the metrics are those of the scores", async () => {
  const { a } = await runs;
  const demo = await demoSet();
  const r = await evaluateRun(a, await evalOpts());
  const test = selectFold(await loadFolds(demo.folds, demo.loaded), 0).test;
  assert.deepEqual(
    r.table.images,
    test.map((s) => s.image),
  );
  assert.equal(r.scoresFile, join(a, 'scores.csv'));
  const file = await readScores(r.scoresFile);
  assert.deepEqual(file.images, r.table.images);
  assert.equal(file.lesionLabels.length, 10);
  assert.equal(file.locationLabels.length, 8);
  for (const row of file.lesion) assert.ok(row.every((p) => p > 0 && p < 1));
  for (const row of file.location)
    assert.ok(Math.abs(row.reduce((x, y) => x + y, 0) - 1) < 1e-5, 'mean of softmax rows sums to 1');
  const metrics = JSON.parse(await readFile(join(a, 'metrics.json'), 'utf8'));
  const again = evaluate(test, (await loadScores(r.scoresFile, demo.loaded, 'present')).table);
  assert.equal(metrics.n, test.length);
  assert.equal(metrics.mapClass, again.lesion!.mapClass);
  assert.equal(metrics.top1, again.location!.top1);
  assert.equal(metrics.tta, '10crop');
  assert.equal(metrics.engine, 'cached trunk features + trained heads');
  assert.deepEqual(metrics.folds, { file: demo.folds, fold: 0 });
  assert.ok(r.lines.some((l) => /^mAP-class \d\.\d{4}/.test(l)) && r.lines.some((l) => /^location top-1/.test(l)));
});

test('scores from cached features agree with model.onnx on the images to 1e-5 (10-crop and centre); centre differs from 10-crop', async () => {
  const { a } = await runs;
  const out = await tempDir('dermtl-eval-');
  const diff = (x: Float64Array[], y: Float64Array[]) =>
    Math.max(...x.map((row, i) => Math.max(...row.map((v, c) => Math.abs(v - y[i][c])))));
  for (const tta of ['10crop', 'center'] as const) {
    const cached = await evaluateRun(a, await evalOpts({ tta, out: join(out, `cached-${tta}`) }));
    const full = await evaluateRun(a, await evalOpts({ tta, out: join(out, `full-${tta}`), fullModel: true }));
    assert.equal(
      JSON.parse(await readFile(join(out, `full-${tta}`, 'metrics.json'), 'utf8')).engine,
      'model.onnx on the images',
    );
    assert.ok(
      diff(cached.table.lesion, full.table.lesion) < 1e-5,
      `lesion ${tta}: ${diff(cached.table.lesion, full.table.lesion)}`,
    );
    assert.ok(
      diff(cached.table.location, full.table.location) < 1e-5,
      `location ${tta}: ${diff(cached.table.location, full.table.location)}`,
    );
  }
  const ten = await readScores(join(out, 'cached-10crop', 'scores.csv'));
  const one = await readScores(join(out, 'cached-center', 'scores.csv'));
  assert.ok(diff(ten.lesion, one.lesion) > 1e-4, 'averaging ten crops changes the scores');
});

test('an ensemble run scores the per-image, per-label max of its two members', async () => {
  const { a, b } = await runs;
  const e = join(await tempDir(), 'ens');
  const info = await createEnsemble(a, b, e);
  assert.equal(info.kind, 'ensemble');
  assert.deepEqual(info.members, [a, b]);
  const out = await tempDir('dermtl-eval-');
  const ra = await evaluateRun(a, await evalOpts({ out: join(out, 'a') }));
  const rb = await evaluateRun(b, await evalOpts({ out: join(out, 'b') }));
  const re = await evaluateRun(e, await evalOpts());
  let aWins = 0;
  let bWins = 0;
  for (const kind of ['lesion', 'location'] as const) {
    re.table[kind].forEach((row, i) =>
      row.forEach((v, c) => {
        assert.equal(v, Math.max(ra.table[kind][i][c], rb.table[kind][i][c]));
        if (ra.table[kind][i][c] > rb.table[kind][i][c]) aWins++;
        else bWins++;
      }),
    );
  }
  assert.ok(aWins > 0 && bWins > 0, 'both members contribute');
  assert.equal(JSON.parse(await readFile(join(e, 'metrics.json'), 'utf8')).engine, 'max-ensemble of the member runs');
  await assert.rejects(createEnsemble(a, b, e), /already holds a run/);
  await assert.rejects(createEnsemble(a, a, join(await tempDir(), 'x')), /two different runs/);
});

test("the paper's ensemble (MTL + lesion-only) max-combines the lesion scores; other labels or other folds are refused", async () => {
  const { a } = await runs;
  const lesionOnly = await train({ task: 'lesion' });
  // the paper's ensemble, MTL + lesion-only: the lesion scores only (the location head is MTL's alone)
  const paper = join(await tempDir(), 'paper');
  const info = await createEnsemble(a, lesionOnly, paper);
  assert.equal(info.task, 'lesion');
  assert.deepEqual(info.labels.location, []);
  const out = await tempDir('dermtl-eval-');
  const ra = await evaluateRun(a, await evalOpts({ out: join(out, 'a') }));
  const rl = await evaluateRun(lesionOnly, await evalOpts({ out: join(out, 'l') }));
  const re = await evaluateRun(paper, await evalOpts());
  assert.deepEqual(re.table.locationLabels, []);
  re.table.lesion.forEach((row, i) =>
    row.forEach((v, c) => assert.equal(v, Math.max(ra.table.lesion[i][c], rl.table.lesion[i][c]))),
  );
  const location = await train({ task: 'location' });
  await assert.rejects(
    createEnsemble(lesionOnly, location, join(await tempDir(), 'x')),
    /lesion labels differ: .* vs \(no lesion head\)/,
  );
  const fold1 = await train({ fold: 1 });
  await assert.rejects(
    createEnsemble(a, fold1, join(await tempDir(), 'x')),
    /trained on different parts \(fold 0 of .* vs fold 1 of/,
  );
});

test('bad inputs: other labels, training images, incomplete or foreign run folders, half a fold', async () => {
  const { a } = await runs;
  const demo = await demoSet();
  const dir = await tempDir();
  const fewer = join(dir, 'fewer.csv');
  await writeManifest(
    fewer,
    demo.loaded.samples.map((s) => ({
      image: imagePathFor(fewer, s.path),
      lesions: s.lesions.filter((l) => l !== 'ulcer'),
      location: s.location,
      group: s.group,
    })),
  );
  await assert.rejects(
    evaluateRun(a, await evalOpts({ manifest: fewer, folds: undefined, fold: undefined })),
    (e: Error) => {
      assert.ok(e instanceof DermtlError);
      assert.match(e.message, /the labels of manifest .*fewer\.csv differ from those of the model/);
      assert.match(e.message, /lesion label\(s\) of the model that no image of the manifest has: ulcer/);
      return true;
    },
  );
  await assert.rejects(
    evaluateRun(a, await evalOpts({ folds: undefined, fold: undefined })),
    /of the 40 image\(s\) to evaluate were used to train .*--folds .*folds\.json --fold 0/,
  );
  await assert.rejects(evaluateRun(a, await evalOpts({ fold: undefined })), /--folds and --fold go together/);
  await assert.rejects(evaluateRun(a, await evalOpts({ fold: 1 })), /were used to train/);
  await assert.rejects(evaluateRun(dir, await evalOpts()), /is not a dermtl run folder \(it has no run\.json\)/);
  await assert.rejects(evaluateRun(join(dir, 'missing'), await evalOpts()), /no such folder/);

  const stopped = join(await tempDir(), 'run');
  const ac = new AbortController();
  await trainRun({
    manifest: demo.manifest,
    out: stopped,
    task: 'mtl',
    folds: demo.folds,
    fold: 0,
    config: tinyConfig(join(demo.root, 'cache')),
    ...quiet,
    signal: ac.signal,
    onStep: () => ac.abort(),
  });
  await assert.rejects(
    evaluateRun(stopped, await evalOpts()),
    /the run is incomplete \(status "training"[\s\S]*--resume/,
  );

  const info = JSON.parse(await readFile(join(a, 'run.json'), 'utf8'));
  const copy = join(await tempDir(), 'future');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(copy);
  await writeFile(join(copy, 'run.json'), JSON.stringify({ ...info, version: 99 }));
  await assert.rejects(
    evaluateRun(copy, await evalOpts()),
    /run folder format version 99; this dermtl reads version 1/,
  );
  await writeFile(join(copy, 'run.json'), JSON.stringify(info));
  await assert.rejects(evaluateRun(copy, await evalOpts()), /the run is incomplete: .*model is missing/);
});

test('a calibrated run reports its metrics before calibration: those of the same model with the temperatures taken out', async () => {
  const { a } = await runs;
  const r = await evaluateRun(a, await evalOpts({ out: await tempDir() }));
  const model = await loadModel(join(a, 'model'), { session: false });
  const cal = model.calibration!;
  assert.ok(cal && r.beforeCalibration, 'the tiny run has a validation part, so it is calibrated');
  const metrics = JSON.parse(await readFile(join(r.metricsFile), 'utf8'));
  assert.equal(metrics.temperatures.location, cal.location!.temperature);
  assert.equal(metrics.thresholdSource, 'the model (chosen on its validation part)');
  assert.deepEqual(Object.keys(metrics.operatingPoints), model.labels.lesion);
  assert.ok(
    r.lines.some((l) => /^lesion before -> after calibration: ECE \d\.\d{4} -> \d\.\d{4}/.test(l)),
    r.lines.join('\n'),
  );
  // the same run with an uncalibrated model folder: unfold the temperatures, drop the record
  const copy = join(await tempDir(), 'run');
  await cp(a, copy, { recursive: true });
  const unfolded = foldTemperatures(model.params(), {
    lesion: lesionTemperatures(cal, model.labels.lesion).map((t) => 1 / t),
    location: 1 / cal.location!.temperature,
  });
  await saveModel(
    join(copy, 'model'),
    { network: model.network, params: unfolded, labels: model.labels, preprocessing: model.preprocessing },
    { trunk: 'reference' },
  );
  const plain = await evaluateRun(copy, await evalOpts({ out: await tempDir() }));
  assert.equal(plain.beforeCalibration, null);
  // heads.onnx stores float16 weights: unfolding rounds them a second time (probabilities move by ~1e-5)
  for (const head of ['lesion', 'location'] as const) {
    const want = plain.evaluation[head]!.calibration!;
    const got = r.beforeCalibration[head]!.calibration!;
    assert.ok(
      Math.abs(want.ece - got.ece) < 1e-4 && Math.abs(want.brier - got.brier) < 1e-4,
      `${head}: ${JSON.stringify([want, got].map((c) => [c.ece, c.brier]))}`,
    );
  }
});
