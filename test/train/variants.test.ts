// Issue 9's training variants end to end on the tiny trunk (frozen mode): uncertainty task weighting (learned
// weights in run.json, none of its params in the model), the tuned location weight (one candidate run per grid
// value, the best validation lesion mAP-class kept, the run's model is the winner's), late fusion (the site layer
// saved and trained; eval with the site given or unknown), and the configs that are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluateRun, type EvaluateOptions } from '../../src/eval/evaluateRun.ts';
import { SITE_WEIGHT } from '../../src/models/fusion.ts';
import { foldTemperatures, lesionTemperatures } from '../../src/models/calibration.ts';
import { loadModel, saveModel } from '../../src/models/modelFile.ts';
import { LOG_VARIANCE } from '../../src/models/heads.ts';
import { resolveConfig } from '../../src/train/config.ts';
import type { EpochRecord } from '../../src/train/run.ts';
import { trainRun, type TrainOptions } from '../../src/train/trainTask.ts';
import { bestCandidate, candidateDir } from '../../src/train/tuned.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { demoSet, modelParams, tempDir, tinyConfig } from './fixture.ts';

const quiet = { progress: false, log: () => {} };

async function options(cfg: Record<string, unknown>, extra: Partial<TrainOptions> = {}): Promise<TrainOptions> {
  const demo = await demoSet();
  const out = join(await tempDir(), 'run');
  return {
    manifest: demo.manifest,
    out,
    task: 'mtl',
    folds: demo.folds,
    fold: 0,
    config: tinyConfig(join(demo.root, 'cache'), cfg),
    ...quiet,
    ...extra,
  };
}

async function evalOpts(extra: Partial<EvaluateOptions> = {}): Promise<EvaluateOptions> {
  const demo = await demoSet();
  return { manifest: demo.manifest, folds: demo.folds, fold: 0, threads: 1, ...quiet, ...extra };
}

const json = async (file: string) => JSON.parse(await readFile(file, 'utf8'));

test('uncertainty weighting: the learned weights in run.json and the model metrics, moved from 1; no log-variance in the model', async () => {
  const o = await options({
    taskWeighting: { kind: 'uncertainty' },
    frozen: { epochs: 6, views: 3, shared: { hidden: 32, dropout: 0.5 } },
  });
  const r = await trainRun(o);
  assert.equal(r.status, 'done');
  const info = await json(join(o.out, 'run.json'));
  const w = info.taskWeights;
  assert.equal(w.kind, 'uncertainty');
  assert.ok(
    Math.abs(w.lesion - Math.exp(-w.logVariance.lesion)) < 1e-6 &&
      Math.abs(w.location - Math.exp(-w.logVariance.location)) < 1e-6,
  );
  for (const t of ['lesion', 'location'] as const)
    assert.ok(w[t] > 0 && Math.abs(w[t] - 1) > 0.01, `${t} weight ${w[t]} moved from 1`);
  assert.deepEqual((await json(join(o.out, 'model', 'metrics.json'))).taskWeights, w);
  const params = await modelParams(o.out);
  assert.ok(!params.has(LOG_VARIANCE.lesion) && !params.has(LOG_VARIANCE.location));
  assert.ok(![...params.keys()].some((k) => k.includes('log_variance')));
  // the history's total is the weighted objective (the raw losses alongside, for reading)
  const history: EpochRecord[] = await json(join(o.out, 'history.json'));
  for (const h of history) {
    assert.ok(Number.isFinite(h.train.weighted_loss) && h.train.lesion_loss > 0 && h.train.location_loss > 0);
    assert.ok(
      Math.abs(h.train.total - h.train.weighted_loss) < 1e-9,
      `total ${h.train.total} vs weighted ${h.train.weighted_loss}`,
    );
  }
  // a fixed-weight MTL run records its configured weights
  const f = await options({ taskWeights: { lesion: 1, location: 0.5 } });
  await trainRun(f);
  assert.deepEqual((await json(join(f.out, 'run.json'))).taskWeights, { kind: 'fixed', lesion: 1, location: 0.5 });
});

test("tuned location weight: one candidate run per grid value, the best validation lesion mAP-class kept as the run's model", async () => {
  // a value given twice is one candidate
  const o = await options({ taskWeighting: { kind: 'tuned', grid: [0.1, 1, 0.1] }, validation: { fraction: 0.2 } });
  const lines: string[] = [];
  const r = await trainRun({ ...o, log: (l) => lines.push(l) });
  assert.equal(r.status, 'done');
  const info = await json(join(o.out, 'run.json'));
  assert.equal(info.status, 'done');
  const w = info.taskWeights;
  assert.equal(w.kind, 'tuned');
  assert.deepEqual(
    w.candidates.map((c: { location: number }) => c.location),
    [0.1, 1],
  );
  for (const c of w.candidates) {
    const sub = await json(join(candidateDir(o.out, c.location), 'run.json'));
    assert.equal(sub.status, 'done');
    assert.deepEqual(sub.taskWeights, { kind: 'fixed', lesion: 1, location: c.location });
    assert.deepEqual(sub.split, info.split, "every candidate trains on the run's split");
    const kept = await json(join(candidateDir(o.out, c.location), 'model', 'metrics.json'));
    assert.equal(c.score, kept.validation.mapClass);
    assert.equal(c.epoch, kept.selection.epoch);
  }
  assert.equal(
    new Set(w.candidates.map((c: { score: number }) => c.score)).size,
    2,
    `the candidates score apart (not decided by the tie rule): ${JSON.stringify(w.candidates)}`,
  );
  const best = Math.max(...w.candidates.map((c: { score: number }) => c.score));
  const winners = w.candidates
    .filter((c: { score: number }) => c.score === best)
    .map((c: { location: number }) => c.location);
  assert.equal(w.location, Math.max(...winners));
  assert.equal(w.lesion, 1);
  // the run's model folder (and history, selection) are the winner's
  const from = join(candidateDir(o.out, w.location), 'model');
  const files = (await readdir(from)).sort();
  assert.deepEqual((await readdir(join(o.out, 'model'))).sort(), files);
  for (const f of files)
    assert.ok(
      (await readFile(join(from, f))).equals(await readFile(join(o.out, 'model', f))),
      `model/${f} is the winner's`,
    );
  assert.equal(
    await readFile(join(o.out, 'history.json'), 'utf8'),
    await readFile(join(candidateDir(o.out, w.location), 'history.json'), 'utf8'),
  );
  assert.deepEqual(info.selection, (await json(join(candidateDir(o.out, w.location), 'run.json'))).selection);
  assert.ok(
    lines.some((l) =>
      /tuned task weighting: validation lesion mAP-class per location weight 0\.1: \d\.\d{4}, 1: \d\.\d{4}; kept/.test(
        l,
      ),
    ),
    lines.join('\n'),
  );
  // the parent run evaluates like any other, with the winner's scores
  const parent = await evaluateRun(o.out, await evalOpts({ out: join(await tempDir(), 'eval-parent') }));
  const winner = await evaluateRun(
    candidateDir(o.out, w.location),
    await evalOpts({ out: join(await tempDir(), 'eval-winner') }),
  );
  assert.deepEqual(parent.table, winner.table);
  assert.equal((await trainRun({ ...o, resume: true })).status, 'already done');
});

test('bestCandidate: the best score; ties and missing scores go to the larger weight; an empty grid is an error', () => {
  const c = (location: number, score: number | null) => ({ location, score, epoch: 1 });
  assert.equal(bestCandidate([c(0.1, 0.5), c(0.3, 0.7), c(1, 0.6)]).location, 0.3);
  assert.equal(bestCandidate([c(1, 0.5), c(0.1, 0.5)]).location, 1);
  assert.equal(bestCandidate([c(0.1, 0.5), c(1, null)]).location, 0.1);
  assert.equal(bestCandidate([c(0.1, null), c(1, null), c(0.3, null)]).location, 1);
  assert.throws(() => bestCandidate([]), DermtlError);
  assert.equal(candidateDir('/r', 0.1), join('/r', 'tune', 'location-0.1'));
});

test('a tuned run stopped inside a candidate resumes to the same result', async () => {
  const straight = await options({ taskWeighting: { kind: 'tuned', grid: [0.3, 1] } }, { seed: 3 });
  await trainRun(straight);
  const o = await options({ taskWeighting: { kind: 'tuned', grid: [0.3, 1] } }, { seed: 3 });
  const ac = new AbortController();
  let steps = 0;
  const stopped = await trainRun({ ...o, signal: ac.signal, onStep: () => (++steps === 20 ? ac.abort() : undefined) });
  assert.equal(stopped.status, 'stopped');
  // stopped in the second candidate, the first one finished
  assert.equal((await json(join(candidateDir(o.out, 0.3), 'run.json'))).status, 'done');
  assert.equal((await json(join(candidateDir(o.out, 1), 'run.json'))).status, 'training');
  assert.equal((await json(join(o.out, 'run.json'))).status, 'training');
  const done = await trainRun({ ...o, resume: true });
  assert.equal(done.status, 'done');
  const [a, b] = [await json(join(straight.out, 'run.json')), await json(join(o.out, 'run.json'))];
  assert.deepEqual(b.taskWeights, a.taskWeights);
  const [pa, pb] = [await modelParams(straight.out), await modelParams(o.out)];
  for (const [k, v] of pa) assert.ok(Buffer.from(v.buffer).equals(Buffer.from(pb.get(k)!.buffer)), `${k} differs`);
});

test('fusion: the site layer is saved and trained; eval with the site given or unknown changes the lesion scores only', async () => {
  const o = await options({
    fusion: { enabled: true, siteDropout: 0.5 },
    validation: { fraction: 0.2 },
    selection: { epoch: 'last' },
    frozen: { epochs: 8, views: 3, lr: 0.01, shared: { hidden: 32, dropout: 0.5 } },
  });
  assert.equal((await trainRun(o)).status, 'done');
  const params = await modelParams(o.out);
  const u = params.get(SITE_WEIGHT)!;
  assert.equal(u.length, 10 * 8);
  assert.ok(
    u.some((v) => Math.abs(v) > 1e-2),
    `U moved from its zero init: max |U| ${Math.max(...u.map(Math.abs))}`,
  );
  assert.equal((await loadModel(join(o.out, 'model'), { session: false })).network.heads.fusion, true);

  const given = await evaluateRun(o.out, await evalOpts({ out: join(await tempDir(), 'given'), site: 'given' }));
  const unknown = await evaluateRun(o.out, await evalOpts({ out: join(await tempDir(), 'unknown'), site: 'unknown' }));
  assert.deepEqual(unknown.table.location, given.table.location, 'the location head does not see the site');
  assert.notDeepEqual(unknown.table.lesion, given.table.lesion);
  assert.notEqual(unknown.evaluation.lesion!.mapClass, given.evaluation.lesion!.mapClass);
  assert.equal((await json(given.metricsFile)).site, 'given');
  assert.equal((await json(unknown.metricsFile)).site, 'unknown');
  assert.ok(given.lines[0].includes('body site given to the lesion head'), given.lines[0]);
  // the whole network on the images (centre crops) agrees with the feature engine, the site fed per image in both
  for (const site of ['given', 'unknown'] as const) {
    const features = await evaluateRun(
      o.out,
      await evalOpts({ out: join(await tempDir(), `center-${site}`), site, tta: 'center' }),
    );
    const full = await evaluateRun(
      o.out,
      await evalOpts({ out: join(await tempDir(), `full-${site}`), site, tta: 'center', fullModel: true }),
    );
    full.table.lesion.forEach((row, i) =>
      row.forEach((p, c) =>
        assert.ok(
          Math.abs(p - features.table.lesion[i][c]) < 1e-4,
          `${site} lesion [${i}][${c}] ${p} vs ${features.table.lesion[i][c]}`,
        ),
      ),
    );
  }
  // before calibration with the site unknown: the model with its temperatures taken out (the lesion head then reads
  // the uncalibrated location distribution), not the calibrated logits times the lesion temperatures
  const m = await loadModel(join(o.out, 'model'), { session: false });
  const cal = m.calibration!;
  assert.ok(cal.location && cal.location.temperature !== 1, 'calibrated');
  const copy = join(await tempDir(), 'run');
  await cp(o.out, copy, { recursive: true });
  const unfolded = foldTemperatures(m.params(), {
    lesion: lesionTemperatures(cal, m.labels.lesion).map((t) => 1 / t),
    location: 1 / cal.location.temperature,
  });
  await saveModel(
    join(copy, 'model'),
    { network: m.network, params: unfolded, labels: m.labels, preprocessing: m.preprocessing },
    { trunk: 'reference' },
  );
  const raw = await evaluateRun(copy, await evalOpts({ out: join(await tempDir(), 'raw'), site: 'unknown' }));
  assert.equal(raw.uncalibrated, null);
  let worst = 0;
  // heads.onnx stores float16 weights: unfolding rounds them a second time (~2e-4 here; the calibrated logits times
  // the lesion temperatures were up to 0.17 off)
  raw.table.lesion.forEach((row, i) =>
    row.forEach((p, c) => (worst = Math.max(worst, Math.abs(p - unknown.uncalibrated!.lesion[i][c])))),
  );
  assert.ok(worst < 2e-3, `uncalibrated lesion scores, site unknown: max difference ${worst}`);
  // a plain model ignores the option
  const plain = await options({});
  await trainRun(plain);
  const a = await evaluateRun(plain.out, await evalOpts({ out: join(await tempDir(), 'plain-given'), site: 'given' }));
  const b = await evaluateRun(
    plain.out,
    await evalOpts({ out: join(await tempDir(), 'plain-unknown'), site: 'unknown' }),
  );
  assert.deepEqual(a.table, b.table);
  assert.equal((await json(a.metricsFile)).site, null);
});

test('fusion with uncertainty weighting, interrupted mid-epoch and resumed: bit-identical to an uninterrupted run (site draws and log-variances replayed)', async () => {
  const cfg = { fusion: { enabled: true, siteDropout: 0.3 }, taskWeighting: { kind: 'uncertainty' } };
  const straight = await options(cfg, { seed: 4 });
  await trainRun(straight);
  const o = await options(cfg, { seed: 4 });
  const ac = new AbortController();
  const stopped = await trainRun({ ...o, signal: ac.signal, onStep: (r) => (r.step === 5 ? ac.abort() : undefined) });
  assert.equal(stopped.status, 'stopped');
  assert.equal((await trainRun({ ...o, resume: true })).status, 'done');
  const [pa, pb] = [await modelParams(straight.out), await modelParams(o.out)];
  assert.deepEqual([...pb.keys()], [...pa.keys()]);
  assert.ok(pa.has(SITE_WEIGHT));
  for (const [k, v] of pa) assert.ok(Buffer.from(v.buffer).equals(Buffer.from(pb.get(k)!.buffer)), `${k} differs`);
  const [a, b] = [await json(join(straight.out, 'run.json')), await json(join(o.out, 'run.json'))];
  assert.equal(a.taskWeights.kind, 'uncertainty');
  assert.deepEqual(b.taskWeights, a.taskWeights);
  assert.equal(
    await readFile(join(o.out, 'history.json'), 'utf8'),
    await readFile(join(straight.out, 'history.json'), 'utf8'),
  );
});

for (const trainable of ['all', 'stage5'] as const) {
  test(`finetune (trainable ${trainable}) with fusion and uncertainty weighting: U trained and saved, no log-variance, the site read at eval`, async () => {
    const o = await options(
      {
        fusion: { enabled: true },
        taskWeighting: { kind: 'uncertainty' },
        batchSize: 4,
        optimizer: { lr: 1e-3 },
        validation: { fraction: 0 },
        finetune: { epochs: 1, subset: 8, trainable, views: 1 },
        eval: { tta: 'center' },
      },
      { mode: 'finetune' },
    );
    assert.equal((await trainRun(o)).status, 'done');
    const info = await json(join(o.out, 'run.json'));
    assert.equal(info.taskWeights.kind, 'uncertainty');
    assert.ok(info.taskWeights.lesion !== 1 && info.taskWeights.location !== 1);
    const params = await modelParams(o.out);
    assert.ok(
      params.get(SITE_WEIGHT)!.some((v) => v !== 0),
      'U trained',
    );
    assert.ok(![...params.keys()].some((k) => k.includes('log_variance')));
    const given = await evaluateRun(o.out, await evalOpts({ out: join(await tempDir(), 'given'), tta: 'center' }));
    const unknown = await evaluateRun(
      o.out,
      await evalOpts({ out: join(await tempDir(), 'unknown'), tta: 'center', site: 'unknown' }),
    );
    assert.deepEqual(unknown.table.location, given.table.location);
    assert.notDeepEqual(unknown.table.lesion, given.table.lesion);
  });
}

test('fusion and non-fixed task weighting need task mtl', async () => {
  const refused = (cfg: Record<string, unknown>, task: string, re: RegExp) =>
    assert.throws(
      () => resolveConfig({ task, ...cfg }),
      (e: Error) => e instanceof DermtlError && re.test(e.message),
    );
  for (const task of ['lesion', 'location']) {
    refused(
      { fusion: { enabled: true } },
      task,
      new RegExp(`fusion\\.enabled.*a fusion model needs both heads: task mtl, not ${task}`, 's'),
    );
    refused(
      { taskWeighting: { kind: 'uncertainty' } },
      task,
      new RegExp(`taskWeighting\\.kind.*task mtl, not ${task}`, 's'),
    );
    refused({ taskWeighting: { kind: 'tuned' } }, task, new RegExp(`taskWeighting\\.kind.*task mtl, not ${task}`, 's'));
  }
  assert.throws(() => resolveConfig({ taskWeighting: { kind: 'tuned', grid: [1] } }), DermtlError);
  assert.equal(
    resolveConfig({ task: 'lesion', taskWeighting: { kind: 'fixed' }, fusion: { enabled: false } }).task,
    'lesion',
  );
  // trainRun refuses before it writes anything
  const o = await options({ fusion: { enabled: true } }, { task: 'lesion' });
  await assert.rejects(trainRun(o), /a fusion model needs both heads/);
  await assert.rejects(readdir(o.out), /ENOENT/);
});
