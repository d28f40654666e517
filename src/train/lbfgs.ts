// The two pieces of a limited-memory BFGS minimiser that do not depend on the objective: the curvature history
// with its two-loop recursion (a search direction from the last m steps), and a line search for convex
// one-dimensional functions. The linear probe (linearProbe.ts) runs one of each per independent problem.

/** The last `memory` (step, gradient change) pairs of one problem and the quasi-Newton direction they imply. */
export class LbfgsHistory {
  private readonly s: Float64Array[] = [];
  private readonly y: Float64Array[] = [];
  private readonly rho: number[] = [];

  constructor(readonly memory = 10) {}

  get size(): number {
    return this.s.length;
  }

  /**
   * Adds a step s = x_new - x_old with its gradient change y = g_new - g_old. A pair without clearly positive
   * curvature (s.y <= 0, e.g. from rounding near the optimum) would make the inverse-Hessian estimate
   * indefinite, so it is dropped; returns whether it was kept.
   */
  push(s: Float64Array, y: Float64Array): boolean {
    const sy = dot(s, y);
    if (!(sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y)))) return false;
    if (this.s.length === this.memory) {
      this.s.shift();
      this.y.shift();
      this.rho.shift();
    }
    this.s.push(s);
    this.y.push(y);
    this.rho.push(1 / sy);
    return true;
  }

  clear(): void {
    this.s.length = 0;
    this.y.length = 0;
    this.rho.length = 0;
  }

  /** -H g by the two-loop recursion, H0 = (s.y / y.y) I from the newest pair; plain -g without history. */
  direction(g: Float64Array): Float64Array {
    const first = this.firstLoop(g);
    return this.secondLoop(this.scaleLikeNewestPair(first.q), first.alpha);
  }

  /** q times the usual H0 = (s.y / y.y) I of the newest pair (1 without history), in place. */
  scaleLikeNewestPair(q: Float64Array): Float64Array {
    const k = this.s.length;
    const gamma = k > 0 ? 1 / (this.rho[k - 1] * dot(this.y[k - 1], this.y[k - 1])) : 1;
    for (let j = 0; j < q.length; j++) q[j] *= gamma;
    return q;
  }

  /**
   * The two-loop recursion split at H0, so a caller can apply its own H0 (a preconditioner) to q between the
   * loops, batched over many problems: direction = secondLoop(H0 firstLoop(g).q, alpha).
   */
  firstLoop(g: Float64Array): { q: Float64Array; alpha: Float64Array } {
    const q = Float64Array.from(g);
    const k = this.s.length;
    const alpha = new Float64Array(k);
    for (let i = k - 1; i >= 0; i--) {
      alpha[i] = this.rho[i] * dot(this.s[i], q);
      axpy(-alpha[i], this.y[i], q);
    }
    return { q, alpha };
  }

  /** -(the rest of the recursion) from r = H0 q; returns the search direction (r is reused). */
  secondLoop(r: Float64Array, alpha: Float64Array): Float64Array {
    for (let i = 0; i < this.s.length; i++) {
      const beta = this.rho[i] * dot(this.y[i], r);
      axpy(alpha[i] - beta, this.s[i], r);
    }
    for (let j = 0; j < r.length; j++) r[j] = -r[j];
    return r;
  }
}

/** phi(t): value and derivative of the objective at x + t d. */
export type LineFunction = (t: number) => { f: number; d: number };

export interface LineStep {
  t: number;
  f: number;
  /** phi'(t) */
  d: number;
  /** Evaluations of phi it took. */
  evaluations: number;
}

/**
 * A step along a descent direction of a CONVEX function that meets the strong Wolfe conditions
 * (f <= f0 + c1 t d0 and |phi'(t)| <= c2 |d0|): expand until phi' turns positive, then safeguarded secant steps
 * on phi' inside the bracket (exact for a quadratic). Evaluating phi is cheap for a linear model (the product
 * X d is computed once per direction), so a fairly exact search (c2 = 0.1) pays for itself in fewer matrix
 * products. Returns null when no evaluated point decreases f (the direction is not a descent direction, or f is
 * flat to rounding): the problem has converged as far as this precision allows.
 */
export function lineSearch(
  phi: LineFunction,
  f0: number,
  d0: number,
  opts: { t0?: number; c1?: number; c2?: number; maxEvaluations?: number } = {},
): LineStep | null {
  const c1 = opts.c1 ?? 1e-4;
  const c2 = opts.c2 ?? 0.1;
  const max = opts.maxEvaluations ?? 40;
  if (!(d0 < 0)) return null;
  let lo = { t: 0, f: f0, d: d0 };
  let hi: { t: number; f: number; d: number } | null = null;
  let best: LineStep | null = null;
  let t = opts.t0 ?? 1;
  for (let n = 1; n <= max; n++) {
    const { f, d } = phi(t);
    const armijo = f <= f0 + c1 * t * d0;
    if (Number.isFinite(f) && f < f0 && (!best || f < best.f)) best = { t, f, d, evaluations: n };
    if (armijo && Math.abs(d) <= c2 * Math.abs(d0)) return { t, f, d, evaluations: n };
    if (!armijo || !Number.isFinite(f) || d >= 0) hi = { t, f, d };
    else lo = { t, f, d };
    t = hi ? nextInBracket(lo, hi) : 4 * t;
    if (hi && hi.t - lo.t <= 1e-12 * hi.t) break;
  }
  return best;
}

/** Secant on phi' between lo (phi' < 0) and hi, kept 10% away from either end; bisection when phi'(hi) is unusable. */
function nextInBracket(lo: { t: number; d: number }, hi: { t: number; d: number }): number {
  const width = hi.t - lo.t;
  const secant = Number.isFinite(hi.d) && hi.d > lo.d ? lo.t - (lo.d * width) / (hi.d - lo.d) : lo.t + width / 2;
  return Math.min(hi.t - 0.1 * width, Math.max(lo.t + 0.1 * width, secant));
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** y += a x */
export function axpy(a: number, x: ArrayLike<number>, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] += a * x[i];
}
