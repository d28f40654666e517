import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile, mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCheckpoint, restoreCheckpoint, saveCheckpoint, type TrainingState } from '../../src/train/checkpoint.ts';
import { SgdMomentum, type ParamSpec } from '../../src/train/optimizer.ts';
import { ReduceOnPlateau } from '../../src/train/scheduler.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { Rng } from '../../src/util/rng.ts';

const SPECS: ParamSpec[] = [
  { name: 'conv/w', shape: [2, 3, 3, 3] },
  { name: 'conv/b', shape: [2] },
  { name: 'fc/w', shape: [4, 2], lrMult: 10 },
];

function state(specs = SPECS, seed = 1): TrainingState & { scheduler: ReduceOnPlateau } {
  const rng = Rng.seeded(seed);
  const params = new Map(
    specs.map((s) => [
      s.name,
      Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)),
    ]),
  );
  const optimizer = new SgdMomentum(specs, { lr: 0.01 });
  return { params, optimizer, scheduler: new ReduceOnPlateau(optimizer, { patience: 0 }) };
}

function advance(s: TrainingState, steps: number, seed = 9): void {
  const rng = Rng.seeded(seed);
  for (let k = 0; k < steps; k++) {
    s.optimizer.update(
      s.params,
      Object.fromEntries([...s.params].map(([n, v]) => [n, Float32Array.from(v, () => rng.uniform(-0.1, 0.1))])),
    );
  }
}

const tmp = () => mkdtemp(join(tmpdir(), 'dermtl-ckpt-'));

test('save then restore into fresh state: params, optimizer, scheduler and progress come back', async () => {
  const root = await tmp();
  assert.equal(await findCheckpoint(root), undefined);
  assert.equal(await restoreCheckpoint(join(root, 'nothing-here'), state()), undefined);
  const a = state();
  advance(a, 3);
  a.scheduler.observe(1);
  a.scheduler.observe(1); // plateau: lr 0.01 -> 0.001
  const dir = await saveCheckpoint(root, a, { epoch: 4, position: 120, seeds: { order: 7 } });
  assert.equal(dir, join(root, 'step-000000003'));
  assert.deepEqual((await readdir(dir)).sort(), ['checkpoint.json', 'optimizer.bin', 'params.bin']);

  const b = state(SPECS, 2);
  const info = await restoreCheckpoint(root, b);
  assert.deepEqual(info, { dir, step: 3, progress: { epoch: 4, position: 120, seeds: { order: 7 } } });
  for (const [k, v] of a.params) assert.deepEqual(b.params.get(k), v, k);
  assert.equal(b.optimizer.stepCount, 3);
  assert.ok(Math.abs(b.optimizer.learningRate - 0.001) < 1e-15);
  assert.deepEqual(b.scheduler.state(), a.scheduler.state());
  assert.deepEqual(b.optimizer.state(), a.optimizer.state());
  // A checkpoint folder can be named directly too.
  assert.equal((await restoreCheckpoint(dir, state()))?.step, 3);
});

test('keep: only the newest checkpoints this root made are kept; a folder left by another run is not touched', async () => {
  const root = await tmp();
  const s = state();
  await mkdir(join(root, 'step-000000002')); // e.g. left by an abandoned run
  for (let k = 0; k < 4; k++) {
    advance(s, 1, k);
    await saveCheckpoint(root, s, null, { keep: 2 });
  }
  // steps 1..4; step 2 collided with the foreign folder and became step-000000002-2
  assert.deepEqual((await readdir(root)).sort(), ['latest.json', 'step-000000002', 'step-000000003', 'step-000000004']);
  const latest = JSON.parse(await readFile(join(root, 'latest.json'), 'utf8'));
  assert.deepEqual(latest, { checkpoint: 'step-000000004', step: 4, previous: ['step-000000003'] });
  await saveCheckpoint(root, s, null, { keep: 1 }); // same step again: a fresh name, never overwriting the current one
  assert.deepEqual((await readdir(root)).sort(), ['latest.json', 'step-000000002', 'step-000000004-2']);
});

async function savedRoot(): Promise<{ root: string; dir: string }> {
  const root = await tmp();
  const s = state();
  advance(s, 2);
  return { root, dir: await saveCheckpoint(root, s, { epoch: 1 }) };
}

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof DermtlError, `${e.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test('missing or truncated files are named', async () => {
  {
    const { root, dir } = await savedRoot();
    await rm(join(dir, 'params.bin'));
    await rejectsWith(restoreCheckpoint(root, state()), /cannot read .*step-000000002\/params\.bin: file is missing/);
  }
  {
    const { root, dir } = await savedRoot();
    const file = join(dir, 'optimizer.bin');
    const size = (await stat(file)).size;
    await truncate(file, size - 10);
    await rejectsWith(
      restoreCheckpoint(root, state()),
      new RegExp(`optimizer\\.bin: truncated: expected ${size} bytes, got ${size - 10}`),
    );
  }
  {
    const { root, dir } = await savedRoot();
    await truncate(join(dir, 'checkpoint.json'), 20);
    await rejectsWith(restoreCheckpoint(root, state()), /checkpoint\.json: not valid JSON \(truncated\?\)/);
  }
  {
    const { root, dir } = await savedRoot();
    await rm(dir, { recursive: true });
    await rejectsWith(
      restoreCheckpoint(root, state()),
      /latest\.json names checkpoint step-000000002, but .*checkpoint\.json is missing/,
    );
  }
  {
    const { root } = await savedRoot();
    await writeFile(join(root, 'latest.json'), JSON.stringify({ checkpoint: '../../etc', step: 1, previous: [] }));
    await rejectsWith(restoreCheckpoint(root, state()), /latest\.json: malformed/);
  }
});

test('param name and shape mismatches are listed; nothing is changed', async () => {
  const { root } = await savedRoot();
  const other = state(
    [
      { name: 'conv/w', shape: [2, 3, 3, 3] },
      { name: 'conv/bias', shape: [2] },
      { name: 'fc/w', shape: [5, 2], lrMult: 10 },
    ],
    3,
  );
  const before = new Map([...other.params].map(([k, v]) => [k, v.slice()]));
  await rejectsWith(
    restoreCheckpoint(root, other),
    new RegExp(
      [
        'params\\.bin does not fit this model \\(3 problems\\):',
        '  - param conv/bias \\[2\\] is missing',
        '  - param fc/w has shape \\[4,2\\] in the checkpoint, the model wants \\[5,2\\]',
        '  - param conv/b is not in this model',
      ].join('\n'),
    ),
  );
  assert.deepEqual(other.params, before);
  assert.equal(other.optimizer.stepCount, 0);

  // Same params but different multipliers: the optimizer state is refused, params stay as they were.
  const mults = state([SPECS[0], SPECS[1], { ...SPECS[2], lrMult: 1 }], 3);
  const kept = mults.params.get('conv/w')!.slice();
  await rejectsWith(
    restoreCheckpoint(root, mults),
    /optimizer\.bin does not match this optimizer \(1 problem\):\n {2}- param fc\/w has lrMult\/decayMult 10\/1 there, 1\/1 here/,
  );
  assert.deepEqual(mults.params.get('conv/w'), kept);
});
