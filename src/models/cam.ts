// Grad-CAM (Selvaraju et al., ICCV 2017) for every label of both heads in ONE ONNX graph, built with the engine's own
// autodiff: input the conv5_x activation A [1, C, h, w] (the last residual block's ReLU output, 7x7 for a 224 view),
// outputs each label's score, its probability and its map ReLU(sum_c alpha_kc A_c), alpha_kc = mean_ij dz_k/dA_cij.
//
// How all labels' gradients come out of one reverse pass, exactly: the K = P + Q labels' scores z_k (the logits, as
// Grad-CAM takes the score before the sigmoid/softmax) are functions of the pooled features f = GAP(A) only. The
// graph copies f into K rows, runs the heads on the [K, C] batch (rows never mix: inference heads have no batch
// coupling) and differentiates sum_k z_k(row k) (the logits times an identity mask) with respect to the copies:
// row k of that gradient is dz_k/df, the k-th row of the Jacobian, for any head (shared hidden layer, merged
// ensemble, fusion) without a formula per head. Since GAP gives f_c = mean_ij A_cij, dz_k/dA_cij = dz_k/df_c / (h w)
// at every position, so alpha_kc = dz_k/df_c / (h w) is the spatial mean of dz_k/dA exactly, with no K x C x h x w
// gradient tensor. Cost: the heads run on K rows instead of 1 (a few MFLOP-to-~0.3 GFLOP, against the trunk's ~4).
//
// The graph is small (head weights only) and ships in the model folder as explain.onnx (weights float16 like
// heads.onnx); model.onnx exposes A as its output 'conv5_x', so any runtime (onnxruntime-web included: only
// standard opset-17 ops) gets the maps from model.onnx + explain.onnx.
import onnxProto from 'onnx-proto';
import { buildTrainingGraph, Graph, serialize, type Tensor } from '../graph/index.ts';
import { buildHeads, HEAD_PREFIX } from './heads.ts';
import type { NetworkSpec } from './network.ts';
import { trunkLayout, type TrunkLayout } from './resnet.ts';

/** The explain graph in a model folder. */
export const EXPLAIN_FILE = 'explain.onnx';
/** The conv5_x activation: model.onnx's extra output and explain.onnx's input. */
export const CAM_INPUT = 'conv5_x';

/** explain.onnx's outputs: per head the scores (logits) [1, P|Q], probabilities [1, P|Q] and maps [1, P|Q, h, w]. */
export const CAM_OUTPUTS = {
  lesionScores: 'lesion_scores',
  lesionProbs: 'lesion_cam_probs',
  lesionCam: 'lesion_cam',
  locationScores: 'location_scores',
  locationProbs: 'location_cam_probs',
  locationCam: 'location_cam',
} as const;

/** Name of the trunk tensor that is conv5_x (the last block's ReLU). */
export function conv5TensorName(layout: TrunkLayout): string {
  return `${layout.blocks.at(-1)!.name}_relu`;
}

/** Shape [C, h, w] of conv5_x for a square input of side `size`. */
export function conv5Shape(layout: TrunkLayout, size: number): [number, number, number] {
  const out = (x: number, c: { kernel: number; stride: number; pad: number }) =>
    Math.floor((x + 2 * c.pad - c.kernel) / c.stride) + 1;
  let side = out(out(size, layout.stem), { kernel: 3, stride: 2, pad: 1 });
  for (const b of layout.blocks) for (const c of b.branch) side = out(side, c);
  return [layout.featureDim, side, side];
}

/**
 * The Grad-CAM graph of a network with the head params `values` (each required): input 'conv5_x' [1, C, h, w];
 * outputs CAM_OUTPUTS of the heads present. A fusion model's site inputs (location_given [K, Q], location_known
 * [K, 1], K = P + Q: one row per label's copy of the features) stay inputs: feed the prediction's site in every row
 * (its one-hot and 1), or zeros when it is unknown (the model's predicted location is used, as in predict).
 */
export function buildCamGraph(spec: NetworkSpec, values: ReadonlyMap<string, Float32Array>): Graph {
  return buildCamGraphOn(spec, values, conv5Shape(trunkLayout(spec.trunk.depth), spec.imageSize));
}

/** buildCamGraph on an activation of shape [C, h, w] (the heads' input width is C). */
export function buildCamGraphOn(
  spec: NetworkSpec,
  values: ReadonlyMap<string, Float32Array>,
  shape: readonly [number, number, number],
): Graph {
  const [c, h, w] = shape;
  const p = spec.heads.lesion;
  const q = spec.heads.location;
  const k = p + q;
  const g = new Graph();
  const a = g.input(CAM_INPUT, [1, c, h, w]);
  const f = g.flatten(g.globalAveragePool(a), 1);
  // the wrt root: an Expand has no gradient rule, and needs none (nothing before it is differentiated)
  const rows = g.expand(f, [k, c], { name: 'cam_rows' });
  const heads = buildHeads(g, rows, {
    ...spec.heads,
    seed: spec.seed,
    training: false,
    trainable: false,
    values,
    requireValues: true,
  });
  const unused = [...values.keys()].filter((n) => n.startsWith(HEAD_PREFIX) && !g.params().some((x) => x.name === n));
  if (unused.length)
    throw new Error(`explain graph: ${unused.length} head param(s) the network does not have (${unused[0]}, ...)`);
  const logits = [heads.lesionLogits, heads.locationLogits].filter((t): t is Tensor => t !== undefined);
  const all = logits.length === 1 ? logits[0] : g.concat(logits, 1);
  const eye = new Float32Array(k * k);
  for (let i = 0; i < k; i++) eye[i * k + i] = 1;
  const target = g.reduceSum(g.mul(all, g.constant(eye, [k, k])), undefined, false, { name: 'cam_target' });
  const t = buildTrainingGraph(g, [target], { wrt: [rows.name] });
  const grad = t.tensor(`grad/${rows.name}`);
  // autodiff makes the summed target and the gradient outputs; explain.onnx outputs only what follows
  t.outputs.splice(0, t.outputs.length);
  const alpha = t.mul(grad, t.scalar(1 / (h * w)));
  const maps = t.relu(t.matMul(alpha, t.reshape(a, [c, h * w])), { name: 'cam_maps' });
  const row0 = (x: Tensor, name: string) => t.output(t.slice(x, [0], [1], [0], [1]), name);
  const part = (from: number, n: number, name: string) =>
    t.output(t.reshape(t.slice(maps, [from], [from + n], [0], [1]), [1, n, h, w]), name);
  if (heads.lesionLogits && heads.lesionProbs) {
    row0(heads.lesionLogits, CAM_OUTPUTS.lesionScores);
    row0(heads.lesionProbs, CAM_OUTPUTS.lesionProbs);
    part(0, p, CAM_OUTPUTS.lesionCam);
  }
  if (heads.locationLogits && heads.locationProbs) {
    row0(heads.locationLogits, CAM_OUTPUTS.locationScores);
    row0(heads.locationProbs, CAM_OUTPUTS.locationProbs);
    part(p, q, CAM_OUTPUTS.locationCam);
  }
  return t;
}

/** explain.onnx's bytes: the CAM graph with every param baked in, `metadata` as its metadata_props. */
export function camModelBytes(
  spec: NetworkSpec,
  values: ReadonlyMap<string, Float32Array>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const g = buildCamGraph(spec, values);
  const model = onnxProto.onnx.ModelProto.decode(serialize(g, { metadata }));
  model.docString =
    `Grad-CAM of every label of a dermtl model: input '${CAM_INPUT}' (model.onnx's output of the same name, the ` +
    `conv5_x activation) -> per head its scores (logits), probabilities and maps [1, labels, h, w] (ReLU of the ` +
    `channels weighted by the spatial mean of d score / d activation; upsample to the 224 view).`;
  return onnxProto.onnx.ModelProto.encode(model).finish();
}

/**
 * Model bytes with conv5_x as an extra output (an Identity of the last block's ReLU, batch dimension as the model's):
 * unchanged when it is there already. Predictions fetch only the probabilities, so it costs nothing there.
 */
export function withConv5Output(bytes: Uint8Array, spec: NetworkSpec): Uint8Array {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  if ((graph.output ?? []).some((o) => o.name === CAM_INPUT)) return bytes;
  const layout = trunkLayout(spec.trunk.depth);
  const source = conv5TensorName(layout);
  if (!(graph.node ?? []).some((n) => (n.output ?? []).includes(source)))
    throw new Error(`model has no tensor ${source} (conv5_x)`);
  const [c, h, w] = conv5Shape(layout, spec.imageSize);
  const batch = graph.output?.[0]?.type?.tensorType?.shape?.dim?.[0] ?? { dimValue: 1 };
  graph.node = [
    ...(graph.node ?? []),
    { opType: 'Identity', name: `${CAM_INPUT}_output`, input: [source], output: [CAM_INPUT] },
  ];
  graph.output = [
    ...(graph.output ?? []),
    {
      name: CAM_INPUT,
      type: {
        tensorType: {
          elemType: onnxProto.onnx.TensorProto.DataType.FLOAT,
          shape: { dim: [batch, { dimValue: c }, { dimValue: h }, { dimValue: w }] },
        },
      },
    },
  ];
  return onnxProto.onnx.ModelProto.encode(model).finish();
}
