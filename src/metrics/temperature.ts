/**
 * Temperature scaling (Guo et al., ICML 2017): probabilities sigmoid(z / T) or softmax(z / T) with one T > 0 fitted
 * by minimising the negative log-likelihood on held-out data. T > 1 softens over-confident scores; the ranking of
 * a label's scores (AP, AUC) and the top-1 location never change.
 *
 * The model is scored with test-time augmentation (the mean of the views' probabilities, train/tta.ts), so the NLL
 * here is that of the view-averaged probability, with T applied to each view's logits: T is fitted for exactly
 * what is later reported.
 *
 * Logit layout: [images * views * classes], image i's view v at (i * views + v) * classes (train/tta.ts).
 */

/** The search range of T. */
export const TEMPERATURE_RANGE = [0.05, 20] as const;

export interface TemperatureFit {
  temperature: number;
  /** Mean NLL at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
}

export interface ViewLogits {
  data: Float32Array;
  images: number;
  views: number;
  classes: number;
}

const EPS = 1e-12;

/** Minimises nll(T) over TEMPERATURE_RANGE: a grid in log T, then golden-section search around the best point. */
export function fitTemperature(nll: (t: number) => number): TemperatureFit {
  const [lo, hi] = TEMPERATURE_RANGE.map(Math.log);
  const steps = 40;
  const grid = Array.from({ length: steps + 1 }, (_, k) => lo + ((hi - lo) * k) / steps);
  const values = grid.map((u) => nll(Math.exp(u)));
  let k = 0;
  for (let j = 1; j < values.length; j++) if (values[j] < values[k]) k = j;
  let a = grid[Math.max(0, k - 1)];
  let b = grid[Math.min(steps, k + 1)];
  const phi = (Math.sqrt(5) - 1) / 2;
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = nll(Math.exp(c));
  let fd = nll(Math.exp(d));
  for (let it = 0; it < 60; it++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = nll(Math.exp(c));
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = nll(Math.exp(d));
    }
  }
  let t = Math.exp((a + b) / 2);
  let after = nll(t);
  if (values[k] < after) {
    t = Math.exp(grid[k]);
    after = values[k];
  }
  return { temperature: t, nllBefore: nll(1), nllAfter: after };
}

/**
 * Mean binary NLL over the images and `columns` of a sigmoid head at temperature T, each image's probability the
 * mean over the views `pick`; `relevant(i, c)` is the truth.
 */
export function binaryNll(
  z: ViewLogits,
  pick: readonly number[],
  columns: readonly number[],
  relevant: (i: number, c: number) => boolean,
): (t: number) => number {
  return (t) => {
    let sum = 0;
    for (let i = 0; i < z.images; i++) {
      for (const c of columns) {
        let p = 0;
        for (const v of pick) p += 1 / (1 + Math.exp(-z.data[(i * z.views + v) * z.classes + c] / t));
        p = Math.min(1 - EPS, Math.max(EPS, p / pick.length));
        sum -= relevant(i, c) ? Math.log(p) : Math.log(1 - p);
      }
    }
    return sum / (z.images * columns.length);
  };
}

/** Mean NLL of the true class `truth[i]` of a softmax head at temperature T, view-averaged over `pick`. */
export function softmaxNll(z: ViewLogits, pick: readonly number[], truth: readonly number[]): (t: number) => number {
  return (t) => {
    let sum = 0;
    for (let i = 0; i < z.images; i++) {
      let p = 0;
      for (const v of pick) p += softmaxAt(z.data, (i * z.views + v) * z.classes, z.classes, t)[truth[i]];
      sum -= Math.log(Math.max(EPS, p / pick.length));
    }
    return sum / z.images;
  };
}

/** softmax(row / t) of the `classes` logits at `at`, in float64. */
export function softmaxAt(data: ArrayLike<number>, at: number, classes: number, t: number): Float64Array {
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, data[at + c] / t);
  const out = new Float64Array(classes);
  let total = 0;
  for (let c = 0; c < classes; c++) total += out[c] = Math.exp(data[at + c] / t - max);
  for (let c = 0; c < classes; c++) out[c] /= total;
  return out;
}

/**
 * Per image, the view-averaged probabilities at the given temperatures (sigmoid: one per column; softmax: one).
 * The scores a calibrated (or, with temperatures 1, an uncalibrated) model reports.
 */
export function viewAveragedProbs(
  z: ViewLogits,
  pick: readonly number[],
  activation: 'sigmoid' | 'softmax',
  temperature: number | readonly number[],
): Float64Array[] {
  const tOf = (c: number) => (typeof temperature === 'number' ? temperature : temperature[c]);
  const out: Float64Array[] = [];
  for (let i = 0; i < z.images; i++) {
    const row = new Float64Array(z.classes);
    for (const v of pick) {
      const at = (i * z.views + v) * z.classes;
      if (activation === 'softmax') {
        const p = softmaxAt(z.data, at, z.classes, tOf(0));
        for (let c = 0; c < z.classes; c++) row[c] += p[c];
      } else {
        for (let c = 0; c < z.classes; c++) row[c] += 1 / (1 + Math.exp(-z.data[at + c] / tOf(c)));
      }
    }
    for (let c = 0; c < z.classes; c++) row[c] /= pick.length;
    out.push(row);
  }
  return out;
}
