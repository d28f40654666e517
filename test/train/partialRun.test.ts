// `dermtl train --mode finetune` with finetune.trainable 'stageK' end to end on the tiny trunk: only stages K..5 and
// the heads change, the loss goes down, the saved model is the full network (it evaluates, and on a centre crop it
// agrees with the cut network fed the cached activation); an interrupted + resumed run ends bit-identical; a
// trainable value that names no stage is a config error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluateRun } from '../../src/eval/evaluateRun.ts';
import { GraphSession } from '../../src/graph/index.ts';
import { centerCrop } from '../../src/image/index.ts';
import { HEAD_TENSORS } from '../../src/models/heads.ts';
import { loadModel } from '../../src/models/modelFile.ts';
import { ACTIVATIONS_INPUT, buildNetworkFrom } from '../../src/models/network.ts';
import { buildBackboneGraph } from '../../src/train/backbone.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { activationCacheFor } from '../../src/train/partial.ts';
import { preprocessingOf, trainRun, type TrainOptions } from '../../src/train/trainTask.ts';
import { demoSet, modelParams, tempDir, tinyConfig } from './fixture.ts';

const quiet = { progress: false, log: () => {} };

async function options(cfg: Record<string, unknown>, extra: Partial<TrainOptions> = {}): Promise<TrainOptions> {
  const demo = await demoSet();
  const out = join(await tempDir(), 'run');
  return {
    manifest: demo.manifest,
    out,
    task: 'mtl',
    mode: 'finetune',
    folds: demo.folds,
    fold: 0,
    config: tinyConfig(join(demo.root, 'cache'), cfg),
    ...quiet,
    ...extra,
  };
}

const stageOf = (name: string) => Number(/^res(\d)/.exec(name)?.[1] ?? 1);

test('stage5 on the tiny trunk: stage 5 + heads train, the loss falls, the full model is saved, evaluates, and matches the cut network', async () => {
  const o = await options({ finetune: { epochs: 8, trainable: 'stage5', views: 2 }, validation: { fraction: 0.2 } });
  const lines: string[] = [];
  const r = await trainRun({ ...o, log: (l) => lines.push(l) });
  assert.equal(r.status, 'done');
  assert.ok(
    lines.some((l) =>
      /^activations \(input of stage 5, \[32,2,2\] per view\): 0 image\(s\) from the cache, \d+ computed/.test(l),
    ),
    lines.join('\n'),
  );
  const info = JSON.parse(await readFile(join(o.out, 'run.json'), 'utf8'));
  assert.equal(info.mode, 'finetune');
  assert.equal(info.backbone.id, 'tiny-seed0-v1/below-stage5-v1');
  assert.equal(info.config.finetune.trainable, 'stage5');
  assert.ok(info.timings.activations_s > 0 && info.timings.train_s > 0);
  const h = r.history;
  assert.equal(h.length, 8);
  assert.ok(h.every((e) => e.validation && Number.isFinite(e.validation.total)));
  assert.ok(h[7].train.total < h[0].train.total, `train loss ${h[0].train.total} -> ${h[7].train.total}`);

  const params = await modelParams(o.out);
  const init = buildBackboneGraph({ trunk: 'tiny', imageSize: 32, seed: 0 }, 'random').params;
  for (const [name, v] of init) {
    if (stageOf(name) < 5) assert.deepEqual(params.get(name), v, `${name} is frozen`);
    else assert.notDeepEqual(params.get(name), v, `${name} was trained`);
  }
  assert.ok(params.has('heads/lesion/weight') && params.has('heads/location/weight'));

  const demo = await demoSet();
  const ev = await evaluateRun(o.out, {
    manifest: demo.manifest,
    folds: demo.folds,
    fold: 0,
    tta: 'center',
    threads: 1,
    ...quiet,
  });
  assert.ok(ev.evaluation.lesion && Number.isFinite(ev.evaluation.lesion.mapImage ?? NaN));

  // The saved model on a centre crop == the cut network (trained params) on the cached centre activation.
  const validation = demo.loaded.samples.filter((s) => info.split.validation.includes(s.image));
  const config = resolveConfig(info.config);
  const cache = activationCacheFor({ config, prep: preprocessingOf(config) }, 5);
  const [cached] = await cache.prepare([{ images: validation, set: { kind: 'center' }, label: 'test' }]);
  assert.deepEqual(cache.stats, { hits: validation.length, misses: 0 }, 'training cached the validation views');
  const n = validation.length;
  const acts = new Float32Array(n * cache.viewLength);
  await cache.read(
    cached,
    validation.map((_, i) => ({ image: i, view: 0 })),
    acts,
  );
  const model = await loadModel(join(o.out, 'model'));
  const pixels = new Float32Array(n * 3 * 32 * 32);
  for (let i = 0; i < n; i++)
    pixels.set((await centerCrop(validation[i].path, { prep: preprocessingOf(config) })).data, i * 3 * 32 * 32);
  const full = await model.predict(pixels, n);
  await model.release();
  const cut = buildNetworkFrom(model.network, 5, { batch: n, mode: 'inference', values: params, requireValues: true });
  const s = await GraphSession.fromGraph(cut.graph, { threads: 1 });
  const out = await s.run({ [ACTIVATIONS_INPUT]: acts });
  await s.release();
  const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));
  assert.ok(
    diff(full.lesion!, out[HEAD_TENSORS.lesionProbs].data as Float32Array) < 2e-3,
    'lesion probabilities (float16 activations)',
  );
  assert.ok(
    diff(full.location!, out[HEAD_TENSORS.locationProbs].data as Float32Array) < 2e-3,
    'location probabilities',
  );
});

test('stage4 interrupted mid-epoch and resumed: bit-identical to an uninterrupted run; the cache is reused', async () => {
  const cfg = {
    finetune: { epochs: 2, subset: 10, trainable: 'stage4', views: 2 },
    batchSize: 4,
    validation: { fraction: 0 },
  };
  const straight = await options(cfg);
  await trainRun(straight);
  const o = await options(cfg);
  const ac = new AbortController();
  const lines: string[] = [];
  const stopped = await trainRun({
    ...o,
    signal: ac.signal,
    onStep: (r) => (r.step === 4 ? ac.abort() : undefined),
    log: (l) => lines.push(l),
  });
  assert.equal(stopped.status, 'stopped');
  assert.equal(stopped.step, 4, 'epoch 2 (3 updates each), second batch');
  assert.ok(
    lines.some((l) => /: 10 image\(s\) from the cache, 0 computed/.test(l)),
    "the second run reads the first run's cache",
  );
  const r = await trainRun({ ...o, resume: true });
  assert.equal(r.resumedFrom, 4);
  const [pa, pb] = [await modelParams(straight.out), await modelParams(o.out)];
  assert.deepEqual([...pb.keys()].sort(), [...pa.keys()].sort());
  for (const [k, v] of pa) assert.ok(Buffer.from(v.buffer).equals(Buffer.from(pb.get(k)!.buffer)), `${k} differs`);
  const history = async (dir: string) => readFile(join(dir, 'history.json'), 'utf8');
  assert.equal(await history(o.out), await history(straight.out));
});

test('a trainable value that names no stage is a config error listing the valid ones, before any work', async () => {
  const o = await options({ finetune: { trainable: 'stage6' } });
  await assert.rejects(
    trainRun(o),
    /finetune\.trainable: Invalid option: expected one of "all"\|"stage5"\|"stage4"\|"stage3"/,
  );
  await assert.rejects(readFile(join(o.out, 'run.json')), 'no run folder was written');
});
