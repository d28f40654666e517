// The ResNet trunk on the dermtl graph engine, in the exact layout of Keras ResNet50 (v1, Caffe-style), with
// every BatchNorm folded into its conv (frozen-BN fine-tuning), plus a tiny ResNet-18-like variant for tests.
//
// Keras -> ONNX equivalences this relies on (the parity test checks the whole net against TF.js):
// - conv1: ZeroPadding2D(3) + 'valid' 7x7/2 conv == Conv pads 3 (224 -> 112).
// - pool1: ZeroPadding2D(1) + 3x3/2 'valid' MaxPool == MaxPool pads 1. ONNX pads with -inf, Keras with 0, but the
//   input is a ReLU output (>= 0) and every window holds at least one real pixel, so the maxima are equal.
// - Stride 2 sits on the 1x1 branch2a and branch1 convs of res3a/4a/5a (res2a: stride 1); 3x3 convs are
//   'same' with stride 1, i.e. symmetric pad 1. 1x1 'valid' stride 2 convs need no padding.
import type { Graph, Tensor } from '../graph/index.ts';
import { DermtlError } from '../util/errors.ts';
import { Rng } from '../util/rng.ts';
import { RESNET50_CONVS, type FoldedResNet50 } from './foldBatchNorm.ts';

/**
 * Which parameters get gradients: every one ('all'), none of the trunk ('heads': a frozen trunk baked in as
 * initializers), nothing at all ('none': an inference graph), or those whose param name passes the predicate
 * (e.g. `(p) => /^res5/.test(p)` fine-tunes the last stage only; heads stay trainable).
 */
export type Trainable = 'all' | 'heads' | 'none' | ((param: string) => boolean);

export type ResNetDepth = 50 | 'tiny';

/** One convolution of a trunk (ONNX layout [out, in, k, k]). */
export interface TrunkConv {
  /** Keras layer name (conv1, res3a_branch2a, res3a_branch1, ...); the params are `<name>/weight`, `<name>/bias`. */
  name: string;
  kernel: number;
  stride: number;
  pad: number;
  inChannels: number;
  outChannels: number;
}

/** A residual block: the main branch (ReLU after every conv but the last), and a projection when shapes change. */
export interface TrunkBlock {
  /** e.g. res3a */
  name: string;
  branch: TrunkConv[];
  shortcut: TrunkConv | null;
}

export interface TrunkLayout {
  depth: ResNetDepth;
  stem: TrunkConv;
  blocks: TrunkBlock[];
  /** Channels of the last block = length of the pooled feature vector. */
  featureDim: number;
}

/** Keras ResNet50: conv1, then bottleneck blocks [3, 4, 6, 3] (taken from the fold table, so names agree). */
function resnet50Layout(): TrunkLayout {
  const [stem, ...rest] = RESNET50_CONVS;
  const blocks = new Map<string, TrunkBlock>();
  for (const c of rest) {
    const name = `res${c.stage}${c.block}`;
    const b = blocks.get(name) ?? { name, branch: [], shortcut: null };
    const conv: TrunkConv = {
      name: c.name,
      kernel: c.kernel,
      stride: c.stride,
      pad: c.pad,
      inChannels: c.inChannels,
      outChannels: c.outChannels,
    };
    if (c.branch === '1') b.shortcut = conv;
    else b.branch.push(conv);
    blocks.set(name, b);
  }
  const conv = (s: (typeof RESNET50_CONVS)[number]): TrunkConv => ({
    name: s.name,
    kernel: s.kernel,
    stride: s.stride,
    pad: s.pad,
    inChannels: s.inChannels,
    outChannels: s.outChannels,
  });
  return { depth: 50, stem: conv(stem), blocks: [...blocks.values()], featureDim: 2048 };
}

/**
 * Standard deviation of Caffe-preprocessed pixels (0-255 minus the mean; ImageNet per-channel std is ~57-58).
 * He init assumes unit-variance input, and no BatchNorm follows to absorb the scale, so a random conv1 is
 * divided by this: random features then start near unit scale instead of ~58x too large.
 */
export const INPUT_PIXEL_STD = 58;

/** Widths of the tiny net's stages 2..5 (ResNet-18 has 64..512) and its stem. */
export const TINY_WIDTHS = [8, 16, 32, 64] as const;

/**
 * ResNet-18 layout at 1/8 width: same stem (7x7/2 conv, 3x3/2 max pool), two basic blocks (3x3 + 3x3) per stage,
 * stride 2 on the first 3x3 of res3a/4a/5a, projection shortcut where the shape changes.
 */
function tinyLayout(): TrunkLayout {
  const k3 = (name: string, i: number, o: number, stride = 1): TrunkConv => ({
    name,
    kernel: 3,
    stride,
    pad: 1,
    inChannels: i,
    outChannels: o,
  });
  const stem: TrunkConv = { name: 'conv1', kernel: 7, stride: 2, pad: 3, inChannels: 3, outChannels: TINY_WIDTHS[0] };
  const blocks: TrunkBlock[] = [];
  let cin: number = TINY_WIDTHS[0];
  TINY_WIDTHS.forEach((w, si) => {
    for (const letter of 'ab') {
      const name = `res${si + 2}${letter}`;
      const stride = letter === 'a' && si > 0 ? 2 : 1;
      const shortcut =
        stride !== 1 || cin !== w
          ? { name: `${name}_branch1`, kernel: 1, stride, pad: 0, inChannels: cin, outChannels: w }
          : null;
      blocks.push({ name, branch: [k3(`${name}_branch2a`, cin, w, stride), k3(`${name}_branch2b`, w, w)], shortcut });
      cin = w;
    }
  });
  return { depth: 'tiny', stem, blocks, featureDim: cin };
}

export function trunkLayout(depth: ResNetDepth): TrunkLayout {
  if (depth === 50) return resnet50Layout();
  if (depth === 'tiny') return tinyLayout();
  throw new DermtlError(`unknown ResNet depth ${JSON.stringify(depth)} (expected 50 or 'tiny')`);
}

/** Every conv of a layout in network order (stem, then per block its branch and its shortcut). */
export function trunkConvs(layout: TrunkLayout): TrunkConv[] {
  return [layout.stem, ...layout.blocks.flatMap((b) => (b.shortcut ? [...b.branch, b.shortcut] : b.branch))];
}

export interface ResNetOptions {
  depth: ResNetDepth;
  /** Folded Keras ImageNet weights (depth 50 only), or 'random' (He normal, seeded); default 'random'. */
  weights?: FoldedResNet50 | 'random';
  /**
   * Seed of the random init: He normal, conv1 divided by INPUT_PIXEL_STD, the last conv of each residual branch by
   * sqrt(blocks); each conv from Rng.derive(seed, 'trunk', conv name), so independent of build order.
   */
  seed?: number;
  /** Default 'all'. */
  trainable?: Trainable;
  /** Param values by name that replace the init (trained or saved weights); checked for length. */
  values?: ReadonlyMap<string, Float32Array>;
  /** Throw when a param is not in `values` (loading a saved model must never silently fall back to init). */
  requireValues?: boolean;
  /** Re-attach the ImageNet classifier fc1000 + softmax (parity and sanity checks only). */
  fc1000?: boolean;
}

export interface ResNetTrunk {
  layout: TrunkLayout;
  /** Global-average-pooled features [N, featureDim], tensor name 'features'. */
  features: Tensor;
  /** Trunk param names in declaration order. */
  params: string[];
  /** fc1000 logits 'fc1000_logits' and softmax 'imagenet_probs' [N, 1000], when fc1000 was asked for. */
  imagenetLogits?: Tensor;
  imagenetProbs?: Tensor;
}

/** Whether the trunk param `name` is trainable under `t`. */
export function trunkTrainable(t: Trainable, name: string): boolean {
  if (typeof t === 'function') return t(name);
  return t === 'all';
}

/**
 * Builds the trunk on `input` ([N, 3, H, W], Caffe-preprocessed BGR for the pretrained weights) and returns the
 * pooled features. Param names follow the Keras layers: `conv1/weight`, `res4f_branch2c/bias`, ...
 */
export function buildResNet(g: Graph, input: Tensor, opts: ResNetOptions): ResNetTrunk {
  const t = trunkBuilder(g, opts);
  let x = t.stem(input);
  for (const block of t.layout.blocks) x = t.block(x, block);
  const features = pooled(g, x);
  const out: ResNetTrunk = { layout: t.layout, features, params: t.params };
  if (opts.fc1000) Object.assign(out, imagenetClassifier(g, t, features));
  return out;
}

// ---------------------------------------------------------------- cutting the trunk at a stage

/** The residual stages a trunk can be cut before (the stem and pool1 always stay below the cut). */
export const TRUNK_STAGES = [2, 3, 4, 5] as const;
export type TrunkStage = (typeof TRUNK_STAGES)[number];

/** The residual stage (2..5) of a block: res4c -> 4. */
export function blockStage(block: TrunkBlock): number {
  return Number(block.name.slice(3, 4));
}

/** Shape [C, H, W] of the activation that enters `stage` for a square input of side `size` (static shapes). */
export function stageInputShape(layout: TrunkLayout, stage: TrunkStage, size: number): [number, number, number] {
  const out = (x: number, c: { kernel: number; stride: number; pad: number }) =>
    Math.floor((x + 2 * c.pad - c.kernel) / c.stride) + 1;
  let side = out(out(size, layout.stem), { kernel: 3, stride: 2, pad: 1 });
  let channels = layout.stem.outChannels;
  for (const b of layout.blocks.filter((b) => blockStage(b) < stage)) {
    for (const c of b.branch) side = out(side, c);
    channels = b.branch.at(-1)!.outChannels;
  }
  return [channels, side, side];
}

/**
 * The trunk below `stage`: image -> stem -> pool1 -> the stages before `stage` -> the activation that enters it
 * (the ReLU output of the last block below; pool1 for stage 2). Same layers, names and init as buildResNet.
 */
export function buildResNetBelow(
  g: Graph,
  input: Tensor,
  opts: ResNetOptions,
  stage: TrunkStage,
): { layout: TrunkLayout; activation: Tensor; params: string[] } {
  const t = trunkBuilder(g, opts);
  let x = t.stem(input);
  for (const block of t.layout.blocks.filter((b) => blockStage(b) < stage)) x = t.block(x, block);
  return { layout: t.layout, activation: x, params: t.params };
}

/**
 * The trunk from `stage` on: the activation entering `stage` ([N, C, H, W], see stageInputShape) -> its blocks and
 * the later ones -> pooled features. Same layers, names and init as buildResNet, so its params drop into the full
 * network, and buildResNet(x) == buildResNetFrom(buildResNetBelow(x)).
 */
export function buildResNetFrom(g: Graph, activation: Tensor, opts: ResNetOptions, stage: TrunkStage): ResNetTrunk {
  const t = trunkBuilder(g, opts, false);
  const blocks = t.layout.blocks.filter((b) => blockStage(b) >= stage);
  const want = blocks[0]?.branch[0].inChannels;
  if (activation.shape.length !== 4 || activation.shape[1] !== want)
    throw new Error(`stage ${stage} input must be [N,${want},H,W], got [${activation.shape}]`);
  let x = activation;
  for (const block of blocks) x = t.block(x, block);
  return { layout: t.layout, features: pooled(g, x), params: t.params };
}

// ---------------------------------------------------------------- the pieces

interface TrunkBuilder {
  layout: TrunkLayout;
  weights: FoldedResNet50 | 'random';
  params: string[];
  param(name: string, shape: number[], init: () => Float32Array): Tensor;
  /** conv1 + ReLU + pool1 on the image. */
  stem(input: Tensor): Tensor;
  /** One residual block. */
  block(x: Tensor, block: TrunkBlock): Tensor;
}

function trunkBuilder(g: Graph, opts: ResNetOptions, imageInput = true): TrunkBuilder {
  const layout = trunkLayout(opts.depth);
  const weights = opts.weights ?? 'random';
  if (weights !== 'random' && layout.depth !== 50)
    throw new DermtlError(`pretrained weights exist for ResNet-50 only, not depth '${layout.depth}'`);
  const trainable = opts.trainable ?? 'all';
  const seed = opts.seed ?? 0;
  const residualScale = 1 / Math.sqrt(layout.blocks.length);
  const params: string[] = [];

  const param = (name: string, shape: number[], init: () => Float32Array): Tensor => {
    params.push(name);
    return g.param(name, shape, paramValue(name, shape, opts, init), { trainable: trunkTrainable(trainable, name) });
  };
  const conv = (x: Tensor, c: TrunkConv, scale = 1): Tensor => {
    const shape = [c.outChannels, c.inChannels, c.kernel, c.kernel];
    const folded = weights === 'random' ? undefined : weights.convs.get(c.name);
    if (weights !== 'random' && !folded) throw new DermtlError(`pretrained weights have no conv ${c.name}`);
    const w = param(
      `${c.name}/weight`,
      shape,
      () => folded?.weight ?? heNormal(Rng.derive(seed, 'trunk', c.name), shape, scale),
    );
    const b = param(`${c.name}/bias`, [c.outChannels], () => folded?.bias ?? new Float32Array(c.outChannels));
    return g.conv(x, w, b, { strides: c.stride, pads: c.pad, name: c.name });
  };
  const stem = (input: Tensor): Tensor => {
    if (imageInput && (input.shape.length !== 4 || input.shape[1] !== 3))
      throw new Error(`ResNet input must be [N,3,H,W], got [${input.shape}]`);
    const x = g.relu(conv(input, layout.stem, 1 / INPUT_PIXEL_STD), { name: 'conv1_relu' });
    return g.maxPool(x, { kernel: 3, strides: 2, pads: 1, name: 'pool1' });
  };
  const block = (x: Tensor, b: TrunkBlock): Tensor => {
    let y = x;
    b.branch.forEach((c, i) => {
      const last = i === b.branch.length - 1;
      // Without BatchNorm a random residual stream would double its variance per block; scaling the last conv
      // of each branch by 1/sqrt(blocks) keeps the growth below e over the whole trunk (pretrained: unused).
      y = conv(y, c, last ? residualScale : 1);
      if (!last) y = g.relu(y, { name: `${c.name}_relu` });
    });
    const skip = b.shortcut ? conv(x, b.shortcut) : x;
    return g.relu(g.add(y, skip, { name: `${b.name}_add` }), { name: `${b.name}_relu` });
  };
  return { layout, weights, params, param, stem, block };
}

function pooled(g: Graph, x: Tensor): Tensor {
  return g.flatten(g.globalAveragePool(x, { name: 'avg_pool' }), 1, { name: 'features' });
}

function imagenetClassifier(
  g: Graph,
  t: TrunkBuilder,
  features: Tensor,
): Pick<ResNetTrunk, 'imagenetLogits' | 'imagenetProbs'> {
  const missing = () => {
    throw new DermtlError('fc1000 needs the pretrained ImageNet weights (or its values)');
  };
  const init = t.weights === 'random' ? undefined : t.weights.fc1000;
  const w = t.param('fc1000/weight', [1000, t.layout.featureDim], () => init?.weight ?? missing());
  const b = t.param('fc1000/bias', [1000], () => init?.bias ?? missing());
  const imagenetLogits = g.gemm(features, w, b, { transB: true, name: 'fc1000_logits' });
  return { imagenetLogits, imagenetProbs: g.softmax(imagenetLogits, 1, { name: 'imagenet_probs' }) };
}

/** A param's data: from `values` when given there (length-checked), else from `init`. */
export function paramValue(
  name: string,
  shape: readonly number[],
  opts: { values?: ReadonlyMap<string, Float32Array>; requireValues?: boolean },
  init: () => Float32Array,
): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = opts.values?.get(name);
  if (v) {
    if (v.length !== n)
      throw new DermtlError(`weights for ${name}: ${v.length} values, the layer [${shape}] needs ${n}`);
    return v;
  }
  if (opts.requireValues) throw new DermtlError(`weights for ${name} are missing`);
  return init();
}

/** He (Kaiming) normal for a ReLU layer: N(0, 2 / fan_in), fan_in = product of all dims but the first; times scale. */
export function heNormal(rng: Rng, shape: readonly number[], scale = 1): Float32Array {
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const sd = scale * Math.sqrt(2 / fanIn);
  const out = new Float32Array(shape[0] * fanIn);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal(0, sd);
  return out;
}
