// The linear probe's preconditioner: an approximate inverse Hessian H0 for L-BFGS. The Hessian of a logistic
// problem on standardised features X is X^T D X / n + lambda I with D the per-row curvature; taking D as its mean c
// (per column) gives c S + lambda I with S = X^T X / n, and with S's top-k eigenpairs (V, s) from spectrum.ts
//   H0 = V diag(1 / (c s_a + lambda)) V^T + (I - V V^T) / (c tail + lambda)     (tail = s_k, the smallest kept)
// which removes the strong feature correlations that slow plain L-BFGS (tens of times fewer iterations on the
// derm7pt features). The bias is decoupled from standardised features (zero mean): H0 = 1 / c there.
// Applied to all problems' columns at once with two small products on onnxruntime (V^T Q, then V Y).
import { OrtRowMatrix, type RowMatrix } from './rowMatrix.ts';
import { principalSubspace } from './spectrum.ts';

/** One problem's vector to precondition: [dim * cols weights (row-major), cols biases]. */
export interface PreconditionBlock {
  q: Float64Array;
  cols: number;
  /** Mean curvature of each column (weighted mean of p (1 - p)). */
  curvature: Float64Array;
  lambda: number;
}

/** Curvature below this is taken as this much (a perfectly separated column would otherwise get a huge step). */
const MIN_CURVATURE = 1e-4;
/** lambda 0 on a rank-deficient X would divide by 0. */
const MIN_DENOMINATOR = 1e-8;

export class Preconditioner {
  private constructor(
    private readonly basis: RowMatrix,
    private readonly values: Float64Array,
    private readonly tail: number,
    readonly dim: number,
  ) {}

  /** From the top-k eigenpairs of X^T X / rows (k = 128 by default, capped at the dimension). */
  static async create(
    x: RowMatrix,
    opts: { k?: number; passes?: number; seed?: number; threads?: number } = {},
  ): Promise<Preconditioner> {
    const sub = await principalSubspace(x, opts.k ?? 128, opts);
    const k = sub.k;
    const vt = new Float32Array(k * x.dim); // V^T [k, dim]: times(Q) = V^T Q, transposeTimes(Y) = V Y
    for (let j = 0; j < x.dim; j++) for (let a = 0; a < k; a++) vt[a * x.dim + j] = sub.vectors[j * k + a];
    const basis = new OrtRowMatrix(vt, k, x.dim, opts.threads, 'eigenvectors');
    return new Preconditioner(basis, sub.values, Math.max(0, sub.values[k - 1]), x.dim);
  }

  /** H0 q of every block (new arrays). */
  async apply(blocks: readonly PreconditionBlock[]): Promise<Float64Array[]> {
    const dim = this.dim;
    const C = blocks.reduce((a, b) => a + b.cols, 0);
    if (C === 0) return [];
    const q = new Float32Array(dim * C);
    let col = 0;
    for (const b of blocks) {
      for (let j = 0; j < dim; j++) for (let c = 0; c < b.cols; c++) q[j * C + col + c] = b.q[j * b.cols + c];
      col += b.cols;
    }
    const k = this.values.length;
    const y = await this.basis.times(q, C); // V^T Q [k, C]
    const tails: number[] = [];
    col = 0;
    for (const b of blocks) {
      for (let c = 0; c < b.cols; c++) {
        const curv = Math.max(MIN_CURVATURE, b.curvature[c]);
        const tail = 1 / Math.max(MIN_DENOMINATOR, curv * this.tail + b.lambda);
        tails.push(tail);
        for (let a = 0; a < k; a++)
          y[a * C + col + c] *= 1 / Math.max(MIN_DENOMINATOR, curv * this.values[a] + b.lambda) - tail;
      }
      col += b.cols;
    }
    const vy = await this.basis.transposeTimes(y, C); // V Y [dim, C]
    col = 0;
    return blocks.map((b) => {
      const r = new Float64Array(b.q.length);
      for (let j = 0; j < dim; j++) {
        for (let c = 0; c < b.cols; c++) r[j * b.cols + c] = vy[j * C + col + c] + tails[col + c] * b.q[j * b.cols + c];
      }
      for (let c = 0; c < b.cols; c++)
        r[dim * b.cols + c] = b.q[dim * b.cols + c] / Math.max(MIN_CURVATURE, b.curvature[c]);
      col += b.cols;
      return r;
    });
  }

  async release(): Promise<void> {
    await this.basis.release();
  }
}
