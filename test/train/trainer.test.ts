import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTraining } from '../../src/train/loop.ts';
import { restoreCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.ts';
import { Trainer } from '../../src/train/step.ts';
import { SgdMomentum } from '../../src/train/optimizer.ts';
import { Graph, GraphSession, buildTrainingGraph } from '../../src/graph/index.ts';
import { DermtlError } from '../../src/util/errors.ts';
import {
  BATCH,
  STEPS_PER_EPOCH,
  batchAt,
  buildNet,
  datasetLoss,
  makeDataset,
  makeTrainer,
  snapshot,
} from './helpers.ts';

const DATA = makeDataset(3);
const ORDER_SEED = 7;

test('two heads (multi-label sigmoid CE + softmax CE, with masks): 300 steps drive both losses far down', async (t) => {
  const net = buildNet(1);
  const trainer = await makeTrainer(1, { forward: net });
  try {
    assert.deepEqual(
      trainer.optimizer.params.map((p) => `${p.name}:${p.lrMult}/${p.decayMult}`),
      ['conv/w:1/1', 'conv/b:1/0', 'lesion/w:10/1', 'lesion/b:20/0', 'location/w:10/1', 'location/b:20/0'],
    );
    const before = await datasetLoss(trainer, DATA);
    let last;
    for (let i = 0; i < 300; i++) last = await trainer.step(batchAt(DATA, ORDER_SEED, i));
    const after = await datasetLoss(trainer, DATA);
    t.diagnostic(
      `lesion ${before.lesionLoss.toFixed(3)} -> ${after.lesionLoss.toFixed(4)}, location ${before.locationLoss.toFixed(3)} -> ${after.locationLoss.toFixed(4)}`,
    );
    assert.equal(last!.step, 300);
    assert.equal(trainer.stepCount, 300);
    assert.equal(last!.lr, 1e-3);
    // Chance level: 4 labels x ln 2 plus init noise, ln 3; both well above 1 at the start.
    assert.ok(before.lesionLoss > 2 && before.locationLoss > 1, JSON.stringify(before));
    assert.ok(after.lesionLoss < 0.5 * before.lesionLoss, `lesion ${after.lesionLoss} vs ${before.lesionLoss}`);
    assert.ok(
      after.locationLoss < 0.5 * before.locationLoss,
      `location ${after.locationLoss} vs ${before.locationLoss}`,
    );
    // Training updates the trainer's copies; the graph's declared initial values stay as they were.
    const initial = buildNet(1).params();
    assert.deepEqual(
      net.params().map((p) => p.data),
      initial.map((p) => p.data),
    );
    assert.notDeepEqual(trainer.params.get('conv/w'), initial[0].data);
  } finally {
    await trainer.release();
  }
});

/** A run of 60 updates: validation every 10 (plateau halves lr readily), checkpoints every 20. */
async function run(root: string, trainer: Trainer, crashAt?: number) {
  const lrs: number[] = [];
  const result = await runTraining(trainer, {
    steps: 60,
    batch: (i) => {
      if (i === crashAt) throw new Error('simulated crash');
      return batchAt(DATA, ORDER_SEED, i);
    },
    checkpoint: { root, every: 20 },
    validate: { every: 10, loss: async (tr) => (await tr.evalLoss(batchAt(DATA, 99, 0))).lesionLoss },
    progress: (step) => ({ epoch: Math.floor(step / STEPS_PER_EPOCH), orderSeed: ORDER_SEED }),
    onStep: (r) => lrs.push(r.lr),
  });
  return { result, lrs };
}

test('interrupt and resume from a checkpoint gives bit-identical params, momentum, lr and scheduler state', async () => {
  const plateau = { factor: 0.5, patience: 0, threshold: 0.3 };
  const full = await makeTrainer(1, { plateau });
  const straight = await run(await mkdtemp(join(tmpdir(), 'dermtl-full-')), full);
  assert.equal(straight.result.step, 60);
  assert.ok(full.scheduler!.state().reductions >= 1, 'the run exercises an lr drop');

  const root = await mkdtemp(join(tmpdir(), 'dermtl-resume-'));
  const first = await makeTrainer(1, { plateau });
  await assert.rejects(run(root, first, 35), /simulated crash/);
  await first.release();
  assert.deepEqual(JSON.parse(await readFile(join(root, 'latest.json'), 'utf8')).checkpoint, 'step-000000020');

  const second = await makeTrainer(1, { plateau }); // a fresh process: new sessions, initial params
  const resumed = await run(root, second);
  assert.equal(resumed.result.resumedFrom, 20);
  assert.deepEqual(resumed.result.resumedProgress, { epoch: 2, orderSeed: ORDER_SEED });
  assert.equal(resumed.result.step, 60);
  assert.deepEqual(resumed.lrs, straight.lrs.slice(20));

  assert.deepEqual(snapshot(second.params), snapshot(full.params));
  const [a, b] = [full.optimizer.state(), second.optimizer.state()];
  assert.equal(b.lr, a.lr);
  assert.ok(a.lr < 1e-3);
  for (const [k, v] of a.buffers)
    assert.deepEqual(Buffer.from(b.buffers.get(k)!.buffer), Buffer.from(v.buffer), `momentum ${k}`);
  assert.deepEqual(second.scheduler!.state(), full.scheduler!.state());
  // 20, 40 and the final 60 were saved; keep 2 leaves the last two.
  assert.deepEqual((await readdir(root)).sort(), ['latest.json', 'step-000000040', 'step-000000060']);
  await Promise.all([full.release(), second.release()]);
});

test('a NaN loss throws naming the loss and step, leaves params and the last good checkpoint alone', async () => {
  const trainer = await makeTrainer(2);
  const root = await mkdtemp(join(tmpdir(), 'dermtl-nan-'));
  try {
    for (let i = 0; i < 5; i++) await trainer.step(batchAt(DATA, ORDER_SEED, i));
    await saveCheckpoint(root, trainer, { note: 'good' });
    const latest = await readFile(join(root, 'latest.json'), 'utf8');
    const before = snapshot(trainer.params);
    const momentum = trainer.optimizer.state().buffers;

    // Per-sample weights of +-3e38 are finite, but the weighted per-sample losses overflow to +Inf and
    // -Inf and their sum is NaN.
    const bad = {
      ...batchAt(DATA, ORDER_SEED, 5),
      lesionWeight: Float32Array.from({ length: BATCH }, (_, i) => (i % 2 ? 3e38 : -3e38)),
    };
    await assert.rejects(trainer.step(bad), (e: Error) => {
      assert.ok(e instanceof DermtlError);
      assert.equal(e.message, 'loss lesionLoss is NaN at step 6; parameters were not updated');
      return true;
    });
    const inf = { ...batchAt(DATA, ORDER_SEED, 5), lesionWeight: new Float32Array(BATCH).fill(3e38) };
    await assert.rejects(trainer.step(inf), /^DermtlError: loss lesionLoss is Infinity at step 6/);
    await assert.rejects(trainer.evalLoss(bad), /loss lesionLoss is NaN in evaluation/);
    assert.deepEqual(snapshot(trainer.params), before);
    assert.deepEqual(trainer.optimizer.state().buffers, momentum);
    assert.equal(trainer.stepCount, 5);

    // Even with a corrupted param, no checkpoint replaces the good one.
    const w = trainer.params.get('lesion/w')!;
    const keep = w[3];
    w[3] = NaN;
    await assert.rejects(
      saveCheckpoint(root, trainer),
      /param lesion\/w is not finite at step 5; refusing to replace the last good checkpoint/,
    );
    assert.equal(await readFile(join(root, 'latest.json'), 'utf8'), latest);
    w[3] = keep;

    // Training goes on from the untouched state, and the good checkpoint restores it.
    const ok = await trainer.step(batchAt(DATA, ORDER_SEED, 5));
    assert.equal(ok.step, 6);
    const info = await restoreCheckpoint(root, trainer);
    assert.deepEqual(info?.progress, { note: 'good' });
    assert.equal(trainer.stepCount, 5);
    assert.deepEqual(snapshot(trainer.params), before);
  } finally {
    await trainer.release();
  }
});

test('trainer input errors: params fed by hand, unknown multiplier names', async () => {
  const trainer = await makeTrainer(1);
  try {
    const feeds = { ...batchAt(DATA, ORDER_SEED, 0), 'conv/b': new Float32Array(8) };
    await assert.rejects(trainer.step(feeds), /feed\(s\) conv\/b are trainable params; the trainer feeds them itself/);
    await assert.rejects(
      trainer.step({ ...batchAt(DATA, ORDER_SEED, 0), image: new Float32Array(5) }),
      /input 'image'/,
    );
    assert.equal(trainer.stepCount, 0);
  } finally {
    await trainer.release();
  }
  await assert.rejects(
    makeTrainer(1, { multipliers: { 'lesion/W': { lrMult: 10 } } }),
    /multipliers name param\(s\) the model has no trainable param for: lesion\/W/,
  );
});

test('evalForward: losses come from the eval graph with the current params; a graph with other params is refused', async () => {
  const plain = await makeTrainer(1);
  const withEval = await makeTrainer(1, { evalForward: buildNet(1) });
  try {
    for (let i = 0; i < 3; i++) {
      await plain.step(batchAt(DATA, ORDER_SEED, i));
      await withEval.step(batchAt(DATA, ORDER_SEED, i));
    }
    const probe = batchAt(DATA, 99, 0);
    const [a, b] = [await plain.evalLoss(probe), await withEval.evalLoss(probe)];
    // No dropout in this net, so both graphs compute the same losses from the same (trained) params.
    assert.ok(
      Math.abs(a.lesionLoss - b.lesionLoss) < 1e-6 && Math.abs(a.locationLoss - b.locationLoss) < 1e-6,
      `${JSON.stringify(a)} vs ${JSON.stringify(b)}`,
    );
    assert.notEqual(b.lesionLoss, (await makeTrainerLoss(probe)).lesionLoss); // not the untrained values
  } finally {
    await Promise.all([plain.release(), withEval.release()]);
  }
  const other = buildNet(1);
  other.param('extra', [2], new Float32Array(2), { trainable: true });
  await assert.rejects(
    makeTrainer(1, { evalForward: other }),
    /evalForward must declare the same trainable params as forward/,
  );
});

async function makeTrainerLoss(feeds: ReturnType<typeof batchAt>) {
  const t = await makeTrainer(1);
  try {
    return await t.evalLoss(feeds);
  } finally {
    await t.release();
  }
}

test('abort signal: the loop finishes the current update, checkpoints and returns', async () => {
  const root = await mkdtemp(join(tmpdir(), 'dermtl-abort-'));
  const trainer = await makeTrainer(1);
  const stop = new AbortController();
  try {
    const r = await runTraining(trainer, {
      steps: 50,
      batch: (i) => batchAt(DATA, ORDER_SEED, i),
      checkpoint: { root, every: 20 },
      signal: stop.signal,
      onStep: (s) => s.step === 7 && stop.abort(),
    });
    assert.deepEqual(r, { step: 7, stopped: true });
    assert.deepEqual(JSON.parse(await readFile(join(root, 'latest.json'), 'utf8')), {
      checkpoint: 'step-000000007',
      step: 7,
      previous: [],
    });
  } finally {
    await trainer.release();
  }
});

test('a non-finite gradient (finite loss) throws naming param, value and index; nothing is updated', async () => {
  // loss = sum(w * x) with loss weight 1e38: the loss stays finite, its gradient 1e38 * x overflows where x >= 4
  // (index 21 of 40 is in a SIMD block of the scan, 37 in its tail, 1 of 3 in a scan that is all tail).
  for (const [n, at] of [
    [3, 1],
    [40, 21],
    [40, 37],
  ]) {
    const g = new Graph();
    const w = g.param(
      'w',
      [n],
      Float32Array.from({ length: n }, (_, i) => i / n),
      { trainable: true },
    );
    g.reduceSum(g.mul(w, g.input('x', [n])), undefined, false, { name: 'loss' });
    const trainer = await Trainer.create({
      forward: g,
      losses: [{ name: 'loss', weight: 1e38 }],
      sgd: { lr: 1e-39 },
      threads: 1,
    });
    try {
      const x = new Float32Array(n).fill(1);
      await trainer.step({ x });
      const before = snapshot(trainer.params);
      x[at] = 5;
      await assert.rejects(trainer.step({ x }), (e: Error) => {
        assert.ok(e instanceof DermtlError);
        assert.equal(e.message, `gradient of w is Infinity at index ${at} at step 2; parameters were not updated`);
        return true;
      });
      assert.deepEqual(snapshot(trainer.params), before);
      assert.equal(trainer.stepCount, 1);
    } finally {
      await trainer.release();
    }
  }
});

test('trainer steps equal a plain run of the same graph + SgdMomentum on ordinary arrays, bit for bit', async () => {
  // The trainer keeps params, momentum and gradients in a WebAssembly arena and has ORT write the gradients into
  // reused buffers; the reference fetches fresh gradient arrays and updates with the JS kernel.
  const trainer = await makeTrainer(4);
  const net = buildNet(4);
  const session = await GraphSession.fromGraph(
    buildTrainingGraph(
      net,
      ['lesionLoss', 'locationLoss'].map((n) => net.tensor(n)),
    ),
    { training: true, threads: 1 },
  );
  try {
    const specs = trainer.optimizer.params.map((p) => ({
      name: p.name,
      shape: p.shape,
      lrMult: p.lrMult,
      decayMult: p.decayMult,
    }));
    const reference = new SgdMomentum(specs, { lr: 1e-3, momentum: 0.9, weightDecay: 1e-4 });
    const params = new Map(net.params({ trainable: true }).map((p) => [p.name, p.data.slice()]));
    for (let i = 0; i < 4; i++) {
      const feeds = batchAt(DATA, ORDER_SEED, i);
      const r = await trainer.step(feeds);
      const out = await session.run({ ...feeds, ...Object.fromEntries(params) });
      assert.equal(r.losses.lesionLoss, out.lesionLoss.data[0]);
      reference.update(
        params,
        Object.fromEntries(specs.map((p) => [p.name, out[`grad/${p.name}`].data as Float32Array])),
      );
    }
    assert.deepEqual(snapshot(trainer.params), snapshot(params));
    const [a, b] = [trainer.optimizer.state().buffers, reference.state().buffers];
    for (const [k, v] of a) assert.deepEqual(Buffer.from(v.buffer), Buffer.from(b.get(k)!.buffer), `momentum ${k}`);
    assert.ok(
      trainer.params.get('conv/w')!.some((v, i) => v !== net.params()[0].data[i]),
      'the params moved',
    );
  } finally {
    await Promise.all([trainer.release(), session.release()]);
  }
});

test('a Trainer built without an arena (plain arrays, JS kernel) takes the same steps as the arena one', async () => {
  const withArena = await makeTrainer(5);
  const net = buildNet(5);
  const session = await GraphSession.fromGraph(
    buildTrainingGraph(
      net,
      ['lesionLoss', 'locationLoss'].map((n) => net.tensor(n)),
    ),
    { training: true, threads: 1 },
  );
  const specs = withArena.optimizer.params.map((p) => ({
    name: p.name,
    shape: p.shape,
    lrMult: p.lrMult,
    decayMult: p.decayMult,
  }));
  const plain = new Trainer(
    session,
    new Map(net.params({ trainable: true }).map((p) => [p.name, p.data.slice()])),
    new SgdMomentum(specs, { lr: 1e-3, momentum: 0.9, weightDecay: 1e-4 }),
    ['lesionLoss', 'locationLoss'],
  );
  try {
    for (let i = 0; i < 3; i++) {
      const feeds = batchAt(DATA, ORDER_SEED, i);
      assert.deepEqual((await plain.step(feeds)).losses, (await withArena.step(feeds)).losses);
    }
    assert.deepEqual(snapshot(plain.params), snapshot(withArena.params));
  } finally {
    await Promise.all([withArena.release(), plain.release()]);
  }
});
