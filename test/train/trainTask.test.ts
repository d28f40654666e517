// `dermtl train` end to end on the tiny trunk: frozen training drives the losses down and leaves a complete run
// folder; an interrupted + resumed run ends bit-identical to an uninterrupted one; finetune runs; bad inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imagePathFor, writeManifest } from '../../src/data/manifest.ts';
import { loadModel } from '../../src/models/modelFile.ts';
import type { EpochRecord } from '../../src/train/run.ts';
import { trainRun, type TrainOptions } from '../../src/train/trainTask.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { demoSet, modelParams, tempDir, tinyConfig } from './fixture.ts';

const quiet = { progress: false, log: () => {} };

async function options(extra: Partial<TrainOptions> & { cfg?: Record<string, unknown> } = {}): Promise<TrainOptions> {
  const demo = await demoSet();
  const out = join(await tempDir(), 'run');
  const { cfg, ...rest } = extra;
  return {
    manifest: demo.manifest,
    out,
    task: 'mtl',
    folds: demo.folds,
    fold: 0,
    config: tinyConfig(join(demo.root, 'cache'), cfg),
    ...quiet,
    ...rest,
  };
}

test('frozen MTL training on the tiny trunk: losses go down, complete run folder, loadable full model', async () => {
  const o = await options({
    cfg: { frozen: { epochs: 12, views: 3, shared: { hidden: 32, dropout: 0.5 } }, validation: { fraction: 0.2 } },
  });
  const lines: string[] = [];
  const r = await trainRun({ ...o, log: (l) => lines.push(l) });
  assert.equal(r.status, 'done');
  const files = (await readdir(o.out)).sort();
  // a finished run keeps no checkpoint (only a resume needs one) and its frozen model no trunk
  assert.deepEqual(files, ['config.json', 'history.json', 'model', 'run.json', 'split.json']);
  const modelFiles = await readdir(join(o.out, 'model'));
  assert.ok(modelFiles.includes('heads.onnx') && !modelFiles.includes('model.onnx'), modelFiles.join(' '));
  const info = JSON.parse(await readFile(join(o.out, 'run.json'), 'utf8'));
  assert.equal(info.format, 'dermtl-run');
  assert.equal(info.status, 'done');
  assert.equal(info.task, 'mtl');
  assert.equal(info.mode, 'frozen');
  assert.equal(info.manifest.images, 40);
  assert.match(info.manifest.hash, /^[0-9a-f]{64}$/);
  assert.equal(info.split.train + info.split.validation.length + info.split.test, 40);
  assert.ok(info.split.validation.length > 0);
  assert.deepEqual(info.labels.location, ['arm', 'back', 'chest', 'face', 'foot', 'hand', 'leg', 'scalp']);
  assert.equal(info.labels.lesion.length, 10);
  assert.equal(info.backbone.id, 'tiny-seed0-v1');
  const history: EpochRecord[] = JSON.parse(await readFile(join(o.out, 'history.json'), 'utf8'));
  assert.equal(history.length, 12);
  assert.deepEqual(
    history.map((h) => h.epoch),
    [...Array(12).keys()].map((i) => i + 1),
  );
  const steps = Math.ceil(info.split.train / 8);
  assert.equal(history[11].step, 12 * steps);
  for (const h of history) {
    assert.ok(
      h.validation &&
        Number.isFinite(h.validation.total) &&
        h.validation.mapClass !== null &&
        h.validation.top1 !== null,
    );
    assert.ok(Math.abs(h.train.total - h.train.lesion_loss - h.train.location_loss) < 1e-9);
  }
  assert.ok(
    history[11].train.total < 0.8 * history[0].train.total,
    `train loss ${history[0].train.total} -> ${history[11].train.total}`,
  );
  assert.ok(history[11].train.location_loss < history[0].train.location_loss);
  assert.ok(history[11].train.lesion_loss < history[0].train.lesion_loss);
  assert.equal(lines.filter((l) => l.startsWith('epoch ')).length, 12);
  // model selection: the kept epoch has the best validation lesion mAP-class (the earliest of equals)
  const score = (h: EpochRecord) => h.validation!.mapClass as number;
  const best = Math.max(...history.map(score));
  assert.equal(info.selection.metric, 'mapClass');
  assert.equal(info.selection.epoch, history.findIndex((h) => score(h) === best) + 1);
  assert.ok(Math.abs(info.selection.score - best) < 1e-12);
  const model = await loadModel(join(o.out, 'model'));
  assert.deepEqual(model.labels, info.labels);
  assert.equal(model.network.trunk.depth, 'tiny');
  // The frozen.members head ensemble is saved merged: one shared layer `members` times as wide.
  const members = JSON.parse(await readFile(join(o.out, 'config.json'), 'utf8')).frozen.members;
  assert.equal(members, 5);
  assert.deepEqual(model.network.heads.shared, { hidden: 32 * members, dropout: 0.5 });
  assert.ok(
    model.params().has('conv1/weight') && model.params().has('heads/shared/weight'),
    'the loaded model is the full network',
  );
  const p = await model.predict(new Float32Array(2 * 3 * 32 * 32), 2);
  assert.equal(p.lesion!.length, 20);
  assert.equal(p.location!.length, 16);
  await model.release();
  const config = JSON.parse(await readFile(join(o.out, 'config.json'), 'utf8'));
  assert.equal(config.trunk, 'tiny');
  assert.equal(config.optimizer.lr, 1e-3);
});

test('interrupted mid-epoch and resumed: the same final weights and history as an uninterrupted run (bit-identical)', async () => {
  const straight = await options({ seed: 5 });
  const a = await trainRun(straight);
  assert.equal(a.status, 'done');

  const o = await options({ seed: 5 });
  const ac = new AbortController();
  const stopped = await trainRun({ ...o, signal: ac.signal, onStep: (r) => (r.step === 6 ? ac.abort() : undefined) });
  assert.equal(stopped.status, 'stopped');
  assert.equal(stopped.step, 6);
  assert.equal(JSON.parse(await readFile(join(o.out, 'run.json'), 'utf8')).status, 'training');
  await assert.rejects(trainRun(o), /already holds a run \(status training\); pass --resume/);
  const b = await trainRun({ ...o, resume: true });
  assert.equal(b.status, 'done');
  assert.equal(b.resumedFrom, 6);
  assert.ok(6 % Math.ceil(a.info.split!.train / 8) !== 0, 'the stop was mid-epoch');

  const [pa, pb] = [await modelParams(straight.out), await modelParams(o.out)];
  assert.deepEqual([...pb.keys()], [...pa.keys()]);
  for (const [k, v] of pa) assert.ok(Buffer.from(v.buffer).equals(Buffer.from(pb.get(k)!.buffer)), `${k} differs`);
  const history = async (dir: string) => readFile(join(dir, 'history.json'), 'utf8');
  assert.equal(await history(o.out), await history(straight.out));
  const again = await trainRun({ ...o, resume: true });
  assert.equal(again.status, 'already done');
});

test('another seed gives other weights; --resume with other arguments is refused with the differences', async () => {
  const o = await options({ seed: 1 });
  await trainRun(o);
  const other = await options({ seed: 2 });
  await trainRun(other);
  const [p1, p2] = [await modelParams(o.out), await modelParams(other.out)];
  assert.notDeepEqual(p1.get('heads/lesion/weight'), p2.get('heads/lesion/weight'));
  await assert.rejects(trainRun({ ...o, seed: 3, resume: true }), (e: Error) => {
    assert.ok(e instanceof DermtlError);
    assert.match(e.message, /cannot resume .* with these arguments/);
    assert.match(e.message, /config differs .*\(seed\)/);
    return true;
  });
  await assert.rejects(trainRun({ ...o, fold: 1, resume: true }), /the fold differs: the run used fold 0 of/);
});

test('finetune mode on the tiny trunk: the whole network trains (trunk weights change), padded last batch, full model saved', async () => {
  // lr 1e-4: the random tiny trunk has no BatchNorm and diverges at the paper's 1e-3 (a pretrained trunk does not)
  const o = await options({
    mode: 'finetune',
    cfg: { finetune: { epochs: 2, subset: 13 }, batchSize: 4, optimizer: { lr: 1e-4 } },
  });
  const r = await trainRun(o);
  assert.equal(r.status, 'done');
  assert.equal(r.step, 2 * Math.ceil(13 / 4));
  assert.equal(r.history.length, 2);
  assert.ok(r.history.every((h) => Number.isFinite(h.train.total) && h.validation !== null));
  const params = await modelParams(o.out);
  const { buildBackboneGraph } = await import('../../src/train/backbone.ts');
  const init = buildBackboneGraph({ trunk: 'tiny', imageSize: 32, seed: 0 }, 'random').params;
  assert.notDeepEqual(params.get('conv1/weight'), init.get('conv1/weight'), 'the trunk was fine-tuned');
  assert.equal(params.get('conv1/weight')!.length, init.get('conv1/weight')!.length);
  const info = JSON.parse(await readFile(join(o.out, 'run.json'), 'utf8'));
  assert.equal(info.mode, 'finetune');
  assert.equal(info.backbone, null);
});

test('finetune resumed mid-epoch (loader restarted at that batch) ends bit-identical to an uninterrupted run', async () => {
  const cfg = {
    finetune: { epochs: 2, subset: 10 },
    batchSize: 4,
    optimizer: { lr: 1e-4 },
    validation: { fraction: 0 },
  };
  const straight = await options({ mode: 'finetune', cfg });
  await trainRun(straight);
  const o = await options({ mode: 'finetune', cfg });
  const ac = new AbortController();
  const stopped = await trainRun({ ...o, signal: ac.signal, onStep: (r) => (r.step === 4 ? ac.abort() : undefined) });
  assert.equal(stopped.step, 4, 'epoch 2 (3 updates each), second batch');
  const r = await trainRun({ ...o, resume: true });
  assert.equal(r.resumedFrom, 4);
  const [pa, pb] = [await modelParams(straight.out), await modelParams(o.out)];
  for (const [k, v] of pa) assert.ok(Buffer.from(v.buffer).equals(Buffer.from(pb.get(k)!.buffer)), `${k} differs`);
});

test('bad inputs: fold without folds, foreign fold file, no labels to learn, non-empty folder, unknown config key', async () => {
  const demo = await demoSet();
  await assert.rejects(trainRun({ ...(await options()), folds: undefined }), /--folds and --fold go together/);
  const dir = await tempDir();
  const other = join(dir, 'other.csv');
  const rel = (file: string, p: string) => imagePathFor(file, p);
  await writeManifest(
    other,
    demo.loaded.samples
      .slice(0, 30)
      .map((s) => ({ image: rel(other, s.path), lesions: s.lesions, location: s.location, group: s.group })),
  );
  await assert.rejects(
    trainRun({ ...(await options()), manifest: other }),
    /fold file .*folds\.json does not match manifest/,
  );
  const flat = join(dir, 'flat.csv');
  await writeManifest(
    flat,
    demo.loaded.samples.map((s) => ({ image: rel(flat, s.path), lesions: [], location: s.location, group: s.group })),
  );
  await assert.rejects(
    trainRun({ ...(await options()), manifest: flat, folds: undefined, fold: undefined, task: 'lesion' }),
    /task lesion needs lesion labels, but no image of the manifest has one/,
  );
  const oneSite = join(dir, 'one.csv');
  await writeManifest(
    oneSite,
    demo.loaded.samples.map((s) => ({
      image: rel(oneSite, s.path),
      lesions: s.lesions,
      location: 'leg',
      group: s.group,
    })),
  );
  await assert.rejects(
    trainRun({ ...(await options()), manifest: oneSite, folds: undefined, fold: undefined, task: 'location' }),
    /needs at least 2 body locations, the manifest has 1/,
  );
  const busy = await tempDir();
  await writeFile(join(busy, 'precious.txt'), 'x');
  await assert.rejects(trainRun({ ...(await options()), out: busy }), /not empty and holds no dermtl run/);
  const cfg = join(dir, 'c.json');
  await writeFile(cfg, JSON.stringify({ trunk: 'tiny', fozen: {} }));
  await assert.rejects(trainRun({ ...(await options()), configFile: cfg }), /c\.json[\s\S]*unknown key "fozen"/);
});
