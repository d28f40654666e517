import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, rm, truncate, writeFile, appendFile } from 'node:fs/promises';
import { loadTfjsWeights, parameterCount } from '../../src/models/tfjsWeights.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { tempDir, writeFakeTfjs, type FakeGroup } from './fakeTfjs.ts';

// Two groups; shards of 64 bytes so weights straddle shard boundaries (conv/kernel is 4*3*4 = 48 floats).
const GROUPS: FakeGroup[] = [
  {
    shardBytes: 64,
    weights: [
      { name: 'conv/kernel', shape: [2, 2, 3, 4] },
      { name: 'conv/bias', shape: [4] },
      { name: 'bn/gamma', shape: [4] },
    ],
  },
  {
    shardBytes: 1 << 20,
    weights: [
      { name: 'fc/kernel', shape: [5, 3] },
      { name: 'scalar', shape: [] },
    ],
  },
];

async function fakeFolder(): Promise<{ dir: string; expected: Map<string, Float32Array> }> {
  const dir = await tempDir();
  return { dir, expected: await writeFakeTfjs(dir, GROUPS, 42) };
}

test('parses every weight of every group with its shape and exact values, across shard boundaries', async () => {
  const { dir, expected } = await fakeFolder();
  const w = await loadTfjsWeights(dir);
  assert.deepEqual([...w.keys()], ['conv/kernel', 'conv/bias', 'bn/gamma', 'fc/kernel', 'scalar']);
  assert.deepEqual(w.get('conv/kernel')!.shape, [2, 2, 3, 4]);
  assert.deepEqual(w.get('scalar')!.shape, []);
  for (const [name, values] of expected) assert.deepEqual(w.get(name)!.data, values, name);
  assert.equal(parameterCount(w), 48 + 4 + 4 + 15 + 1);
  await rm(dir, { recursive: true });
});

test('a truncated shard is reported by name, with the missing byte count', async () => {
  const { dir } = await fakeFolder();
  // group 1 has 56 floats = 224 bytes = shards of 64,64,64,32; cut the second one.
  await truncate(join(dir, 'group1-shard2of4.bin'), 40);
  await assert.rejects(loadTfjsWeights(dir), (e: Error) => {
    assert.ok(e instanceof DermtlError);
    assert.match(e.message, /group1-shard2of4\.bin: weight shard is short/);
    assert.match(e.message, /hold 200 bytes, model\.json needs 224; 24 bytes missing/);
    return true;
  });
  await rm(dir, { recursive: true });
});

test('a truncated last shard and an over-long shard are both refused', async () => {
  const { dir } = await fakeFolder();
  await truncate(join(dir, 'group1-shard4of4.bin'), 8);
  await assert.rejects(loadTfjsWeights(dir), /group1-shard4of4\.bin: weight shard is short/);
  await truncate(join(dir, 'group1-shard4of4.bin'), 32);
  await appendFile(join(dir, 'group2-shard1of1.bin'), Buffer.alloc(4));
  await assert.rejects(loadTfjsWeights(dir), /group2-shard1of1\.bin: weight shard is long .*4 bytes extra/);
  await rm(dir, { recursive: true });
});

test('a missing shard is named', async () => {
  const { dir } = await fakeFolder();
  await rm(join(dir, 'group1-shard3of4.bin'));
  await assert.rejects(
    loadTfjsWeights(dir),
    (e: Error) => e instanceof DermtlError && /group1-shard3of4\.bin: weight shard missing/.test(e.message),
  );
  await rm(dir, { recursive: true });
});

test('corrupted or missing model.json gives a DermtlError naming the file', async () => {
  const { dir } = await fakeFolder();
  const mj = join(dir, 'model.json');
  const text = await readFile(mj, 'utf8');
  await writeFile(mj, text.slice(0, text.length / 2));
  await assert.rejects(
    loadTfjsWeights(dir),
    (e: Error) => e instanceof DermtlError && /model\.json: not valid JSON/.test(e.message),
  );
  await writeFile(mj, JSON.stringify({ format: 'layers-model' }));
  await assert.rejects(loadTfjsWeights(dir), /model\.json: no "weightsManifest" array/);
  await rm(mj);
  await assert.rejects(
    loadTfjsWeights(dir),
    (e: Error) => e instanceof DermtlError && /model\.json: cannot read .*ENOENT/.test(e.message),
  );
  await rm(dir, { recursive: true });
});

test('non-float32, quantized, duplicate and malformed weight specs are all listed', async () => {
  const dir = await tempDir();
  await writeFakeTfjs(dir, [
    {
      shardBytes: 1024,
      weights: [
        { name: 'a', shape: [2] },
        { name: 'b', shape: [3], dtype: 'int32' },
      ],
    },
  ]);
  const mj = join(dir, 'model.json');
  const model = JSON.parse(await readFile(mj, 'utf8'));
  await assert.rejects(loadTfjsWeights(dir), /weight "b": dtype "int32", only float32 is supported/);
  const ws = model.weightsManifest[0].weights;
  ws[1].dtype = 'float32';
  ws[0].quantization = { dtype: 'uint8', scale: 0.1, min: 0 };
  ws.push({ name: 'a', shape: [0], dtype: 'float32' }, { name: 'c', shape: [-1], dtype: 'float32' });
  await writeFile(mj, JSON.stringify(model));
  await assert.rejects(loadTfjsWeights(dir), (e: Error) => {
    assert.match(e.message, /unusable weightsManifest \(3 problems\)/);
    assert.match(e.message, /weight "a": quantized weights are not supported/);
    assert.match(e.message, /weight "a": listed twice/);
    assert.match(e.message, /weight "c": bad shape \[-1\]/);
    return true;
  });
  await rm(dir, { recursive: true });
});
