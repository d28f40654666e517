import { DermtlError, errorList } from '../util/errors.ts';
import { loadTfjsWeights, parameterCount, type WeightMap, type WeightTensor } from './tfjsWeights.ts';

/** A convolution in ONNX layout: weight [O, I, kh, kw] row-major, bias [O]. */
export interface FoldedConv {
  weight: Float32Array;
  bias: Float32Array;
  shape: [number, number, number, number];
  /**
   * Folded BatchNorm only: s = gamma / sqrt(var + eps) per output channel, the factor the weights were multiplied
   * by. Fine-tuning needs it: SGD on the folded weights W*s equals SGD on the original W (BN frozen, as in Caffe)
   * only with a per-channel learning-rate scale s^2 (see SgdMomentum's channelScale).
   */
  scale?: Float32Array;
}

/** Keras BatchNormalization default epsilon, and the one used by Keras ResNet50. */
export const KERAS_BN_EPSILON = 1e-3;

/** Keras conv kernel [kh, kw, I, O] to ONNX [O, I, kh, kw], each element times scale[o] (computed in fp64). */
function transposeHwio(kernel: WeightTensor, scale: (o: number) => number): FoldedConv {
  if (kernel.shape.length !== 4)
    throw new DermtlError(`conv kernel must have 4 dimensions (HWIO), got [${kernel.shape}]`);
  const [kh, kw, ci, co] = kernel.shape;
  const src = kernel.data;
  const dst = new Float32Array(src.length);
  for (let o = 0; o < co; o++) {
    const s = scale(o);
    for (let i = 0; i < ci; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          dst[((o * ci + i) * kh + y) * kw + x] = src[((y * kw + x) * ci + i) * co + o] * s;
        }
      }
    }
  }
  return { weight: dst, bias: new Float32Array(co), shape: [co, ci, kh, kw] };
}

/** A Keras conv with no BatchNorm after it, in ONNX layout (bias zeros when the conv has none). */
export function hwioToOihw(kernel: WeightTensor, bias: Float32Array | null = null): FoldedConv {
  const out = transposeHwio(kernel, () => 1);
  if (bias) out.bias.set(bias);
  return out;
}

/**
 * Folds an inference-mode BatchNorm into the conv before it:
 *   BN(conv(x, W) + b) = gamma * (conv(x, W) + b - mean) / sqrt(var + eps) + beta
 *                      = conv(x, W * s) + (b - mean) * s + beta,   s = gamma / sqrt(var + eps)  (per output channel).
 * Arithmetic is fp64, results are stored as float32. The kernel is Keras HWIO; the result is ONNX OIHW.
 */
export function foldConvBn(
  kernelHWIO: WeightTensor,
  bias: Float32Array | null,
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  eps = KERAS_BN_EPSILON,
): FoldedConv {
  const co = kernelHWIO.shape[3];
  for (const [name, v] of Object.entries({ gamma, beta, mean, variance, ...(bias ? { bias } : {}) })) {
    if (v.length !== co)
      throw new DermtlError(`BatchNorm fold: ${name} has ${v.length} values, the conv has ${co} output channels`);
  }
  const s = Float64Array.from(gamma, (g, o) => g / Math.sqrt(variance[o] + eps));
  const out = transposeHwio(kernelHWIO, (o) => s[o]);
  for (let o = 0; o < co; o++) out.bias[o] = ((bias ? bias[o] : 0) - mean[o]) * s[o] + beta[o];
  out.scale = Float32Array.from(s);
  return out;
}

/** One convolution of Keras ResNet50 (v1): where it sits, its BatchNorm, and its geometry. */
export interface ResNet50ConvSpec {
  /** Keras layer name, e.g. conv1, res3a_branch2b, res4a_branch1. */
  name: string;
  /** The BatchNorm that follows it, e.g. bn_conv1, bn3a_branch2b. */
  bn: string;
  /** 1 for the stem, 2..5 for the residual stages. */
  stage: number;
  /** '' for the stem, else a..f. */
  block: string;
  /** 'stem', '2a', '2b', '2c' (main branch) or '1' (projection shortcut). */
  branch: 'stem' | '2a' | '2b' | '2c' | '1';
  kernel: number;
  stride: number;
  /** Symmetric zero padding on each side (Keras: conv1_pad = 3, 'same' 3x3 = 1, else 0). */
  pad: number;
  inChannels: number;
  outChannels: number;
}

const STAGES = [
  { stage: 2, blocks: 'abc', filters: [64, 64, 256], stride: 1 },
  { stage: 3, blocks: 'abcd', filters: [128, 128, 512], stride: 2 },
  { stage: 4, blocks: 'abcdef', filters: [256, 256, 1024], stride: 2 },
  { stage: 5, blocks: 'abc', filters: [512, 512, 2048], stride: 2 },
];

/**
 * Every conv of Keras ResNet50 in network order: conv1, then per block branch2a, 2b, 2c and, for the first
 * block of a stage, the projection branch1. Caffe-style v1: the stride of a stage sits on the 1x1 branch2a
 * and branch1 convs (stage 2 has stride 1 because max pooling already halved the map).
 */
export const RESNET50_CONVS: readonly ResNet50ConvSpec[] = buildConvTable();

function buildConvTable(): ResNet50ConvSpec[] {
  const t: ResNet50ConvSpec[] = [
    {
      name: 'conv1',
      bn: 'bn_conv1',
      stage: 1,
      block: '',
      branch: 'stem',
      kernel: 7,
      stride: 2,
      pad: 3,
      inChannels: 3,
      outChannels: 64,
    },
  ];
  let cin = 64;
  for (const { stage, blocks, filters, stride } of STAGES) {
    const [f1, f2, f3] = filters;
    for (const block of blocks) {
      const first = block === 'a';
      const spec = (
        branch: ResNet50ConvSpec['branch'],
        kernel: number,
        s: number,
        i: number,
        o: number,
      ): ResNet50ConvSpec => ({
        name: `res${stage}${block}_branch${branch}`,
        bn: `bn${stage}${block}_branch${branch}`,
        stage,
        block,
        branch,
        kernel,
        stride: s,
        pad: (kernel - 1) / 2,
        inChannels: i,
        outChannels: o,
      });
      t.push(spec('2a', 1, first ? stride : 1, cin, f1), spec('2b', 3, 1, f1, f2), spec('2c', 1, 1, f2, f3));
      if (first) t.push(spec('1', 1, stride, cin, f3));
      cin = f3;
    }
  }
  return t;
}

/** 25,636,712 float32 parameters (102,546,848 bytes) in the Keras ImageNet ResNet50 weights. */
export const RESNET50_PARAM_COUNT = 25_636_712;

/** Keras ResNet50 with every BatchNorm folded into its conv, in ONNX layouts. */
export interface FoldedResNet50 {
  /** Keyed by Keras conv name (conv1, res2a_branch2a, ..., res5c_branch2c, res2a_branch1, ...). */
  convs: Map<string, FoldedConv>;
  /**
   * The classifier, transposed from Keras [in=2048, out=1000] to weight [out=1000, in=2048]
   * (as ONNX Gemm with transB=1 expects, like torch.nn.Linear); bias [1000]. Softmax follows it.
   */
  fc1000: { weight: Float32Array; bias: Float32Array; shape: [1000, 2048] };
}

/** Folds every conv+BN of the Keras ResNet50 weight map (as loaded by loadTfjsWeights). */
export function foldResNet50(weights: WeightMap): FoldedResNet50 {
  checkResNet50Weights(weights);
  const get = (n: string) => weights.get(n)!.data;
  const convs = new Map<string, FoldedConv>();
  for (const c of RESNET50_CONVS) {
    const kernel = weights.get(`${c.name}/kernel`)!;
    const bn = (p: string) => get(`${c.bn}/${p}`);
    convs.set(
      c.name,
      foldConvBn(kernel, get(`${c.name}/bias`), bn('gamma'), bn('beta'), bn('moving_mean'), bn('moving_variance')),
    );
  }
  const k = weights.get('fc1000/kernel')!;
  const fc = hwioToOihw({ shape: [1, 1, k.shape[0], k.shape[1]], data: k.data }, get('fc1000/bias'));
  return { convs, fc1000: { weight: fc.weight, bias: fc.bias, shape: [1000, 2048] } };
}

/** Reads a verified weights folder and folds it (see ensurePretrainedResNet50 for the folder). */
export async function loadFoldedResNet50(folder: string): Promise<FoldedResNet50> {
  return foldResNet50(await loadTfjsWeights(folder));
}

/** Every weight the fold needs, with its Keras shape. */
export function resnet50ExpectedShapes(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const c of RESNET50_CONVS) {
    m.set(`${c.name}/kernel`, [c.kernel, c.kernel, c.inChannels, c.outChannels]);
    m.set(`${c.name}/bias`, [c.outChannels]);
    for (const p of ['gamma', 'beta', 'moving_mean', 'moving_variance']) m.set(`${c.bn}/${p}`, [c.outChannels]);
  }
  m.set('fc1000/kernel', [2048, 1000]);
  m.set('fc1000/bias', [1000]);
  return m;
}

function checkResNet50Weights(weights: WeightMap): void {
  const problems: string[] = [];
  const expected = resnet50ExpectedShapes();
  for (const [name, shape] of expected) {
    const w = weights.get(name);
    if (!w) problems.push(`${name}: missing`);
    else if (w.shape.join() !== shape.join()) problems.push(`${name}: shape [${w.shape}], expected [${shape}]`);
  }
  const n = parameterCount(weights);
  if (!problems.length && n !== RESNET50_PARAM_COUNT) {
    problems.push(`${n} parameters in all, expected ${RESNET50_PARAM_COUNT} (unexpected extra weights)`);
  }
  if (problems.length) throw errorList('These are not the Keras ImageNet ResNet50 weights', problems, 20);
}
