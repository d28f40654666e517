// `dermtl cv` and `dermtl start` (with its study) through commander, on the tiny trunk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { register as registerCv } from '../../src/cli/commands/cv.ts';
import { register as registerStart } from '../../src/cli/commands/start.ts';
import { readResults } from '../../src/report/study/index.ts';
import { DEFAULT_MODEL_PATH } from '../../src/serve/defaultModel.ts';
import { runCommand } from '../data/helpers.ts';
import { studyDemo, tempDir, tinyStudyConfig } from '../eval/studyFixture.ts';

async function configFile(dir: string): Promise<string> {
  const demo = await studyDemo();
  const file = join(dir, 'tiny.json');
  await writeFile(file, JSON.stringify(tinyStudyConfig(demo.cache)));
  return file;
}

test('dermtl cv runs the study, prints Table 1 and records the command as given', async () => {
  const demo = await studyDemo();
  const dir = await tempDir();
  const cfg = await configFile(dir);
  const out = join(dir, 'study');
  const r = await runCommand(registerCv, [
    'cv',
    '--manifest',
    demo.manifest,
    '--out',
    out,
    '--folds',
    '2',
    '--config',
    cfg,
    '--tta',
    'center',
    '--no-progress',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\[11\/14\] ensemble\s+fold 2\/2: /);
  assert.match(r.stdout, /\[14\/14\] linear\s+fold 2\/2: baseline fitted in /);
  assert.match(r.stdout, /Table 1: lesion AP, pooled out-of-fold \(2 folds\)/);
  assert.match(
    r.stdout,
    /Body location accuracy\nLocation\s+Location-only pooled\s+Location-only per fold\s+MTL pooled\s+MTL per fold\s+Linear pooled\s+Linear per fold\s+Prior pooled/,
  );
  const results = await readResults(join(out, 'results.json'));
  assert.equal(
    results.command,
    `dermtl cv --manifest ${demo.manifest} --out ${out} --folds 2 --config ${cfg} --tta center --no-progress`,
  );
  assert.equal((results.config.eval as { tta: string }).tta, 'center');
  assert.equal(results.folds, 2);
  // the baselines score with the same test-time augmentation
  assert.equal(
    JSON.parse(await readFile(join(out, 'models', 'linear', 'fold-0', 'linear.json'), 'utf8')).tta,
    'center',
  );
});

test('dermtl cv: bad input is a one-line error, not a stack', async () => {
  const demo = await studyDemo();
  const dir = await tempDir();
  const cfg = await configFile(dir);
  let r = await runCommand(registerCv, [
    'cv',
    '--manifest',
    demo.manifest,
    '--out',
    join(dir, 's1'),
    '--folds',
    '1',
    '--config',
    cfg,
    '--no-progress',
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--folds must be a whole number >= 2, got 1/);
  await assert.rejects(stat(join(dir, 's1')), 'a refused --folds leaves no study folder behind');
  r = await runCommand(registerCv, [
    'cv',
    '--manifest',
    join(dir, 'missing.csv'),
    '--out',
    join(dir, 's2'),
    '--no-progress',
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing\.csv/);
  r = await runCommand(registerCv, ['cv', '--manifest', demo.manifest, '--out', join(dir, 's3'), '--mode', 'fast']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /argument 'fast' is invalid/);
  await writeFile(join(dir, 'bad.json'), JSON.stringify({ frozen: { epoch: 3 } }));
  r = await runCommand(registerCv, [
    'cv',
    '--manifest',
    demo.manifest,
    '--out',
    join(dir, 's4'),
    '--config',
    join(dir, 'bad.json'),
  ]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown key "frozen\.epoch"/);
});

test('dermtl start runs the study after the statistics and leaves the serving default model in place', async () => {
  const dir = await tempDir();
  const cfg = await configFile(dir);
  const out = join(dir, 'demo');
  const r = await runCommand(registerStart, [
    'start',
    '--out',
    out,
    '--n',
    '30',
    '--size',
    '64',
    '--folds',
    '2',
    '--config',
    cfg,
    '--no-progress',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /images: 30\n/);
  assert.match(
    r.stdout,
    /cross-validation study \(dermtl cv --manifest \S+ --out \S+ --folds 2 --mode frozen --seed 0 --config \S+tiny\.json --tta 10crop\)/,
  );
  assert.match(r.stdout, /Table 1: lesion AP, pooled out-of-fold \(2 folds\)/);
  assert.ok(r.stdout.includes(`report: ${join(out, 'study', 'report.html')}`));
  assert.ok((await stat(join(out, 'study', 'report.html'))).size > 10_000);
  // DEFAULT_MODEL_PATH is <out>/study/models/mtl/fold-0/model for --out demo
  const model = join(dir, DEFAULT_MODEL_PATH);
  assert.equal(JSON.parse(await readFile(join(model, 'dermtl.json'), 'utf8')).network.heads.location > 1, true);
  // a second start reuses the data and every model
  const again = await runCommand(registerStart, [
    'start',
    '--out',
    out,
    '--folds',
    '2',
    '--config',
    cfg,
    '--no-progress',
  ]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /using the dataset at/);
  // 3 trained models and 3 baselines per fold
  assert.equal((again.stdout.match(/reused \(finished earlier/g) ?? []).length, 12);
});
