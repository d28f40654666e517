// A small typed builder for ONNX graphs with static shapes. Every op method checks shapes, emits ONNX
// node(s), leaves an OpRecord and returns a Tensor handle; autodiff.ts applies rules.ts to the records on
// the path from the trainable params to the losses (and refuses ops that have no rule there).
import type { AttrValue, DType, Initializer, InputSpec, NodeSpec, OpRecord, Tensor } from './types.ts';
import { numel, sameShape, shapeStr } from './types.ts';
import {
  broadcast,
  normAxis,
  pair,
  quad,
  resolveReshape,
  sliceShape,
  windowOut,
  type Pair,
  type Quad,
} from './shapes.ts';

export interface Named {
  name?: string;
}
export interface ConvOptions extends Named {
  strides?: number | readonly number[];
  /** [top, left, bottom, right], [h, w] or one number. */
  pads?: number | readonly number[];
  dilations?: number | readonly number[];
  group?: number;
}
export interface PoolOptions extends Named {
  kernel: number | readonly number[];
  strides?: number | readonly number[];
  pads?: number | readonly number[];
}
export interface GemmOptions extends Named {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}
export interface ParamOptions {
  trainable: boolean;
}
export interface ConvTransposeOptions extends Named {
  strides: Pair;
  pads: Quad;
  outputPadding: Pair;
}

/** Attributes kept on the Conv record (normalised) for the gradient rule. */
export type ConvAttrs = { kernel: Pair; strides: Pair; pads: Quad; dilations: Pair; group: number };
export type PoolAttrs = { kernel: Pair; strides: Pair; pads: Quad };

interface OpExtra {
  /** ONNX attributes of the node. */
  onnx?: Record<string, AttrValue>;
  /** Normalised attributes kept on the record for the gradient rule. */
  attrs?: Record<string, unknown>;
  floats?: string[];
  tensors?: string[];
  /** ONNX op type when it differs from the logical type (inactive Dropout is an Identity). */
  opType?: string;
}

export interface Param {
  name: string;
  shape: readonly number[];
  data: Float32Array;
  trainable: boolean;
}

export class Graph {
  readonly nodes: NodeSpec[] = [];
  readonly ops: OpRecord[] = [];
  readonly inputs: InputSpec[] = [];
  readonly initializers: Initializer[] = [];
  readonly outputs: Tensor[] = [];
  private readonly tensors = new Map<string, Tensor>();
  private readonly paramList: Param[] = [];
  private readonly constCache = new Map<string, Tensor>();
  private counter = 0;

  /** A deep enough copy that adding nodes, outputs or node outputs to it leaves this graph unchanged. */
  clone(): Graph {
    const g = new Graph();
    g.nodes.push(
      ...this.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    );
    g.ops.push(...this.ops);
    g.inputs.push(...this.inputs);
    g.initializers.push(...this.initializers);
    g.outputs.push(...this.outputs);
    for (const [k, v] of this.tensors) g.tensors.set(k, v);
    g.paramList.push(...this.paramList);
    for (const [k, v] of this.constCache) g.constCache.set(k, v);
    g.counter = this.counter;
    return g;
  }

  // ---------------------------------------------------------------- values

  /** A data input fed at run time (images, labels, per-sample weights). */
  input(name: string, shape: readonly number[], dtype: DType = 'float32'): Tensor {
    const t = this.declare(name, shape, dtype);
    this.inputs.push({ name, shape: [...shape], dtype });
    return t;
  }

  /**
   * A float32 parameter. Trainable: a graph input (its gradient can become a graph output and the
   * optimizer updates it outside the graph); frozen: an initializer baked into the model.
   */
  param(name: string, shape: readonly number[], data: Float32Array, opts: ParamOptions): Tensor {
    if (data.length !== numel(shape)) {
      throw new Error(`param ${name}: shape ${shapeStr(shape)} needs ${numel(shape)} values, got ${data.length}`);
    }
    const t = this.declare(name, shape, 'float32');
    this.paramList.push({ name, shape: [...shape], data, trainable: opts.trainable });
    if (opts.trainable) this.inputs.push({ name, shape: [...shape], dtype: 'float32' });
    else this.initializers.push({ name, shape: [...shape], dtype: 'float32', data });
    return t;
  }

  /** Parameters in declaration order, with the data they were declared with. */
  params(filter?: { trainable: boolean }): readonly Param[] {
    return filter ? this.paramList.filter((p) => p.trainable === filter.trainable) : this.paramList;
  }

  /**
   * A constant initializer (deduplicated by value for small tensors such as shapes and axes, unless `unique`:
   * autodiff's loss-gradient seeds must not be shared with other constants, it tells them apart by name).
   */
  constant(
    values: ArrayLike<number>,
    shape: readonly number[],
    dtype: 'float32' | 'int64' = 'float32',
    unique = false,
  ): Tensor {
    const key = values.length <= 64 && !unique ? `${dtype}|${shape.join(',')}|${Array.from(values).join(',')}` : '';
    const hit = key ? this.constCache.get(key) : undefined;
    if (hit) return hit;
    const data =
      dtype === 'int64' ? BigInt64Array.from(Array.from(values), (v) => BigInt(v)) : Float32Array.from(values);
    const t = this.declare(this.fresh('const'), shape, dtype);
    this.initializers.push({ name: t.name, shape: [...shape], dtype, data });
    if (key) this.constCache.set(key, t);
    return t;
  }

  scalar(v: number): Tensor {
    return this.constant([v], []);
  }

  ints(values: readonly number[]): Tensor {
    return this.constant(values, [values.length], 'int64');
  }

  /** Marks a tensor as a graph output, under its own name or (via Identity) a new one. */
  output(t: Tensor, name?: string): Tensor {
    this.check(t);
    const out = name && name !== t.name ? this.identity(t, { name }) : t;
    if (this.outputs.some((o) => o.name === out.name)) throw new Error(`output ${out.name} declared twice`);
    this.outputs.push(out);
    return out;
  }

  tensor(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no tensor named ${name} in this graph`);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  // ---------------------------------------------------------------- differentiable ops

  conv(x: Tensor, w: Tensor, b: Tensor | undefined, opts: ConvOptions = {}): Tensor {
    this.rank(x, 4, 'conv input');
    this.rank(w, 4, 'conv weight');
    const [n, c, h, wd] = x.shape;
    const [m, cg, kh, kw] = w.shape;
    const group = opts.group ?? 1;
    if (cg * group !== c)
      throw new Error(
        `conv: input ${x.name} has ${c} channels, weight ${w.name} ${shapeStr(w.shape)} expects ${cg * group}`,
      );
    if (b && !sameShape(b.shape, [m])) throw new Error(`conv: bias ${b.name} must be [${m}], got ${shapeStr(b.shape)}`);
    const attrs: ConvAttrs = {
      kernel: [kh, kw],
      strides: pair(opts.strides, 1, 'conv strides'),
      pads: quad(opts.pads, 'conv'),
      dilations: pair(opts.dilations, 1, 'conv dilations'),
      group,
    };
    const ho = windowOut(h, kh, attrs.strides[0], attrs.pads[0], attrs.pads[2], attrs.dilations[0]);
    const wo = windowOut(wd, kw, attrs.strides[1], attrs.pads[1], attrs.pads[3], attrs.dilations[1]);
    if (ho < 1 || wo < 1) throw new Error(`conv: input ${shapeStr(x.shape)} too small for kernel ${kh}x${kw}`);
    const inputs = b ? [x, w, b] : [x, w];
    return this.op('Conv', inputs, [n, m, ho, wo], 'float32', opts, {
      onnx: { kernel_shape: attrs.kernel, strides: attrs.strides, pads: attrs.pads, dilations: attrs.dilations, group },
      attrs,
    });
  }

  relu(x: Tensor, opts: Named = {}): Tensor {
    return this.op('Relu', [x], x.shape, 'float32', opts);
  }

  sigmoid(x: Tensor, opts: Named = {}): Tensor {
    return this.op('Sigmoid', [x], x.shape, 'float32', opts);
  }

  add(a: Tensor, b: Tensor, opts: Named = {}): Tensor {
    return this.op('Add', [a, b], broadcast(a.shape, b.shape, 'add'), a.dtype, opts);
  }

  sub(a: Tensor, b: Tensor, opts: Named = {}): Tensor {
    return this.op('Sub', [a, b], broadcast(a.shape, b.shape, 'sub'), a.dtype, opts);
  }

  mul(a: Tensor, b: Tensor, opts: Named = {}): Tensor {
    return this.op('Mul', [a, b], broadcast(a.shape, b.shape, 'mul'), a.dtype, opts);
  }

  /** Max pooling, floor mode. Its Indices output is added only when a training graph needs it. */
  maxPool(x: Tensor, opts: PoolOptions): Tensor {
    this.rank(x, 4, 'maxPool input');
    const attrs: PoolAttrs = {
      kernel: pair(opts.kernel, 1, 'maxPool kernel'),
      strides: pair(opts.strides, 1, 'maxPool strides'),
      pads: quad(opts.pads, 'maxPool'),
    };
    const [n, c, h, w] = x.shape;
    const ho = windowOut(h, attrs.kernel[0], attrs.strides[0], attrs.pads[0], attrs.pads[2]);
    const wo = windowOut(w, attrs.kernel[1], attrs.strides[1], attrs.pads[1], attrs.pads[3]);
    if (attrs.pads.some((p, i) => p >= attrs.kernel[i % 2]))
      throw new Error('maxPool: each pad must be smaller than the kernel');
    return this.op('MaxPool', [x], [n, c, ho, wo], 'float32', opts, {
      onnx: { kernel_shape: attrs.kernel, strides: attrs.strides, pads: attrs.pads },
      attrs,
    });
  }

  globalAveragePool(x: Tensor, opts: Named = {}): Tensor {
    this.rank(x, 4, 'globalAveragePool input');
    return this.op('GlobalAveragePool', [x], [x.shape[0], x.shape[1], 1, 1], 'float32', opts);
  }

  /** 2-D matrix product [M,K] x [K,N]. */
  matMul(a: Tensor, b: Tensor, opts: Named = {}): Tensor {
    this.rank(a, 2, 'matMul A');
    this.rank(b, 2, 'matMul B');
    if (a.shape[1] !== b.shape[0]) throw new Error(`matMul: ${shapeStr(a.shape)} x ${shapeStr(b.shape)}`);
    return this.op('MatMul', [a, b], [a.shape[0], b.shape[1]], 'float32', opts);
  }

  /** alpha * op(A) op(B) + beta * C; a linear layer is gemm(x, W[out,in], b, {transB: true}). */
  gemm(a: Tensor, b: Tensor, c: Tensor | undefined, opts: GemmOptions = {}): Tensor {
    this.rank(a, 2, 'gemm A');
    this.rank(b, 2, 'gemm B');
    const transA = opts.transA ?? false;
    const transB = opts.transB ?? false;
    const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (k !== k2)
      throw new Error(
        `gemm: inner sizes differ (${shapeStr(a.shape)}${transA ? 'T' : ''} x ${shapeStr(b.shape)}${transB ? 'T' : ''})`,
      );
    if (c && !sameShape(broadcast([m, n], c.shape, 'gemm C'), [m, n]))
      throw new Error(`gemm: C ${shapeStr(c.shape)} does not broadcast to [${m},${n}]`);
    const attrs = { transA, transB, alpha: opts.alpha ?? 1, beta: opts.beta ?? 1 };
    return this.op('Gemm', c ? [a, b, c] : [a, b], [m, n], 'float32', opts, {
      onnx: { transA: +transA, transB: +transB, alpha: attrs.alpha, beta: attrs.beta },
      attrs,
      floats: ['alpha', 'beta'],
    });
  }

  reshape(x: Tensor, shape: readonly number[], opts: Named = {}): Tensor {
    const to = resolveReshape(x.shape, shape);
    return this.op('Reshape', [x, this.ints(to)], to, x.dtype, opts);
  }

  /** ONNX Flatten: [d0..d(axis-1)] and [d(axis)..] each collapse to one dimension. */
  flatten(x: Tensor, axis = 1, opts: Named = {}): Tensor {
    const a = axis < 0 ? axis + x.shape.length : axis;
    const to = [numel(x.shape.slice(0, a)), numel(x.shape.slice(a))];
    return this.op('Flatten', [x], to, x.dtype, opts, { onnx: { axis: a } });
  }

  softmax(x: Tensor, axis = -1, opts: Named = {}): Tensor {
    const a = normAxis(axis, x.shape.length, 'softmax');
    return this.op('Softmax', [x], x.shape, 'float32', opts, { onnx: { axis: a }, attrs: { axis: a } });
  }

  logSoftmax(x: Tensor, axis = -1, opts: Named = {}): Tensor {
    const a = normAxis(axis, x.shape.length, 'logSoftmax');
    return this.op('LogSoftmax', [x], x.shape, 'float32', opts, { onnx: { axis: a }, attrs: { axis: a } });
  }

  /**
   * Inverted dropout: zeroes each value with probability `ratio`, scales the rest by 1/(1-ratio). ORT draws
   * the mask from a generator seeded once per session with `seed`, so a fresh session replays the same
   * sequence of masks. training=false (or ratio 0) emits an Identity.
   */
  dropout(x: Tensor, ratio: number, seed: number, opts: Named & { training?: boolean } = {}): Tensor {
    if (!(ratio >= 0 && ratio < 1)) throw new Error(`dropout: ratio must be in [0, 1), got ${ratio}`);
    const active = (opts.training ?? true) && ratio > 0;
    if (!active)
      return this.op('Dropout', [x], x.shape, x.dtype, opts, { attrs: { ratio, active }, opType: 'Identity' });
    const inputs = [x, this.scalar(ratio), this.boolScalar(true)];
    return this.op('Dropout', inputs, x.shape, x.dtype, opts, {
      onnx: { seed: Math.trunc(seed) },
      attrs: { ratio, active },
    });
  }

  concat(xs: readonly Tensor[], axis: number, opts: Named = {}): Tensor {
    if (xs.length === 0) throw new Error('concat: no inputs');
    const a = normAxis(axis, xs[0].shape.length, 'concat');
    const shape = [...xs[0].shape];
    shape[a] = 0;
    for (const t of xs) {
      const ok = t.shape.length === shape.length && t.shape.every((d, i) => i === a || d === xs[0].shape[i]);
      if (!ok)
        throw new Error(`concat: ${t.name} ${shapeStr(t.shape)} does not match ${shapeStr(xs[0].shape)} off axis ${a}`);
      shape[a] += t.shape[a];
    }
    return this.op('Concat', xs, shape, xs[0].dtype, opts, { onnx: { axis: a }, attrs: { axis: a } });
  }

  /** Sum over `axes` (all axes when omitted). */
  reduceSum(x: Tensor, axes?: readonly number[], keepdims = false, opts: Named = {}): Tensor {
    const ax = (axes ?? x.shape.map((_, i) => i))
      .map((v) => normAxis(v, x.shape.length, 'reduceSum'))
      .sort((p, q) => p - q);
    const shape = x.shape.flatMap((d, i) => (ax.includes(i) ? (keepdims ? [1] : []) : [d]));
    return this.op('ReduceSum', [x, this.ints(ax)], shape, x.dtype, opts, {
      onnx: { keepdims: +keepdims },
      attrs: { axes: ax, keepdims },
    });
  }

  /**
   * Multi-label sigmoid cross-entropy (paper eq. 5): per sample the sum over labels of
   * max(x,0) - x*t + log(1+exp(-|x|)), times the sample's weight (0 masks it out), averaged over the
   * batch size N (not over the weight sum, so masked samples still count in the denominator).
   */
  sigmoidCrossEntropy(logits: Tensor, targets: Tensor, weights?: Tensor, opts: Named = {}): Tensor {
    this.rank(logits, 2, 'sigmoidCrossEntropy logits');
    if (!sameShape(logits.shape, targets.shape))
      throw new Error(`sigmoidCrossEntropy: targets ${shapeStr(targets.shape)} != logits ${shapeStr(logits.shape)}`);
    const n = logits.shape[0];
    this.checkWeights(weights, n, 'sigmoidCrossEntropy');
    const first = this.nodes.length;
    const softplus = this.raw('Softplus', [this.raw('Neg', [this.raw('Abs', [logits])])]);
    const perLabel = this.raw('Add', [
      this.raw('Sub', [this.raw('Relu', [logits]), this.raw('Mul', [logits, targets])]),
      softplus,
    ]);
    let perSample = this.raw('ReduceSum', [perLabel, this.ints([1])], [n], { keepdims: 0 });
    if (weights) perSample = this.raw('Mul', [perSample, weights], [n]);
    const total = this.raw('ReduceSum', [perSample, this.ints([0])], [], { keepdims: 0 });
    return this.record(
      'SigmoidCrossEntropy',
      weights ? [logits, targets, weights] : [logits, targets],
      this.raw('Mul', [total, this.scalar(1 / n)], [], {}, opts.name),
      { n },
      first,
    );
  }

  /**
   * Single-label softmax cross-entropy over a class index (paper eq. 7): -log softmax(x)[label] per sample,
   * times its weight, averaged over the batch size N. An out-of-range label (e.g. -1 for "unknown")
   * contributes 0, so masked samples need no valid class.
   */
  softmaxCrossEntropy(logits: Tensor, labels: Tensor, weights?: Tensor, opts: Named = {}): Tensor {
    this.rank(logits, 2, 'softmaxCrossEntropy logits');
    const [n, k] = logits.shape;
    if (!sameShape(labels.shape, [n]) || labels.dtype !== 'int64')
      throw new Error(
        `softmaxCrossEntropy: labels must be int64 [${n}], got ${labels.dtype} ${shapeStr(labels.shape)}`,
      );
    this.checkWeights(weights, n, 'softmaxCrossEntropy');
    const first = this.nodes.length;
    const oneHot = this.oneHot(labels, k);
    const logp = this.raw('LogSoftmax', [logits], logits.shape, { axis: 1 });
    const picked = this.raw('ReduceSum', [this.raw('Mul', [logp, oneHot]), this.ints([1])], [n], { keepdims: 0 });
    let perSample = picked;
    if (weights) perSample = this.raw('Mul', [perSample, weights], [n]);
    const total = this.raw('ReduceSum', [perSample, this.ints([0])], [], { keepdims: 0 });
    return this.record(
      'SoftmaxCrossEntropy',
      weights ? [logits, labels, weights] : [logits, labels],
      this.raw('Mul', [total, this.scalar(-1 / n)], [], {}, opts.name),
      { n },
      first,
    );
  }

  identity(x: Tensor, opts: Named = {}): Tensor {
    return this.op('Identity', [x], x.shape, x.dtype, opts);
  }

  /** x itself in the forward pass (an ONNX Identity); to autodiff a constant: no gradient flows back through it. */
  stopGradient(x: Tensor, opts: Named = {}): Tensor {
    return this.op('StopGradient', [x], x.shape, x.dtype, opts, { opType: 'Identity' });
  }

  // ---------------------------------------------------------------- helper ops (no gradient rule)

  transpose(x: Tensor, perm: readonly number[], opts: Named = {}): Tensor {
    return this.op(
      'Transpose',
      [x],
      perm.map((p) => x.shape[p]),
      x.dtype,
      opts,
      { onnx: { perm } },
    );
  }

  /**
   * Batched matrix product [B,M,K] x [B,K,N] -> [B,M,N] (ONNX MatMul on rank-3 operands; gradient code only:
   * it has no gradient rule of its own).
   */
  batchMatMul(a: Tensor, b: Tensor, opts: Named = {}): Tensor {
    this.rank(a, 3, 'batchMatMul A');
    this.rank(b, 3, 'batchMatMul B');
    if (a.shape[0] !== b.shape[0] || a.shape[2] !== b.shape[1])
      throw new Error(`batchMatMul: ${shapeStr(a.shape)} x ${shapeStr(b.shape)}`);
    return this.op('BatchMatMul', [a, b], [a.shape[0], a.shape[1], b.shape[2]], 'float32', opts, { opType: 'MatMul' });
  }

  slice(
    x: Tensor,
    starts: readonly number[],
    ends: readonly number[],
    axes: readonly number[],
    steps: readonly number[],
    opts: Named = {},
  ): Tensor {
    const shape = sliceShape(x.shape, starts, ends, axes, steps);
    return this.op(
      'Slice',
      [x, this.ints(starts), this.ints(ends), this.ints(axes), this.ints(steps)],
      shape,
      x.dtype,
      opts,
    );
  }

  /** Zero padding; `pads` in ONNX order (all begins, then all ends). */
  pad(x: Tensor, pads: readonly number[], opts: Named = {}): Tensor {
    const r = x.shape.length;
    const shape = x.shape.map((d, i) => d + pads[i] + pads[i + r]);
    return this.op('Pad', [x, this.ints(pads)], shape, x.dtype, opts);
  }

  /** ConvTranspose with an explicit output_padding (used for strided conv dX). */
  convTranspose(x: Tensor, w: Tensor, opts: ConvTransposeOptions): Tensor {
    const [n, , h, wd] = x.shape;
    const [, co, kh, kw] = w.shape;
    const out = (i: number, k: number, a: number) =>
      opts.strides[a] * (i - 1) + opts.outputPadding[a] + k - opts.pads[a] - opts.pads[a + 2];
    return this.op('ConvTranspose', [x, w], [n, co, out(h, kh, 0), out(wd, kw, 1)], 'float32', opts, {
      onnx: { kernel_shape: [kh, kw], strides: opts.strides, pads: opts.pads, output_padding: opts.outputPadding },
    });
  }

  expand(x: Tensor, shape: readonly number[], opts: Named = {}): Tensor {
    const to = broadcast(x.shape, shape, 'expand');
    return this.op('Expand', [x, this.ints(shape)], to, x.dtype, opts);
  }

  cast(x: Tensor, to: DType, opts: Named = {}): Tensor {
    return this.op('Cast', [x], x.shape, to, opts, { onnx: { to: ONNX_TYPE[to] } });
  }

  greater(a: Tensor, b: Tensor, opts: Named = {}): Tensor {
    return this.op('Greater', [a, b], broadcast(a.shape, b.shape, 'greater'), 'bool', opts);
  }

  equal(a: Tensor, b: Tensor, opts: Named = {}): Tensor {
    return this.op('Equal', [a, b], broadcast(a.shape, b.shape, 'equal'), 'bool', opts);
  }

  exp(x: Tensor, opts: Named = {}): Tensor {
    return this.op('Exp', [x], x.shape, x.dtype, opts);
  }

  neg(x: Tensor, opts: Named = {}): Tensor {
    return this.op('Neg', [x], x.shape, x.dtype, opts);
  }

  /** ScatterElements with reduction='add' onto `data` (exact for overlapping pooling windows). */
  scatterAdd(data: Tensor, indices: Tensor, updates: Tensor, axis: number, opts: Named = {}): Tensor {
    return this.op('ScatterElements', [data, indices, updates], data.shape, data.dtype, opts, {
      onnx: { axis, reduction: 'add' },
    });
  }

  /** Splits along `axis` into pieces of the given sizes (not recorded: several outputs). */
  split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
    const outs = sizes.map((s) =>
      this.declare(
        this.fresh('Split'),
        x.shape.map((d, i) => (i === axis ? s : d)),
        x.dtype,
      ),
    );
    this.nodes.push({
      opType: 'Split',
      inputs: [x.name, this.ints(sizes).name],
      outputs: outs.map((o) => o.name),
      attrs: { axis },
    });
    return outs;
  }

  zeros(shape: readonly number[], opts: Named = {}): Tensor {
    return this.op('ConstantOfShape', [this.ints(shape)], shape, 'float32', opts, {
      onnx: { value: 0 },
      tensors: ['value'],
    });
  }

  /** One-hot float rows [N, depth] from int64 class indices; out-of-range indices give all-zero rows. */
  oneHot(labels: Tensor, depth: number): Tensor {
    const classes = this.constant(
      Array.from({ length: depth }, (_, i) => i),
      [1, depth],
      'int64',
    );
    const col = this.raw(
      'Reshape',
      [labels, this.ints([labels.shape[0], 1])],
      [labels.shape[0], 1],
      {},
      undefined,
      'int64',
    );
    const eq = this.raw('Equal', [col, classes], [labels.shape[0], depth], {}, undefined, 'bool');
    return this.raw('Cast', [eq], [labels.shape[0], depth], { to: ONNX_TYPE.float32 });
  }

  /**
   * Puts the nodes in the given order (a permutation of their indices that keeps every node after the
   * producers of its inputs); op records follow their nodes.
   */
  reorderNodes(order: readonly number[]): void {
    if (
      order.length !== this.nodes.length ||
      new Set(order).size !== order.length ||
      order.some((i) => !(i >= 0 && i < order.length))
    ) {
      throw new Error('reorderNodes: not a permutation of the node indices');
    }
    const produced = new Set([...this.inputs.map((i) => i.name), ...this.initializers.map((i) => i.name), '']);
    for (const i of order) {
      const missing = this.nodes[i].inputs.find((x) => !produced.has(x));
      if (missing !== undefined)
        throw new Error(`reorderNodes: ${this.nodes[i].opType} would run before the producer of ${missing}`);
      for (const o of this.nodes[i].outputs) produced.add(o);
    }
    const where = new Array<number>(order.length);
    order.forEach((from, to) => (where[from] = to));
    const nodes = order.map((i) => this.nodes[i]);
    this.nodes.splice(0, nodes.length, ...nodes);
    this.ops.forEach((r, k) => (this.ops[k] = { ...r, node: where[r.node] }));
  }

  /** Adds an extra output to an already emitted node (MaxPool Indices, Dropout mask). */
  addNodeOutput(nodeIndex: number, shape: readonly number[], dtype: DType, prefix: string): Tensor {
    const node = this.nodes[nodeIndex];
    const t = this.declare(this.fresh(prefix), shape, dtype);
    node.outputs.push(t.name);
    return t;
  }

  // ---------------------------------------------------------------- internals

  private boolScalar(v: boolean): Tensor {
    const key = `bool|${v}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const t = this.declare(this.fresh('const'), [], 'bool');
    this.initializers.push({ name: t.name, shape: [], dtype: 'bool', data: Uint8Array.of(v ? 1 : 0) });
    this.constCache.set(key, t);
    return t;
  }

  private checkWeights(w: Tensor | undefined, n: number, what: string): void {
    if (w && (!sameShape(w.shape, [n]) || w.dtype !== 'float32'))
      throw new Error(`${what}: weights must be float32 [${n}], got ${shapeStr(w.shape)}`);
  }

  private rank(t: Tensor, r: number, what: string): void {
    this.check(t);
    if (t.shape.length !== r) throw new Error(`${what} ${t.name} must have rank ${r}, got ${shapeStr(t.shape)}`);
  }

  private check(t: Tensor): void {
    const own = this.tensors.get(t.name);
    if (!own || !sameShape(own.shape, t.shape) || own.dtype !== t.dtype) {
      throw new Error(`tensor ${t.name} does not belong to this graph`);
    }
  }

  private declare(name: string, shape: readonly number[], dtype: DType): Tensor {
    if (this.tensors.has(name)) throw new Error(`tensor name ${name} is already used`);
    if (shape.some((d) => !Number.isInteger(d) || d < 0))
      throw new Error(`tensor ${name}: bad shape ${shapeStr(shape)}`);
    const t: Tensor = { name, shape: [...shape], dtype };
    this.tensors.set(name, t);
    return t;
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${++this.counter}`;
    while (this.tensors.has(name));
    return name;
  }

  /** Emits one node with one output and records it as a logical op. */
  private op(
    type: string,
    inputs: readonly Tensor[],
    shape: readonly number[],
    dtype: DType,
    opts: Named,
    extra: OpExtra = {},
  ): Tensor {
    for (const t of inputs) this.check(t);
    const first = this.nodes.length;
    const out = this.declare(opts.name ?? this.fresh(type), shape, dtype);
    this.nodes.push({
      opType: extra.opType ?? type,
      inputs: inputs.map((t) => t.name),
      outputs: [out.name],
      attrs: extra.onnx ?? {},
      floatAttrs: extra.floats,
      tensorAttrs: extra.tensors,
    });
    return this.record(type, inputs, out, extra.attrs ?? {}, first);
  }

  private record(
    type: string,
    inputs: readonly Tensor[],
    output: Tensor,
    attrs: Record<string, unknown>,
    node: number,
  ): Tensor {
    this.ops.push({ type, inputs: [...inputs], output, attrs, node });
    return output;
  }

  /** Emits an unrecorded node (inside a composite op); the output shape defaults to the first input's. */
  private raw(
    opType: string,
    inputs: readonly Tensor[],
    shape?: readonly number[],
    attrs: Record<string, AttrValue> = {},
    name?: string,
    dtype: DType = 'float32',
  ): Tensor {
    const out = this.declare(name ?? this.fresh(opType), shape ?? inputs[0].shape, dtype);
    this.nodes.push({ opType, inputs: inputs.map((t) => t.name), outputs: [out.name], attrs });
    return out;
  }
}

export const ONNX_TYPE: Record<DType, number> = { float32: 1, int64: 7, bool: 9 };
