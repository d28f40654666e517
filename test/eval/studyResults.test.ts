import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelResult, pairedResults, readResults, validateResults } from '../../src/eval/studyResults.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { syntheticResults } from '../report/study/fixture.ts';

/** The fixture as it would come back from JSON.parse, for mutation. */
function raw(): any {
  return JSON.parse(JSON.stringify(syntheticResults()));
}

function rejects(doc: unknown, pattern: RegExp): void {
  assert.throws(
    () => validateResults(doc, 'study/results.json'),
    (e: unknown) => {
      assert.ok(e instanceof DermtlError, `a DermtlError, got ${e}`);
      assert.match(e.message, /^study\/results\.json/);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('the synthetic study validates and keeps its values', () => {
  const r = validateResults(raw());
  assert.equal(r.folds, 3);
  assert.equal(r.models.mtl.pooled?.top1, 0.52);
  assert.deepEqual(
    r.models.location.folds.map((f) => f === null),
    [false, false, true],
  );
  assert.deepEqual(r.config.scaleJitter, [256, 288]);
});

test('a file of another version, or no results file at all, gets its own message', () => {
  // version 1 (before the baselines): the message says a re-run reuses the finished models
  rejects(
    { ...raw(), version: 1 },
    /results version 1 is not supported; this dermtl reads version 2 \(re-run the study with the same command: finished models are reused/,
  );
  rejects({ ...raw(), version: '2' }, /results version "2" is not supported/);
  const { version: _, ...noVersion } = raw();
  rejects(noVersion, /not a dermtl study results file \(it has no "version"\)/);
  rejects([1, 2], /not a dermtl study results file \(expected a JSON object\)/);
  rejects(null, /expected a JSON object/);
});

test('schema problems are listed with their JSON path', () => {
  const a = raw();
  a.models.lesion.pooled.top1 = 0.5; // a lesion-only model has no location head
  a.models.mtl.folds[1].ap.nevus = 1.2; // AP is a fraction
  delete a.command;
  rejects(a, /invalid study results \(3 problems\)/);
  rejects(a, /models\.lesion\.pooled\.top1: a model without a location head has no location metrics/);
  rejects(a, /models\.mtl\.folds\.1\.ap\.nevus: .*<=1/);
  rejects(a, /  - command: /);
  const b = raw();
  delete b.models.location.folds[0].top3;
  rejects(b, /models\.location\.folds\.0\.top3/);
  const c = raw();
  c.skipped[0].model = 'svm';
  rejects(c, /skipped\.0\.model/);
});

test('cross-field checks: fold counts, null folds vs skipped, AP labels', () => {
  const a = raw();
  a.models.ensemble.folds.pop();
  rejects(a, /models\.ensemble\.folds: 2 entries for 3 folds/);
  const b = raw();
  b.models.lesion.folds[1] = null;
  rejects(b, /models\.lesion\.folds\.1: null, but "skipped" has no entry for lesion fold 1/);
  const c = raw();
  c.skipped = [];
  rejects(c, /models\.location\.folds\.2: null, but "skipped" has no entry/);
  const d = raw();
  d.skipped.push({ model: 'mtl', fold: 0, reason: 'x' });
  rejects(d, /models\.mtl\.folds\.0: has results, but "skipped" lists mtl fold 0/);
  const e = raw();
  e.models.mtl.pooled.ap.psoriasis = 0.5;
  rejects(e, /models\.mtl: AP for "psoriasis", which is not in lesionLabels/);
  const f = raw();
  f.timing.models.mtl = [1, 2];
  rejects(f, /timing\.models\.mtl: 2 entries for 3 folds/);
  // the linear baseline's lambdas: one entry per fold, null exactly where it was skipped
  const g = raw();
  g.models.linear.choices.pop();
  rejects(g, /models\.linear\.choices: 2 entries for 3 folds/);
  const h = raw();
  h.models.linear.choices[1] = null;
  rejects(h, /models\.linear\.choices\.1: null for a fold with results/);
});

test('the baselines are models with both heads; the comparisons pair each trained model with the linear baseline', () => {
  const r = validateResults(raw());
  assert.deepEqual(Object.keys(r.models), ['lesion', 'location', 'mtl', 'ensemble', 'prior', 'linear']);
  for (const m of [r.models.prior, r.models.linear]) {
    assert.equal(typeof m.pooled!.mapClass, 'number');
    assert.equal(typeof m.pooled!.top1, 'number');
  }
  assert.deepEqual(
    r.models.linear.choices.map((c) => c?.lesionLambda),
    [0.3, 0.1, 0.1],
  );
  assert.deepEqual(
    r.comparisons.map((c) => [c.a, c.b, Object.keys(c).filter((k) => k !== 'a' && k !== 'b')]),
    [
      ['mtl', 'linear', ['mapClass', 'mapImage', 'top1']],
      ['lesion', 'linear', ['mapClass', 'mapImage']],
      ['location', 'linear', ['top1']],
    ],
  );
  // MTL - linear mAP-class per fold: (MTL AP shift 0.02 + MTL_AP) - (-0.03): 0.06, 0.025, 0.05
  const d = r.comparisons[0].mapClass!;
  assert.deepEqual(
    d.differences.map((x) => Number(x.toFixed(6))),
    [0.06, 0.025, 0.05],
  );
  // location-only has no fold 2: top-1 pairs over folds 0 and 1 (0.51 - 0.44, 0.485 - 0.465)
  const loc = r.comparisons[2].top1!;
  assert.deepEqual(loc.folds, [0, 1]);
  assert.deepEqual(
    loc.differences.map((x) => Number(x.toFixed(6))),
    [0.07, 0.02],
  );
  // a baseline's lesion head cannot be missing
  const a = raw();
  delete a.models.prior.folds[0].mapClass;
  rejects(a, /models\.prior\.folds\.0\.mapClass/);
});

test('modelResult: mean, sample std and fold count per metric, over the folds that define it', () => {
  const r = syntheticResults();
  const lesion = r.models.lesion;
  // nevus AP per fold: 0.82 + [0.01, -0.015, 0.005]
  assert.ok(Math.abs(lesion.mean.ap!.nevus - 0.82) < 1e-12);
  assert.ok(Math.abs(lesion.std.ap!.nevus - Math.sqrt((0.01 ** 2 + 0.015 ** 2 + 0.005 ** 2) / 2)) < 1e-12);
  assert.equal(lesion.n.ap!.nevus, 3);
  // dermatofibroma has a positive test image in fold 0 only: a mean from one fold, no std
  assert.equal(lesion.n.ap!.dermatofibroma, 1);
  assert.equal(lesion.mean.ap!.dermatofibroma, 0.41);
  assert.equal(lesion.std.ap!.dermatofibroma, undefined);
  assert.equal(lesion.mean.ap!.vascular, undefined);
  assert.equal(lesion.mean.top1, undefined);
  // location-only skipped in fold 2: top-1 over folds 0 and 1 (0.51, 0.485)
  const location = r.models.location;
  assert.equal(location.n.top1, 2);
  assert.ok(Math.abs(location.mean.top1! - 0.4975) < 1e-12);
  assert.ok(Math.abs(location.std.top1! - Math.abs(0.51 - 0.485) / Math.sqrt(2)) < 1e-12);
  assert.equal(location.mean.mapClass, undefined);
  const empty = modelResult(null, [null, null]);
  assert.deepEqual([empty.mean, empty.std, empty.n], [{}, {}, {}]);
});

test('pairedResults: MTL - lesion-only per fold with a 95% t interval (df = k - 1)', () => {
  const r = syntheticResults();
  const p = r.paired.mapClass!;
  assert.deepEqual(p.folds, [0, 1, 2]);
  assert.deepEqual(
    p.differences.map((d) => Number(d.toFixed(6))),
    [0.03, -0.005, 0.02],
  );
  assert.ok(Math.abs(p.mean - 0.015) < 1e-12);
  // t_{0.975, 2} = 4.302653; std of (0.03, -0.005, 0.02) = 0.0180278
  assert.ok(Math.abs(p.t - 4.302653) < 1e-6);
  assert.ok(Math.abs(p.ci[0] - (0.015 - (4.302653 * 0.0180278) / Math.sqrt(3))) < 1e-6);
  assert.ok(p.ci[0] < 0 && p.ci[1] > 0);
  assert.ok(r.paired.mapImage!.ci[0] > 0);
  // a fold missing from one model drops out of the pairs; with one pair left there is no interval
  const lesion = { folds: [...r.models.lesion.folds] };
  lesion.folds[1] = null;
  assert.deepEqual(pairedResults(r.models.mtl, lesion).mapClass?.folds, [0, 2]);
  lesion.folds[2] = null;
  assert.deepEqual(pairedResults(r.models.mtl, lesion), { mapClass: null, mapImage: null });
});

test('readResults names the file when it is missing or not JSON, and validates the rest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dermtl-results-'));
  try {
    const file = join(dir, 'results.json');
    await assert.rejects(readResults(file), /results file not found: .*results\.json/);
    await writeFile(file, '{"version": 1,');
    await assert.rejects(readResults(file), /results\.json is not valid JSON/);
    await writeFile(file, JSON.stringify({ ...raw(), version: 7 }));
    await assert.rejects(readResults(file), /results version 7 is not supported/);
    await writeFile(file, JSON.stringify(raw()));
    assert.deepEqual(await readResults(file), validateResults(raw()));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
