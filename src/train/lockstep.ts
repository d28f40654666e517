// The linear probe's solver: many independent L2-regularised logistic problems on the same features X, each with
// its own L-BFGS history and line search, advanced in lockstep so one iteration of all of them costs two matrix
// products on onnxruntime (rowMatrix.ts): X D for the new directions (after which every line-search trial is free,
// Z + t X D, evaluated in float64 in JS) and X^T R for the gradients. Directions are preconditioned with the
// features' principal subspace (preconditioner.ts), all problems' columns in one batch.
import { LbfgsHistory, dot, lineSearch } from './lbfgs.ts';
import { lossAt, type LossTargets } from './logistic.ts';
import type { Preconditioner } from './preconditioner.ts';
import type { RowMatrix } from './rowMatrix.ts';

/** Z is updated by Z += t X D; it is recomputed from the weights this often so float32 rounding cannot pile up. */
const REFRESH_EVERY = 50;

/** One independent problem: mean loss(X W + b) + lambda/2 ||W||^2 over a block of `cols` weight columns. */
export class Problem {
  /** [W (dim x cols, row-major), b (cols)] */
  readonly params: Float64Array;
  readonly grad: Float64Array;
  readonly z: Float64Array;
  readonly zd: Float64Array;
  readonly residual: Float64Array;
  readonly curvature: Float64Array;
  readonly history: LbfgsHistory;
  dir: Float64Array;
  f = 0;
  col = 0;
  iterations = 0;
  done = false;
  converged = false;
  needsDirection = true;
  step: Float64Array | null = null;
  /** The t of the last line-search trial: residual and curvature hold that point's values. */
  private trialT = Number.NaN;

  constructor(
    readonly name: string,
    readonly loss: LossTargets,
    readonly lambda: number,
    readonly dim: number,
    rows: number,
    memory: number,
  ) {
    const n = (dim + 1) * loss.cols;
    this.params = new Float64Array(n);
    this.grad = new Float64Array(n);
    this.dir = new Float64Array(n);
    this.z = new Float64Array(rows * loss.cols);
    this.zd = new Float64Array(rows * loss.cols);
    this.residual = new Float64Array(rows * loss.cols);
    this.curvature = new Float64Array(loss.cols);
    this.history = new LbfgsHistory(memory);
  }

  get cols(): number {
    return this.loss.cols;
  }

  get w(): Float64Array {
    return this.params.subarray(0, this.dim * this.cols);
  }

  get b(): Float64Array {
    return this.params.subarray(this.dim * this.cols);
  }

  /** The objective along the direction at W + t D: data loss at Z + t ZD plus the penalty. */
  phi(t: number): { f: number; d: number } {
    const m = this.dim * this.cols;
    let wd = 0;
    let dd = 0;
    let ww = 0;
    for (let j = 0; j < m; j++) {
      wd += this.params[j] * this.dir[j];
      dd += this.dir[j] * this.dir[j];
      ww += this.params[j] * this.params[j];
    }
    const data = lossAt(this.loss, this.z, this.zd, t, { residual: this.residual, curvature: this.curvature });
    this.trialT = t;
    return { f: data.f + (this.lambda / 2) * (ww + 2 * t * wd + t * t * dd), d: data.d + this.lambda * (wd + t * dd) };
  }

  /** Value, residual and curvature at the current Z (after a refresh). */
  evaluate(): void {
    let ww = 0;
    const w = this.w;
    for (let j = 0; j < w.length; j++) ww += w[j] * w[j];
    this.f =
      lossAt(this.loss, this.z, null, 0, { residual: this.residual, curvature: this.curvature }).f +
      (this.lambda / 2) * ww;
    this.trialT = Number.NaN;
  }

  /** Moves to W + t D (Z + t ZD) with objective f there. */
  moveTo(t: number, f: number): void {
    const step = this.dir.map((v) => v * t);
    for (let j = 0; j < this.params.length; j++) this.params[j] += step[j];
    for (let i = 0; i < this.z.length; i++) this.z[i] += t * this.zd[i];
    this.step = step;
    // the accepted point is normally the last trial, whose residual and curvature are already in place
    if (t === this.trialT) this.f = f;
    else this.evaluate();
  }

  /** Gradient from X^T R (g [dim, C], this problem's columns) plus the penalty; the bias gradient is sum R. */
  setGradient(g: Float32Array, C: number): void {
    const k = this.cols;
    for (let j = 0; j < this.dim; j++) {
      for (let c = 0; c < k; c++) this.grad[j * k + c] = g[j * C + this.col + c] + this.lambda * this.params[j * k + c];
    }
    const rows = this.z.length / k;
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let i = 0; i < rows; i++) s += this.residual[i * k + c];
      this.grad[this.dim * k + c] = s;
    }
  }
}

export class Lockstep {
  iterations = 0;
  products = 0;
  productSeconds = 0;
  private readonly C: number;

  constructor(
    private readonly x: RowMatrix,
    private readonly problems: Problem[],
    private readonly preconditioner: Preconditioner | null,
  ) {
    let col = 0;
    for (const p of problems) {
      p.col = col;
      col += p.cols;
    }
    this.C = col;
  }

  /**
   * Runs until every problem meets the gradient tolerance (max |g| <= tolerance) or can no longer decrease its
   * objective along steepest descent (converged to float precision), or maxIterations have run.
   */
  async run(tolerance: number, maxIterations: number): Promise<void> {
    if (this.problems.length === 0) return;
    await this.refreshZ(this.problems);
    await this.gradients(this.problems);
    for (;;) {
      await this.directions(
        this.problems.filter((p) => !p.done && p.needsDirection),
        tolerance,
      );
      const active = this.problems.filter((p) => !p.done);
      if (active.length === 0 || this.iterations >= maxIterations) return;
      this.iterations++;
      await this.directionProducts(active);
      const moved = active.filter((p) => this.lineStep(p));
      if (moved.length === 0) continue;
      if (this.iterations % REFRESH_EVERY === 0) await this.refreshZ(moved);
      const before = moved.map((p) => Float64Array.from(p.grad));
      await this.gradients(moved);
      moved.forEach((p, i) => {
        p.iterations++;
        p.history.push(
          p.step!,
          p.grad.map((g, j) => g - before[i][j]),
        );
        p.needsDirection = true;
      });
    }
  }

  /** New search directions: the two-loop recursion of each problem around one batched H0 (the preconditioner). */
  private async directions(ps: Problem[], tolerance: number): Promise<void> {
    const open = ps.filter((p) => {
      p.needsDirection = false;
      if (maxAbs(p.grad) > tolerance) return true;
      p.done = true;
      p.converged = true;
      return false;
    });
    await this.setDirections(open);
    // a direction that does not descend (stale curvature pairs after rounding): restart from H0 alone
    const stale = open.filter((p) => !(dot(p.dir, p.grad) < 0));
    for (const p of stale) p.history.clear();
    await this.setDirections(stale);
    for (const p of stale) if (!(dot(p.dir, p.grad) < 0)) p.dir = p.grad.map((g) => -g);
  }

  private async setDirections(ps: Problem[]): Promise<void> {
    if (ps.length === 0) return;
    const first = ps.map((p) => p.history.firstLoop(p.grad));
    const r = this.preconditioner
      ? await this.preconditioner.apply(
          ps.map((p, i) => ({ q: first[i].q, cols: p.cols, curvature: p.curvature, lambda: p.lambda })),
        )
      : ps.map((p, i) => p.history.scaleLikeNewestPair(first[i].q));
    ps.forEach((p, i) => (p.dir = p.history.secondLoop(r[i], first[i].alpha)));
  }

  /** Z = X W + b for these problems (one product unless every W is 0), and their values and residuals there. */
  private async refreshZ(ps: Problem[]): Promise<void> {
    const rows = this.x.rows;
    const xw = ps.some((p) => p.w.some((v) => v !== 0)) ? await this.product(ps, (p) => p.w) : null;
    for (const p of ps) {
      const k = p.cols;
      const b = p.b;
      for (let i = 0; i < rows; i++) {
        for (let c = 0; c < k; c++) p.z[i * k + c] = (xw ? xw[i * this.C + p.col + c] : 0) + b[c];
      }
      p.evaluate();
    }
  }

  /** ZD = X D + d_b of each problem's direction. */
  private async directionProducts(ps: Problem[]): Promise<void> {
    const xd = await this.product(ps, (p) => p.dir);
    const rows = this.x.rows;
    for (const p of ps) {
      const k = p.cols;
      const db = p.dir.subarray(p.dim * k);
      for (let i = 0; i < rows; i++) {
        for (let c = 0; c < k; c++) p.zd[i * k + c] = xd[i * this.C + p.col + c] + db[c];
      }
    }
  }

  /** X M where M holds each problem's [dim, cols] block of `of(p)` (zeros for the other problems). */
  private async product(ps: Problem[], of: (p: Problem) => Float64Array): Promise<Float32Array> {
    const dim = this.x.dim;
    const m = new Float32Array(dim * this.C);
    for (const p of ps) {
      const v = of(p);
      const k = p.cols;
      for (let j = 0; j < dim; j++) for (let c = 0; c < k; c++) m[j * this.C + p.col + c] = v[j * k + c];
    }
    return this.timed(() => this.x.times(m, this.C));
  }

  /** Gradients at the problems' current Z: one X^T R for all of them. */
  private async gradients(ps: Problem[]): Promise<void> {
    const rows = this.x.rows;
    const r = new Float32Array(rows * this.C);
    for (const p of ps) {
      const k = p.cols;
      for (let i = 0; i < rows; i++) for (let c = 0; c < k; c++) r[i * this.C + p.col + c] = p.residual[i * k + c];
    }
    const g = await this.timed(() => this.x.transposeTimes(r, this.C));
    for (const p of ps) p.setGradient(g, this.C);
  }

  private async timed(run: () => Promise<Float32Array>): Promise<Float32Array> {
    const t0 = performance.now();
    this.products++;
    const out = await run();
    this.productSeconds += (performance.now() - t0) / 1000;
    return out;
  }

  /** Line search along the problem's direction: moves it, or asks for a fresh direction, or marks it converged. */
  private lineStep(p: Problem): boolean {
    const s = lineSearch((t) => p.phi(t), p.f, dot(p.grad, p.dir));
    if (s) {
      p.moveTo(s.t, s.f);
      return true;
    }
    if (p.history.size > 0) {
      // a poor quasi-Newton direction: retry from H0 alone before giving up
      p.history.clear();
      p.needsDirection = true;
      p.evaluate(); // the failed trials overwrote the residual and curvature
      return false;
    }
    // no decrease even along the preconditioned gradient: converged as far as float precision allows
    p.evaluate();
    p.done = true;
    p.converged = true;
    return false;
  }
}

export function maxAbs(v: Float64Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}
