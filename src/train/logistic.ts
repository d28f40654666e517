// The two log-losses of the linear probe, evaluated in float64 in JS on a problem's logits Z (row-major [rows,
// cols]): binary logistic (one column) and multinomial softmax (cols classes). Each row has a weight (its share of
// the mean; 0 leaves it out). Every function takes the logits at Z + t ZD, so a line search along a direction
// needs no new matrix product.

export type LossKind = 'binary' | 'softmax';

export interface LossTargets {
  kind: LossKind;
  cols: number;
  /** Row weights: 1 / (rows in the loss) for a row in it, 0 for a row left out. */
  weight: Float64Array;
  /** binary: 0/1 per row; softmax: the class (0..cols-1) per row, ignored where the weight is 0. */
  target: Float64Array | Int32Array;
}

export interface LossAt {
  /** Weighted log-loss. */
  f: number;
  /** Its derivative along ZD (0 without ZD). */
  d: number;
}

/** Optional outputs at the evaluated point. */
export interface LossOutputs {
  /** dLoss/dZ [rows, cols]: weight x (p - y); X^T times it is the weights' gradient. */
  residual?: Float64Array;
  /** Per column, the weighted mean of p (1 - p): the loss's mean curvature (for the preconditioner). */
  curvature?: Float64Array;
}

/** log(1 + e^z) without overflow. */
export function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** The loss at Z + t ZD and its derivative along ZD, plus the requested outputs there. */
export function lossAt(
  l: LossTargets,
  z: Float64Array,
  zd: Float64Array | null,
  t: number,
  out: LossOutputs = {},
): LossAt {
  return l.kind === 'binary' ? binaryAt(l, z, zd, t, out) : softmaxAt(l, z, zd, t, out);
}

function binaryAt(
  l: LossTargets,
  z: Float64Array,
  zd: Float64Array | null,
  t: number,
  { residual, curvature }: LossOutputs,
): LossAt {
  let f = 0;
  let d = 0;
  let curv = 0;
  for (let i = 0; i < l.weight.length; i++) {
    const w = l.weight[i];
    if (w === 0) {
      if (residual) residual[i] = 0;
      continue;
    }
    const zi = zd ? z[i] + t * zd[i] : z[i];
    // one exp per row: e = exp(-|z|) gives both softplus(z) = max(z, 0) + log1p(e) and sigmoid(z)
    const e = Math.exp(-Math.abs(zi));
    const p = zi >= 0 ? 1 / (1 + e) : e / (1 + e);
    const y = l.target[i];
    f += w * ((zi > 0 ? zi : 0) + Math.log1p(e) - y * zi);
    const r = w * (p - y);
    if (zd) d += r * zd[i];
    if (residual) residual[i] = r;
    curv += w * p * (1 - p);
  }
  if (curvature) curvature[0] = curv;
  return { f, d };
}

function softmaxAt(
  l: LossTargets,
  z: Float64Array,
  zd: Float64Array | null,
  t: number,
  { residual, curvature }: LossOutputs,
): LossAt {
  const k = l.cols;
  const row = new Float64Array(k);
  let f = 0;
  let d = 0;
  curvature?.fill(0);
  for (let i = 0; i < l.weight.length; i++) {
    const w = l.weight[i];
    const at = i * k;
    if (w === 0) {
      if (residual) residual.fill(0, at, at + k);
      continue;
    }
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      row[c] = zd ? z[at + c] + t * zd[at + c] : z[at + c];
      if (row[c] > max) max = row[c];
    }
    const y = l.target[i];
    const zy = row[y] - max;
    let sum = 0;
    for (let c = 0; c < k; c++) sum += row[c] = Math.exp(row[c] - max);
    // -log p_y = log(sum exp(z - max)) - (z_y - max)
    f += w * (Math.log(sum) - zy);
    for (let c = 0; c < k; c++) {
      const p = row[c] / sum;
      const r = w * (p - (c === y ? 1 : 0));
      if (zd) d += r * zd[at + c];
      if (residual) residual[at + c] = r;
      if (curvature) curvature[c] += w * p * (1 - p);
    }
  }
  return { f, d };
}

/** Softmax of each row of logits [rows, cols], in place. */
export function softmaxRows(z: Float64Array, cols: number): Float64Array {
  for (let at = 0; at < z.length; at += cols) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, z[at + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += z[at + c] = Math.exp(z[at + c] - max);
    for (let c = 0; c < cols; c++) z[at + c] /= sum;
  }
  return z;
}
