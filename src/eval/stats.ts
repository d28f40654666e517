import tQuantileOf from '@stdlib/stats-base-dists-t-quantile';
import { DermtlError } from '../util/errors.ts';

/**
 * Summaries over cross-validation folds: mean, sample standard deviation, and the paired
 * difference of two methods evaluated on the same folds (e.g. MTL mAP - lesion-only mAP) with a
 * t confidence interval (df = k - 1).
 */

export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1 in the denominator). */
  std: number;
}

export function mean(xs: readonly number[]): number {
  checkValues(xs, 1, 'mean');
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation; needs at least 2 values. */
export function sampleStd(xs: readonly number[]): number {
  checkValues(xs, 2, 'standard deviation');
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function summarize(xs: readonly number[]): Summary {
  return { n: xs.length, mean: mean(xs), std: sampleStd(xs) };
}

/** Quantile of Student's t distribution: P(T <= x) = p with `df` degrees of freedom. */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new DermtlError(`t quantile: probability must be in (0, 1), got ${p}`);
  if (!(df > 0) || !Number.isFinite(df))
    throw new DermtlError(`t quantile: degrees of freedom must be a positive number, got ${df}`);
  return tQuantileOf(p, df);
}

export interface PairedDifference {
  /** Number of pairs (folds). */
  k: number;
  /** a[i] - b[i]. */
  differences: number[];
  /** Mean difference. */
  mean: number;
  /** Sample std of the differences. */
  std: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** t quantile used: t_{(1+level)/2, k-1}. */
  t: number;
  /** Half width of the interval: t * std / sqrt(k). */
  halfWidth: number;
  /** [mean - halfWidth, mean + halfWidth]. */
  ci: [number, number];
}

/**
 * Paired difference a - b over matching folds with a two-sided t confidence interval. The pairing
 * removes the fold-to-fold variation both methods share, which is why it is narrower than
 * comparing two independent means.
 */
export function pairedDifference(a: readonly number[], b: readonly number[], level = 0.95): PairedDifference {
  if (a.length !== b.length)
    throw new DermtlError(`paired difference: ${a.length} values against ${b.length}; each fold needs both`);
  if (!(level > 0 && level < 1))
    throw new DermtlError(`paired difference: confidence level must be in (0, 1), got ${level}`);
  checkValues(a, 2, 'paired difference');
  checkValues(b, 2, 'paired difference');
  const differences = a.map((x, i) => x - b[i]);
  const k = differences.length;
  const { mean: m, std } = summarize(differences);
  const t = tQuantile((1 + level) / 2, k - 1);
  const halfWidth = (t * std) / Math.sqrt(k);
  return { k, differences, mean: m, std, level, t, halfWidth, ci: [m - halfWidth, m + halfWidth] };
}

function checkValues(xs: readonly number[], min: number, what: string): void {
  if (xs.length < min)
    throw new DermtlError(`${what}: needs at least ${min} value${min === 1 ? '' : 's'}, got ${xs.length}`);
  const bad = xs.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new DermtlError(`${what}: value ${bad} is ${xs[bad]}, not a finite number`);
}
