import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { headsOptions, loadConfig, resolveConfig } from '../../src/train/config.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { tempDir } from './fixture.ts';

test("defaults are the paper's recipe (finetune) and the frozen-trunk study settings", () => {
  const c = resolveConfig();
  assert.equal(c.mode, 'frozen');
  assert.equal(c.task, 'mtl');
  assert.equal(c.trunk, 'resnet50');
  assert.equal(c.batchSize, 20);
  assert.deepEqual(c.optimizer, {
    lr: 1e-3,
    momentum: 0.9,
    weightDecay: 1e-4,
    lrMult: { trunk: 1, headWeight: 10, headBias: 20 },
  });
  assert.deepEqual(c.plateau, { factor: 0.1, patience: 2, threshold: 1e-4, cooldown: 0, minLr: 0 });
  assert.deepEqual(c.image, { size: 224, resizeShorter: 256, jitter: { min: 256, max: 480 } });
  assert.equal(c.validation.fraction, 0.1);
  assert.equal(c.frozen.views, 10);
  assert.deepEqual(headsOptions(c), { shared: { hidden: 512, dropout: 0.5 }, featureDropout: 0 });
  assert.deepEqual(headsOptions({ ...c, mode: 'finetune' }), { shared: null, featureDropout: 0 });
  assert.equal(c.eval.tta, '10crop');
});

test('a file overrides part of a section, flags override the file', async () => {
  const dir = await tempDir();
  const file = join(dir, 'c.json');
  await writeFile(file, JSON.stringify({ seed: 4, task: 'lesion', optimizer: { lr: 0.01 }, frozen: { views: 2 } }));
  const c = await loadConfig(file, { seed: 9, mode: 'finetune' });
  assert.equal(c.seed, 9);
  assert.equal(c.mode, 'finetune');
  assert.equal(c.task, 'lesion');
  assert.equal(c.optimizer.lr, 0.01);
  assert.equal(c.optimizer.momentum, 0.9, 'the rest of the section keeps its defaults');
  assert.equal(c.frozen.views, 2);
  assert.equal(c.frozen.epochs, 30);
});

test('unknown keys are errors naming the key path and the file', async () => {
  const dir = await tempDir();
  const file = join(dir, 'typo.json');
  await writeFile(file, JSON.stringify({ optimizer: { lrr: 0.1 }, epochs: 3 }));
  await assert.rejects(loadConfig(file), (e: Error) => {
    assert.ok(e instanceof DermtlError);
    assert.match(e.message, /typo\.json/);
    assert.match(e.message, /unknown key "optimizer\.lrr"/);
    assert.match(e.message, /unknown key "epochs"/);
    return true;
  });
});

test('bad values, bad JSON and a missing file are clear errors', async () => {
  const dir = await tempDir();
  assert.throws(
    () => resolveConfig({ image: { size: 64, resizeShorter: 48 }, trunk: 'tiny' }),
    /image\.resizeShorter: must be >= image\.size \(64\)/,
  );
  assert.throws(
    () => resolveConfig({ trunk: 'tiny', image: { size: 32, resizeShorter: 36, jitter: { min: 40, max: 36 } } }),
    /image\.jitter\.max/,
  );
  assert.throws(() => resolveConfig({ image: { size: 32 } }), /ResNet-50 takes 224x224/);
  assert.throws(() => resolveConfig({ batchSize: 0 }), /batchSize/);
  assert.throws(() => resolveConfig({ frozen: { shared: { hidden: 8, dropout: 1 } } }), /frozen\.shared\.dropout/);
  assert.throws(() => resolveConfig({ mode: 'frozen' }, { task: 'both' as never }), /task/);
  assert.throws(() => resolveConfig([1, 2]), /must be a JSON object/);
  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{ "seed": 1,');
  await assert.rejects(loadConfig(bad), /bad\.json is not valid JSON/);
  await assert.rejects(loadConfig(join(dir, 'nope.json')), /config file not found: .*nope\.json/);
});
