import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReduceOnPlateau } from '../../src/train/scheduler.ts';

class Lr {
  learningRate = 1e-3;
  setLearningRate(lr: number) {
    this.learningRate = lr;
  }
}

test('plateau: lr x0.1 after `patience` evaluations without relative improvement, down to minLr', () => {
  const lr = new Lr();
  const s = new ReduceOnPlateau(lr, { patience: 1, threshold: 0.01, minLr: 2e-5 });
  // 1.0 best; 0.995 is not 1% better (bad 1); 0.996 bad 2 > patience -> drop; 0.9 better; 0.9 bad 1; 0.89 is 1.1% better.
  const seen = [1.0, 0.995, 0.996, 0.9, 0.9, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9].map((v) => [
    s.observe(v),
    lr.learningRate,
  ]);
  // 1e-3 -> 1e-4 -> 1e-5 clipped to 2e-5; at the floor a further plateau (evaluation 10) changes nothing.
  assert.deepEqual(
    seen.map(([r]) => r),
    [false, false, true, false, false, false, false, true, false, false, false, false],
  );
  assert.ok(Math.abs(lr.learningRate - 2e-5) < 1e-18, `${lr.learningRate}`);
  assert.equal(s.state().reductions, 2);
  assert.equal(s.best, 0.89);
  assert.throws(() => s.observe(NaN), /validation loss is NaN at evaluation 13/);
});

test('plateau: cooldown, and state round trip continues identically', () => {
  const a = new Lr();
  const s = new ReduceOnPlateau(a, { patience: 0, cooldown: 2, factor: 0.5 });
  const losses = [1, 1, 1, 1, 1, 0.5, 0.5, 0.5];
  const first = losses.slice(0, 3).map((v) => s.observe(v));
  assert.deepEqual(first, [false, true, false]); // the third falls inside the cooldown
  const b = new Lr();
  b.learningRate = a.learningRate;
  const t = new ReduceOnPlateau(b, { patience: 0, cooldown: 2, factor: 0.5 });
  t.loadState(JSON.parse(JSON.stringify(s.state())));
  const rest = losses.slice(3);
  // 1: cooldown ends; 1: plateau -> drop; 0.5: better (cooldown 2 -> 1); 0.5: cooldown ends; 0.5: plateau -> drop.
  const expected = [false, true, false, false, true];
  assert.deepEqual(
    rest.map((v) => s.observe(v)),
    expected,
  );
  assert.deepEqual(
    rest.map((v) => t.observe(v)),
    expected,
  );
  assert.equal(a.learningRate, 1e-3 / 8);
  assert.equal(b.learningRate, 1e-3 / 8);
  assert.throws(
    () => t.loadState({ best: 1, badEvals: -1, cooldownLeft: 0, evals: 0, reductions: 0 }, 'x.json'),
    /x\.json: not a plateau scheduler state/,
  );
  assert.throws(() => new ReduceOnPlateau(a, { factor: 1 }), /factor must be in \(0, 1\), got 1/);
});
