import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.ts';

test('same seed gives the same stream, another seed another', () => {
  const a = Rng.seeded(7),
    b = Rng.seeded(7),
    c = Rng.seeded(8);
  const xs = Array.from({ length: 5 }, () => a.float());
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => b.float()),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 5 }, () => c.float()),
  );
});

test('int stays within its inclusive bounds and hits both ends', () => {
  const r = Rng.seeded(1);
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const v = r.int(3, 6);
    assert.ok(v >= 3 && v <= 6);
    seen.add(v);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
});

test('derive gives independent but reproducible streams per key', () => {
  assert.equal(Rng.derive(0, 'epoch', 1).float(), Rng.derive(0, 'epoch', 1).float());
  assert.notEqual(Rng.derive(0, 'epoch', 1).float(), Rng.derive(0, 'epoch', 2).float());
});

test('shuffle is a permutation', () => {
  const xs = Array.from({ length: 20 }, (_, i) => i);
  const s = Rng.seeded(3).shuffle(xs);
  assert.deepEqual(
    [...s].sort((a, b) => a - b),
    xs,
  );
  assert.notDeepEqual(s, xs);
});
