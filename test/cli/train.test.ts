// The train / eval / ensemble commands as a user runs them: flags, output, exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { register as registerTrain } from '../../src/cli/commands/train.ts';
import { register as registerEval } from '../../src/cli/commands/eval.ts';
import { register as registerEnsemble } from '../../src/cli/commands/ensemble.ts';
import { runCommand } from '../data/helpers.ts';
import { demoSet, tempDir, tinyConfig } from '../train/fixture.ts';

async function configFile(extra: Record<string, unknown> = {}): Promise<string> {
  const demo = await demoSet();
  const file = join(await tempDir(), 'tiny.json');
  await writeFile(file, JSON.stringify(tinyConfig(join(demo.root, 'cache'), extra)));
  return file;
}

test('dermtl train --help documents the flags and the defaults', async () => {
  const r = await runCommand(registerTrain, ['train', '--help']);
  assert.equal(r.code, 0);
  for (const flag of ['--manifest', '--task', '--out', '--folds', '--fold', '--config', '--mode', '--seed', '--resume'])
    assert.ok(r.stdout.includes(flag), flag);
  assert.match(r.stdout, /choices: "mtl", "lesion", "location"/);
  assert.match(r.stdout, /SGD momentum 0\.9, weight decay 1e-4, batch 20, lr 1e-3/);
});

test('train -> eval -> ensemble -> eval from the command line', async () => {
  const demo = await demoSet();
  const cfg = await configFile();
  const root = await tempDir();
  const [a, b, e] = ['a', 'b', 'e'].map((x) => join(root, x));
  const common = ['--manifest', demo.manifest, '--folds', demo.folds, '--fold', '0', '--config', cfg, '--no-progress'];
  let r = await runCommand(registerTrain, ['train', '--task', 'mtl', '--out', a, ...common]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^features: \d+ image\(s\) from the cache, \d+ computed/m);
  assert.match(
    r.stdout,
    /^epoch 4\/4  train loss \d+\.\d{4}  validation loss \d+\.\d{4}  mAP-class \d\.\d{4}  top-1 \d\.\d{4}  lr 0\.0001/m,
  );
  assert.match(
    r.stdout,
    /wrote .*a[/\\]model \(\d+ updates, 4 epochs; kept epoch \d, best validation mapClass \d\.\d{4}\)/,
  );
  r = await runCommand(registerTrain, ['train', '--task', 'mtl', '--out', b, '--seed', '7', ...common]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(await readFile(join(b, 'config.json'), 'utf8')).seed, 7);

  r = await runCommand(registerEval, [
    'eval',
    a,
    '--manifest',
    demo.manifest,
    '--folds',
    demo.folds,
    '--fold',
    '0',
    '--tta',
    'center',
    '--no-progress',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^evaluated 13 image\(s\): the test part of fold 0 .*; tta center, cached trunk features \+ trained heads$/m,
  );
  assert.match(r.stdout, /^mAP-class \d\.\d{4} over \d+ class\(es\)$/m);
  assert.match(r.stdout, /^location top-1 \d\.\d{4} {2}top-3 \d\.\d{4}/m);
  assert.equal(JSON.parse(await readFile(join(a, 'metrics.json'), 'utf8')).tta, 'center');

  r = await runCommand(registerEnsemble, ['ensemble', a, b, '--out', e]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote ensemble run .*: max of .*a and .*b/);
  assert.match(r.stdout, /dermtl eval .*e --manifest M --folds .*folds\.json --fold 0/);
  r = await runCommand(registerEval, [
    'eval',
    e,
    '--manifest',
    demo.manifest,
    '--folds',
    demo.folds,
    '--fold',
    '0',
    '--no-progress',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /tta 10crop, max-ensemble of the member runs/);
});

test('usage errors exit 2, input errors exit 1 with a message and no stack', async () => {
  const demo = await demoSet();
  let r = await runCommand(registerTrain, ['train', '--manifest', demo.manifest, '--task', 'both', '--out', '/tmp/x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /argument 'both' is invalid/);
  r = await runCommand(registerTrain, ['train', '--manifest', demo.manifest, '--out', '/tmp/x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /required option '--task <task>' not specified/);
  r = await runCommand(registerTrain, [
    'train',
    '--manifest',
    demo.manifest,
    '--task',
    'mtl',
    '--out',
    join(await tempDir(), 'r'),
    '--fold',
    'one',
  ]);
  assert.equal(r.code, 2);
  const bad = join(await tempDir(), 'bad.json');
  await writeFile(bad, JSON.stringify({ optimiser: {} }));
  r = await runCommand(registerTrain, [
    'train',
    '--manifest',
    demo.manifest,
    '--task',
    'mtl',
    '--out',
    join(await tempDir(), 'r'),
    '--config',
    bad,
  ]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^dermtl: invalid training config in .*bad\.json \(1 problem\):\n {2}- unknown key "optimiser"/,
  );
  r = await runCommand(registerEval, ['eval', await tempDir(), '--manifest', demo.manifest]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not a dermtl run folder/);
  r = await runCommand(registerEval, ['eval', await tempDir(), '--manifest', demo.manifest, '--tta', 'five']);
  assert.equal(r.code, 2);
});
