/**
 * The bounded queue in front of the model: at most `concurrency` jobs run, at most `maxWaiting` wait; a job
 * beyond that is refused at once (the server answers 503 + Retry-After) rather than piling up memory.
 * A waiting job whose signal aborts leaves the queue; a running one keeps its slot until it really ends
 * (an onnxruntime run cannot be stopped), but its caller is answered at once.
 */
export class QueueFullError extends Error {
  constructor(readonly retryAfterS: number) {
    super('the server is busy (prediction queue full)');
  }
}

/** The job's signal aborted: while it was still waiting (`started` false) or while it ran. */
export class JobAbortedError extends Error {
  constructor(
    readonly started: boolean,
    readonly reason: unknown,
  ) {
    super(started ? 'aborted while running' : 'aborted while waiting in the queue');
  }
}

interface Waiter {
  start: () => void;
  cancel: (reason: unknown) => void;
}

export class BoundedQueue {
  private active = 0;
  private readonly waiters: Waiter[] = [];
  private idleResolvers: (() => void)[] = [];
  /** Moving average of a job's run time, for Retry-After. */
  private meanMs = 0;

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
  ) {
    if (!(Number.isInteger(concurrency) && concurrency >= 1))
      throw new Error(`concurrency must be >= 1, got ${concurrency}`);
    if (!(Number.isInteger(maxWaiting) && maxWaiting >= 0))
      throw new Error(`queue size must be >= 0, got ${maxWaiting}`);
  }

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** True when a new job would be refused. */
  get full(): boolean {
    return this.active >= this.concurrency && this.waiters.length >= this.maxWaiting;
  }

  /** Seconds after which a refused client may find room: the estimated time to drain what is queued now. */
  retryAfterSeconds(): number {
    const ahead = this.active + this.waiters.length;
    return Math.max(1, Math.ceil((ahead * (this.meanMs || 1000)) / this.concurrency / 1000));
  }

  /** Runs `job` when a slot is free. Rejects with QueueFullError when full, JobAbortedError when `signal` aborts. */
  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new JobAbortedError(false, signal.reason);
    if (this.full) throw new QueueFullError(this.retryAfterSeconds());
    if (this.active >= this.concurrency) await this.wait(signal);
    else this.active++;
    const t0 = performance.now();
    // An async wrapper so a job that throws synchronously still frees its slot.
    const work = (async () => job())().finally(() => this.release(performance.now() - t0));
    if (!signal) return work;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(new JobAbortedError(true, signal.reason));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Resolves when nothing runs or waits (e.g. before closing the model). */
  idle(): Promise<void> {
    if (this.active === 0 && this.waiters.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleResolvers.push(resolve));
  }

  private wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => waiter.cancel(signal!.reason);
      const waiter: Waiter = {
        // The slot is handed over by release(): active stays counted.
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        cancel: (reason) => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new JobAbortedError(false, reason));
          this.checkIdle();
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(ms: number): void {
    this.meanMs = this.meanMs ? 0.8 * this.meanMs + 0.2 * ms : ms;
    const next = this.waiters.shift();
    if (next) next.start();
    else this.active--;
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.active === 0 && this.waiters.length === 0) {
      const rs = this.idleResolvers;
      this.idleResolvers = [];
      for (const r of rs) r();
    }
  }
}
