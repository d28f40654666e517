/**
 * How far probabilities can be believed: reliability bins, expected calibration error and Brier score.
 *
 * - Bins: 15 of equal width on [0, 1] (Guo et al., ICML 2017); a probability of exactly 1 falls in the last bin.
 * - ECE = sum over bins of (bin count / n) * |mean confidence - observed frequency| (empty bins add 0).
 * - Lesion head (multi-label, sigmoid): every (image, label) pair is one binary prediction (the pooled,
 *   "marginal" calibration of Kull et al. / Nixon et al.); Brier = mean over pairs of (p - y)^2.
 * - Location head (single-label, softmax): confidence = the top probability, correct = the true location strictly
 *   outscores every other (ties count against, as top-1); Brier = mean over images of sum over locations of
 *   (p_c - y_c)^2 (Brier's original multi-class score, 0..2).
 * Both need probabilities: scores outside [0, 1] (e.g. logits) give null.
 */
export const ECE_BINS = 15;

export interface ReliabilityBin {
  /** [lo, hi) (the last bin includes 1). */
  lo: number;
  hi: number;
  count: number;
  /** Mean predicted probability / confidence in the bin; null when empty. */
  confidence: number | null;
  /** Observed frequency of the event (lesion present / top-1 correct); null when empty. */
  accuracy: number | null;
}

export interface Calibration {
  /** Expected calibration error over ECE_BINS equal-width bins. */
  ece: number;
  /** Largest |confidence - accuracy| over non-empty bins (maximum calibration error). */
  mce: number;
  brier: number;
  /** Predictions binned (pairs for lesions, images for location). */
  n: number;
  bins: ReliabilityBin[];
}

/** Reliability bins and ECE/MCE of `confidence[i]` against the 0/1 outcomes `hit[i]` (Brier left to the caller). */
export function reliability(
  confidence: ArrayLike<number>,
  hit: ArrayLike<boolean>,
  bins = ECE_BINS,
): Omit<Calibration, 'brier'> {
  const n = confidence.length;
  if (hit.length !== n) throw new Error(`reliability: ${n} confidences but ${hit.length} outcomes`);
  const sum = new Float64Array(bins);
  const hits = new Float64Array(bins);
  const count = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const p = confidence[i];
    if (!(p >= 0 && p <= 1)) throw new Error(`reliability: confidence ${i} is ${p}, not a probability`);
    const b = Math.min(bins - 1, Math.floor(p * bins));
    sum[b] += p;
    count[b]++;
    if (hit[i]) hits[b]++;
  }
  let ece = 0;
  let mce = 0;
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const c = count[b];
    const conf = c ? sum[b] / c : null;
    const acc = c ? hits[b] / c : null;
    if (c) {
      const gap = Math.abs(conf! - acc!);
      ece += (c / n) * gap;
      mce = Math.max(mce, gap);
    }
    out.push({ lo: b / bins, hi: (b + 1) / bins, count: c, confidence: conf, accuracy: acc });
  }
  return { ece: n ? ece : 0, mce, n, bins: out };
}

/** True when every score is a probability (so calibration measures apply). */
export function areProbabilities(rows: readonly ArrayLike<number>[]): boolean {
  return rows.every((row) => Array.prototype.every.call(row, (p: number) => p >= 0 && p <= 1));
}

/** Pooled binary calibration of a multi-label head; null when the scores are not probabilities or there are none. */
export function lesionCalibration(
  labels: readonly string[],
  truth: readonly (readonly string[])[],
  scores: readonly ArrayLike<number>[],
): Calibration | null {
  if (!labels.length || !scores.length || !areProbabilities(scores)) return null;
  const conf: number[] = [];
  const hit: boolean[] = [];
  let brier = 0;
  scores.forEach((row, i) => {
    const has = new Set(truth[i]);
    labels.forEach((label, c) => {
      const y = has.has(label);
      conf.push(row[c]);
      hit.push(y);
      brier += (row[c] - (y ? 1 : 0)) ** 2;
    });
  });
  return { ...reliability(conf, hit), brier: brier / conf.length };
}

/** Top-label calibration and multi-class Brier of a single-label head; `truth[i]` is the true class index. */
export function locationCalibration(
  truth: readonly number[],
  scores: readonly ArrayLike<number>[],
): Calibration | null {
  if (!scores.length || !areProbabilities(scores)) return null;
  let brier = 0;
  const conf = scores.map((row, i) => {
    let max = -Infinity;
    for (let c = 0; c < row.length; c++) {
      max = Math.max(max, row[c]);
      brier += (row[c] - (c === truth[i] ? 1 : 0)) ** 2;
    }
    return max;
  });
  // correct: the true class strictly outscores every other one (metrics.ts rankOfTrue === 1)
  const hit = scores.map((row, i) =>
    Array.prototype.every.call(row, (p: number, c: number) => c === truth[i] || p < row[truth[i]]),
  );
  return { ...reliability(conf, hit), brier: brier / scores.length };
}
