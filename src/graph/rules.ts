// Gradient rules: ONE entry per differentiable op. Each takes the forward record and the gradient dY of its
// output and emits ONNX ops for the gradients of the inputs that need one (undefined elsewhere).
// The ONNX formulations follow /work/shared/notes/onnx-training-graphs.md (what was measured fast and exact).
import type { ConvAttrs, Graph } from './builder.ts';
import type { OpRecord, Tensor } from './types.ts';
import { numel, sameShape } from './types.ts';

export type GradRule = (g: Graph, op: OpRecord, dY: Tensor, needs: readonly boolean[]) => (Tensor | undefined)[];

export const rules: Record<string, GradRule> = {
  // Conv: dX = conv of dY with the flipped, in/out-transposed kernel (ConvTranspose when strided);
  // dW = dY(as [Cout, N*Ho*Wo]) x im2col(X)^T; dB = sum of dY over N, H, W.
  Conv: (g, op, dY, needs) => {
    const [x, w, b] = op.inputs;
    const a = op.attrs as ConvAttrs;
    if (a.group !== 1 || a.dilations.some((d) => d !== 1))
      throw new Error(`Conv gradient supports group=1, dilation 1 only (${op.output.name})`);
    return [
      needs[0] ? convDx(g, dY, w, x.shape, a) : undefined,
      needs[1] ? convDw(g, x, dY, a) : undefined,
      b && needs[2] ? g.reduceSum(dY, [0, 2, 3]) : undefined,
    ];
  },
  // relu: dX = dY * 1[y > 0] (Greater + Cast + Mul: the fastest form measured).
  Relu: (g, op, dY) => [g.mul(dY, g.cast(g.greater(op.output, g.scalar(0)), 'float32'))],
  // sigmoid: dX = dY * y * (1 - y).
  Sigmoid: (g, op, dY) => [g.mul(dY, g.mul(op.output, g.sub(g.scalar(1), op.output)))],
  // a + b: each operand gets dY summed over the axes it was broadcast along.
  Add: (g, op, dY, needs) => op.inputs.map((t, i) => (needs[i] ? unbroadcast(g, dY, t.shape) : undefined)),
  // a - b: da = dY, db = -dY (each summed over its broadcast axes).
  Sub: (g, op, dY, needs) => [
    needs[0] ? unbroadcast(g, dY, op.inputs[0].shape) : undefined,
    needs[1] ? g.neg(unbroadcast(g, dY, op.inputs[1].shape)) : undefined,
  ],
  // a * b: da = dY * b, db = dY * a (each summed over its broadcast axes).
  Mul: (g, op, dY, needs) => {
    const [a, b] = op.inputs;
    return [
      needs[0] ? unbroadcast(g, g.mul(dY, b), a.shape) : undefined,
      needs[1] ? unbroadcast(g, g.mul(dY, a), b.shape) : undefined,
    ];
  },
  // max pool: dY goes to the argmax of each window; ScatterElements(add) sums overlapping windows exactly.
  MaxPool: (g, op, dY) => {
    const x = op.inputs[0];
    const indices = g.addNodeOutput(op.node, op.output.shape, 'int64', 'MaxPoolIndices');
    const flat = g.scatterAdd(g.zeros([numel(x.shape)]), g.reshape(indices, [-1]), g.reshape(dY, [-1]), 0);
    return [g.reshape(flat, x.shape)];
  },
  // global average pool: dX = dY / (H*W) broadcast over H, W.
  GlobalAveragePool: (g, op, dY) => {
    const x = op.inputs[0];
    return [g.expand(g.mul(dY, g.scalar(1 / (x.shape[2] * x.shape[3]))), x.shape)];
  },
  // A B: dA = dY B^T, dB = A^T dY.
  MatMul: (g, op, dY, needs) => {
    const [a, b] = op.inputs;
    return [
      needs[0] ? g.gemm(dY, b, undefined, { transB: true }) : undefined,
      needs[1] ? g.gemm(a, dY, undefined, { transA: true }) : undefined,
    ];
  },
  // alpha op(A) op(B) + beta C: dop(A) = alpha dY op(B)^T, dop(B) = alpha op(A)^T dY, dC = beta * dY summed to C's shape.
  Gemm: (g, op, dY, needs) => gemmGrad(g, op, dY, needs),
  // reshape: the gradient is dY viewed in the input's shape.
  Reshape: (g, op, dY) => [g.reshape(dY, op.inputs[0].shape)],
  // flatten: likewise dY viewed in the input's shape.
  Flatten: (g, op, dY) => [g.reshape(dY, op.inputs[0].shape)],
  // identity: dX = dY.
  Identity: (_g, _op, dY) => [dY],
  // exp: dX = dY * exp(x) = dY * y.
  Exp: (g, op, dY) => [g.mul(dY, op.output)],
  // StopGradient needs no rule: autodiff's dependsOn ends every dependency at it, so it never receives a gradient.
  // softmax y: dX = y * (dY - sum(dY * y) along the axis).
  Softmax: (g, op, dY) => {
    const y = op.output;
    return [g.mul(y, g.sub(dY, g.reduceSum(g.mul(dY, y), [op.attrs.axis as number], true)))];
  },
  // log-softmax y: dX = dY - exp(y) * sum(dY) along the axis.
  LogSoftmax: (g, op, dY) => [g.sub(dY, g.mul(g.exp(op.output), g.reduceSum(dY, [op.attrs.axis as number], true)))],
  // inverted dropout: dX = dY * mask / (1 - ratio), with the mask the forward pass drew.
  Dropout: (g, op, dY) => {
    if (!op.attrs.active) return [dY];
    const mask = g.addNodeOutput(op.node, op.output.shape, 'bool', 'DropoutMask');
    return [g.mul(g.mul(dY, g.cast(mask, 'float32')), g.scalar(1 / (1 - (op.attrs.ratio as number))))];
  },
  // concat: each input gets its slice of dY along the axis.
  Concat: (g, op, dY) =>
    g.split(
      dY,
      op.attrs.axis as number,
      op.inputs.map((t) => t.shape[op.attrs.axis as number]),
    ),
  // sum over axes: dX = dY broadcast back over the summed axes.
  ReduceSum: (g, op, dY) => {
    const x = op.inputs[0];
    const kept = x.shape.map((d, i) => ((op.attrs.axes as number[]).includes(i) ? 1 : d));
    return [g.expand(g.reshape(dY, kept), x.shape)];
  },
  // mean_n w_n sum_l [max(x,0) - x t + log(1+exp(-|x|))]: dX = (sigmoid(x) - t) * w_n / N * dL.
  SigmoidCrossEntropy: (g, op, dY) => {
    const [x, t, w] = op.inputs;
    return [g.mul(g.sub(g.sigmoid(x), t), sampleScale(g, dY, w, op.attrs.n as number))];
  },
  // -mean_n w_n log softmax(x)[label_n]: dX = (softmax(x) * valid_n - onehot) * w_n / N * dL
  // (valid_n = 1 for an in-range label; out-of-range labels add no loss and no gradient).
  SoftmaxCrossEntropy: (g, op, dY) => {
    const [x, labels, w] = op.inputs;
    const oneHot = g.oneHot(labels, x.shape[1]);
    const valid = g.reduceSum(oneHot, [1], true);
    return [g.mul(g.sub(g.mul(g.softmax(x, 1), valid), oneHot), sampleScale(g, dY, w, op.attrs.n as number))];
  },
};

/** dL * w_n / N as a [N,1] column (or a scalar without weights), for the loss gradients. */
function sampleScale(g: Graph, dL: Tensor, w: Tensor | undefined, n: number): Tensor {
  const s = g.mul(dL, g.scalar(1 / n));
  return w ? g.mul(g.reshape(w, [n, 1]), s) : s;
}

/** Sums a broadcast gradient back to an operand's shape. */
export function unbroadcast(g: Graph, dY: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(dY.shape, shape)) return dY;
  const padded = [...new Array<number>(dY.shape.length - shape.length).fill(1), ...shape];
  const axes = dY.shape.flatMap((d, i) => (padded[i] === 1 && d !== 1 ? [i] : []));
  const summed = axes.length ? g.reduceSum(dY, axes, true) : dY;
  return sameShape(summed.shape, shape) ? summed : g.reshape(summed, shape);
}

/**
 * Conv dW = dY(as [M, N*Ho*Wo]) x im2col(X)^T. Two layouts of the same product:
 * - per image, where the early layers' big activations make it cheaper: im2col(X_n) [C*kh*kw, Ho*Wo] and one
 *   batched MatMul dY_n x im2col(X_n)^T (ORT fuses the Transpose into the MatMul) giving [N, M, C*kh*kw],
 *   summed over N. No activation is transposed, but N partial dW are written and summed;
 * - over the whole batch: X and dY transposed to [C,N,H,W] / [M,N,Ho,Wo], one Gemm.
 * Either product may be split per kernel tap (see PER_TAP_MIN_CHANNELS). The per-image form is taken when the partial products are smaller than the two transposed activations:
 * M*C*kh*kw < Ho*Wo*(M + C) (ResNet-50: res2, res3 and the stem; res4/res5 have small maps and big kernels).
 */
function convDw(g: Graph, x: Tensor, dY: Tensor, a: ConvAttrs): Tensor {
  const [, c] = x.shape;
  const [, m, ho, wo] = dY.shape;
  const [kh, kw] = a.kernel;
  if (m * c * kh * kw < ho * wo * (m + c)) return convDwPerImage(g, x, dY, a);
  return convDwBatch(g, x, dY, a);
}

/**
 * From this many input channels on, a kxk dW is one product per kernel tap (dY x tap^T -> [M, C], the kh*kw
 * results joined along a last axis of size kh*kw, which is W's (c, i, j) order) instead of one product with the
 * Concat of all taps (im2col): the Concat copied every tap a second time. ResNet-50 b20: Concat 45 -> 16 ms, the
 * products no slower, step ~35 ms faster. Below it (the 3-channel stem) the per-tap products are too thin.
 */
const PER_TAP_MIN_CHANNELS = 32;

/**
 * Columns of im2col: the kh*kw taps of X (image axes at 2 and 3; `xp` padded by `pads`), each [.., Ho, Wo]. A
 * tap that is the unpadded X itself (the centre of a stride-1 'same' conv) is X, not a copy.
 */
function convTaps(g: Graph, x: Tensor, xp: Tensor, a: ConvAttrs, ho: number, wo: number): Tensor[] {
  const [kh, kw] = a.kernel;
  const [sh, sw] = a.strides;
  const [pt, pl] = a.pads;
  const isX = (i: number, j: number) =>
    i === pt && j === pl && sh === 1 && sw === 1 && x.shape[2] === ho && x.shape[3] === wo;
  // A Slice with a step on the innermost axis copies value by value (~6x slower per value than a unit-stride
  // one, which ORT copies row by row). For a strided kxk conv (the 7x7/2 stem), column j = sw*b + q of every
  // tap is column b of phase q (every sw-th column from q): slicing the sw phases once leaves kh*kw tap slices
  // that are unit-stride along rows. The stem's dW im2col went from ~85 to ~25 ms at batch 20.
  const phases =
    sw > 1 && kw > 1 ? Array.from({ length: sw }, (_, q) => g.slice(xp, [q], [xp.shape[3]], [3], [sw])) : undefined;
  const taps: Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const rows = [i, i + sh * (ho - 1) + 1] as const;
      if (isX(i, j)) {
        taps.push(x);
      } else if (phases) {
        const b = Math.floor(j / sw);
        taps.push(g.slice(phases[j % sw], [rows[0], b], [rows[1], b + wo], [2, 3], [sh, 1]));
      } else {
        const whole = i === 0 && j === 0 && xp.shape[2] === ho && xp.shape[3] === wo;
        taps.push(whole ? xp : g.slice(xp, [rows[0], j], [rows[1], j + sw * (wo - 1) + 1], [2, 3], [sh, sw]));
      }
    }
  }
  return taps;
}

/** dW per image: im2col(X_n) [C*kh*kw, Ho*Wo] in W's (c,i,j) row order, dY_n im2col(X_n)^T summed over n. */
function convDwPerImage(g: Graph, x: Tensor, dY: Tensor, a: ConvAttrs): Tensor {
  const [n, c] = x.shape;
  const [, m, ho, wo] = dY.shape;
  const [kh, kw] = a.kernel;
  const [pt, pl, pb, pr] = a.pads;
  const xp = pt || pl || pb || pr ? g.pad(x, [0, 0, pt, pl, 0, 0, pb, pr]) : x;
  const dy = g.reshape(dY, [n, m, ho * wo]);
  const taps = convTaps(g, x, xp, a, ho, wo);
  if (taps.length > 1 && c >= PER_TAP_MIN_CHANNELS) {
    const parts = taps.map((t) =>
      g.reshape(g.batchMatMul(dy, g.transpose(g.reshape(t, [n, c, ho * wo]), [0, 2, 1])), [n, m, c, 1]),
    );
    return g.reshape(g.reduceSum(g.concat(parts, 3), [0]), [m, c, kh, kw]);
  }
  const cols = g.reshape(
    taps.length === 1
      ? taps[0]
      : g.concat(
          taps.map((t) => g.reshape(t, [n, c, 1, ho * wo])),
          2,
        ),
    [n, c * kh * kw, ho * wo],
  );
  const perImage = g.batchMatMul(dy, g.transpose(cols, [0, 2, 1]));
  return g.reshape(g.reduceSum(perImage, [0]), [m, c, kh, kw]);
}

/**
 * dW over the whole batch as one Gemm (or one per tap): X is transposed to [C,N,H,W] and padded once; each kernel tap viewed as
 * [C,1,N*Ho*Wo]; their Concat is im2col [C*kh*kw, N*Ho*Wo] in W's (c,i,j) order.
 */
function convDwBatch(g: Graph, x: Tensor, dY: Tensor, a: ConvAttrs): Tensor {
  const [n, c] = x.shape;
  const [, m, ho, wo] = dY.shape;
  const [kh, kw] = a.kernel;
  const [pt, pl, pb, pr] = a.pads;
  const p = n * ho * wo;
  const xt = g.transpose(x, [1, 0, 2, 3]);
  const xtp = pt || pl || pb || pr ? g.pad(xt, [0, 0, pt, pl, 0, 0, pb, pr]) : xt;
  const taps = convTaps(g, xt, xtp, a, ho, wo);
  const dyMat = g.reshape(g.transpose(dY, [1, 0, 2, 3]), [m, p]);
  if (taps.length > 1 && c >= PER_TAP_MIN_CHANNELS) {
    const parts = taps.map((t) =>
      g.reshape(g.gemm(dyMat, g.reshape(t, [c, p]), undefined, { transB: true }), [m, c, 1]),
    );
    return g.reshape(g.concat(parts, 2), [m, c, kh, kw]);
  }
  const cols = g.reshape(
    taps.length === 1
      ? taps[0]
      : g.concat(
          taps.map((t) => g.reshape(t, [c, 1, p])),
          1,
        ),
    [c * kh * kw, p],
  );
  return g.reshape(g.gemm(dyMat, cols, undefined, { transB: true }), [m, c, kh, kw]);
}

/**
 * Conv dX. Stride 1: a Conv of dY with the flipped, transposed kernel and pads k-1-p (faster than
 * ConvTranspose). Strided: ConvTranspose with output_padding = the rows/cols the forward conv dropped.
 */
function convDx(g: Graph, dY: Tensor, w: Tensor, xShape: readonly number[], a: ConvAttrs): Tensor {
  const [kh, kw] = a.kernel;
  const [pt, pl, pb, pr] = a.pads;
  const [sh, sw] = a.strides;
  if (sh === 1 && sw === 1 && Math.max(pt, pb) <= kh - 1 && Math.max(pl, pr) <= kw - 1) {
    // The zero bias lets ORT fuse the Add that accumulates this dX with the skip path's gradient into the conv
    // (its Conv+Add fusion wants a bias input): one pass less over every identity block's input gradient.
    const zeroBias = g.constant(new Float32Array(xShape[1]), [xShape[1]]);
    return g.conv(dY, flipTransposed(g, w), zeroBias, { pads: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr] });
  }
  const [, , ho, wo] = dY.shape;
  const outputPadding = [
    xShape[2] - (sh * (ho - 1) + kh - pt - pb),
    xShape[3] - (sw * (wo - 1) + kw - pl - pr),
  ] as const;
  return g.convTranspose(dY, w, { strides: a.strides, pads: a.pads, outputPadding });
}

/** W[m,c,i,j] -> W'[c,m,kh-1-i,kw-1-j]: Transpose, then reverse the kh*kw taps with an anti-identity MatMul. */
function flipTransposed(g: Graph, w: Tensor): Tensor {
  const [m, c, kh, kw] = w.shape;
  const wt = g.transpose(w, [1, 0, 2, 3]);
  const k = kh * kw;
  if (k === 1) return wt;
  const anti = new Float32Array(k * k);
  for (let r = 0; r < k; r++) anti[r * k + (k - 1 - r)] = 1;
  const flipped = g.matMul(g.reshape(wt, [c * m, k]), g.constant(anti, [k, k]));
  return g.reshape(flipped, [c, m, kh, kw]);
}

function gemmGrad(g: Graph, op: OpRecord, dY: Tensor, needs: readonly boolean[]): (Tensor | undefined)[] {
  const [a, b, c] = op.inputs;
  const { transA, transB, alpha, beta } = op.attrs as { transA: boolean; transB: boolean; alpha: number; beta: number };
  // Each case writes the needed product directly in Gemm's transposition flags.
  const dA = !needs[0]
    ? undefined
    : transA
      ? g.gemm(b, dY, undefined, { transA: transB, transB: true, alpha })
      : g.gemm(dY, b, undefined, { transB: !transB, alpha });
  const dB = !needs[1]
    ? undefined
    : transB
      ? g.gemm(dY, a, undefined, { transA: true, transB: transA, alpha })
      : g.gemm(a, dY, undefined, { transA: !transA, alpha });
  let dC: Tensor | undefined;
  if (c && needs[2]) {
    dC = unbroadcast(g, dY, c.shape);
    if (beta !== 1) dC = g.mul(dC, g.scalar(beta));
  }
  return [dA, dB, dC];
}
