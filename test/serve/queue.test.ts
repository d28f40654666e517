// The bounded queue in front of the model: concurrency, refusal when full, aborts while waiting / running, idle().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedQueue, JobAbortedError, QueueFullError } from '../../src/serve/queue.ts';

/** A job that finishes when its release() is called, recording when it started. */
function gated(log: string[], name: string) {
  let release!: (v: string) => void;
  const done = new Promise<string>((r) => (release = r));
  return { job: () => (log.push(`start ${name}`), done), release: () => release(name) };
}

const tick = () => new Promise((r) => setImmediate(r));

test('runs at most `concurrency` jobs, queues `maxWaiting`, refuses the next with a Retry-After estimate', async () => {
  const q = new BoundedQueue(2, 1);
  const log: string[] = [];
  const [a, b, c] = ['a', 'b', 'c'].map((n) => gated(log, n));
  const pa = q.run(a.job);
  const pb = q.run(b.job);
  const pc = q.run(c.job);
  await tick();
  assert.deepEqual(log, ['start a', 'start b']);
  assert.equal(q.running, 2);
  assert.equal(q.waiting, 1);
  assert.equal(q.full, true);
  await assert.rejects(
    q.run(async () => 'd'),
    (e: Error) => e instanceof QueueFullError && e.retryAfterS >= 1,
  );
  a.release();
  assert.equal(await pa, 'a');
  await tick();
  assert.deepEqual(log, ['start a', 'start b', 'start c']);
  assert.equal(q.running, 2);
  assert.equal(q.waiting, 0);
  b.release();
  c.release();
  assert.deepEqual(await Promise.all([pb, pc]), ['b', 'c']);
  await q.idle();
  assert.equal(q.running, 0);
});

test('a waiting job whose signal aborts leaves the queue and never runs; a failing job frees its slot', async () => {
  const q = new BoundedQueue(1, 2);
  const log: string[] = [];
  const a = gated(log, 'a');
  const pa = q.run(a.job);
  const ac = new AbortController();
  const pb = q.run(async () => (log.push('start b'), 'b'), ac.signal);
  await tick();
  assert.equal(q.waiting, 1);
  ac.abort(new Error('timeout'));
  await assert.rejects(
    pb,
    (e: Error) => e instanceof JobAbortedError && !e.started && (e.reason as Error).message === 'timeout',
  );
  assert.equal(q.waiting, 0);
  a.release();
  await pa;
  await assert.rejects(
    q.run(() => {
      throw new Error('sync throw');
    }),
    /sync throw/,
  );
  await assert.rejects(
    q.run(async () => {
      throw new Error('async throw');
    }),
    /async throw/,
  );
  assert.equal(await q.run(async () => 'still works'), 'still works');
  assert.deepEqual(log, ['start a']);
  assert.equal(q.running, 0);
});

test('a running job whose signal aborts: the caller is answered at once, the slot is held until the job ends', async () => {
  const q = new BoundedQueue(1, 0);
  const log: string[] = [];
  const a = gated(log, 'a');
  const ac = new AbortController();
  const pa = q.run(a.job, ac.signal);
  await tick();
  ac.abort();
  await assert.rejects(pa, (e: Error) => e instanceof JobAbortedError && e.started);
  assert.equal(q.running, 1, 'an onnxruntime run cannot be cut short: its slot stays taken');
  await assert.rejects(
    q.run(async () => 'x'),
    QueueFullError,
  );
  let idle = false;
  const waitIdle = q.idle().then(() => (idle = true));
  await tick();
  assert.equal(idle, false);
  a.release();
  await waitIdle;
  assert.equal(q.running, 0);
});
