/**
 * A fixed set of loader worker threads, one batch each at a time. A worker that crashes (a bug, not a bad image:
 * bad images come back as error replies) fails the whole pool, so nothing waits forever.
 */
import { Worker } from 'node:worker_threads';
import { DermtlError } from '../util/errors.ts';
import type { BatchTask, RenderedBatch, WorkerConfig, WorkerReply } from './batch.ts';

interface Job {
  task: BatchTask;
  resolve(r: RenderedBatch): void;
  reject(e: Error): void;
}

// From the sources (tsx), the worker starts at loader-worker.mjs, which registers tsx for the thread; built (dist/),
// at the compiled loader-worker.js itself.
const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './loader-worker.mjs' : './loader-worker.js', import.meta.url);

export class WorkerPool {
  private idle: Worker[] = [];
  private readonly running = new Map<Worker, Job>();
  private queue: Job[] = [];
  private all: Worker[] = [];
  /** Set once a worker died or the pool was closed; every later run() rejects with it. */
  failure: Error | null = null;

  constructor(count: number, config: WorkerConfig) {
    for (let i = 0; i < count; i++) this.all.push(this.spawn(config));
    this.idle = [...this.all];
  }

  run(task: BatchTask): Promise<RenderedBatch> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.pump();
    });
  }

  /** Drops queued (not yet started) tasks, e.g. when the consumer stopped iterating. */
  cancelQueued(ids: ReadonlySet<number>): void {
    const dropped = this.queue.filter((j) => ids.has(j.task.id));
    this.queue = this.queue.filter((j) => !ids.has(j.task.id));
    for (const j of dropped) j.reject(new Error('cancelled'));
  }

  async close(): Promise<void> {
    this.fail(new Error('the image loader was closed'));
    await Promise.all(this.all.map((w) => w.terminate()));
  }

  private spawn(config: WorkerConfig): Worker {
    // No inherited flags: the parent's may be meaningless in a worker (--input-type, -e, test flags) and a second
    // tsx registration doubles start-up; the entry registers tsx itself.
    const w = new Worker(ENTRY, { workerData: config, execArgv: [] });
    w.unref(); // an idle loader must not keep the process alive; ref'd while it has work
    w.on('message', (reply: WorkerReply) => this.onReply(w, reply));
    w.on('error', (e) => this.fail(new Error(`image loader worker failed: ${e.message}`)));
    w.on('exit', (code) => this.fail(new Error(`image loader worker exited unexpectedly (code ${code})`)));
    return w;
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.running.set(w, job);
      w.ref();
      w.postMessage(job.task);
    }
  }

  private onReply(w: Worker, reply: WorkerReply): void {
    const job = this.running.get(w);
    if (!job) return;
    this.running.delete(w);
    w.unref();
    this.idle.push(w);
    if (reply.ok) job.resolve({ data: reply.data, params: reply.params });
    else job.reject(reply.userError ? new DermtlError(reply.message) : new Error(reply.message));
    this.pump();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const job of [...this.running.values(), ...this.queue]) job.reject(e);
    this.running.clear();
    this.queue = [];
    this.idle = [];
    for (const w of this.all) void w.terminate();
  }
}
