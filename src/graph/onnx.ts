// Serialisation of a Graph to ONNX ModelProto bytes (opset 17) with onnx-proto, and reading input specs back.
import onnxProto from 'onnx-proto';
import type { Graph } from './builder.ts';
import { ONNX_TYPE } from './builder.ts';
import type { AttrValue, DType, Initializer, InputSpec, NodeSpec } from './types.ts';

const { onnx } = onnxProto;
export const OPSET = 17;
const IR_VERSION = 8;

export interface SerializeOptions {
  /** Stored as ModelProto.metadata_props (e.g. label names, input size, training config). */
  metadata?: Record<string, string>;
  /**
   * Bake trainable params into the model as initializers (an inference export): `true` uses each param's
   * declared data, a map supplies trained values by name (params missing from the map keep declared data).
   */
  inlineParams?: boolean | ReadonlyMap<string, Float32Array>;
  graphName?: string;
}

export function serialize(g: Graph, opts: SerializeOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(g, opts)).finish();
}

/** The graph's run-time inputs after `inlineParams` is applied. */
export function graphInputs(g: Graph, opts: SerializeOptions = {}): InputSpec[] {
  const inlined = inlinedNames(g, opts);
  return g.inputs.filter((i) => !inlined.has(i.name));
}

/**
 * The graph as an onnx-proto message (serialize() encodes it; saveModel adds metadata first).
 * @internal Left out of the published declarations: onnx-proto's own types do not check without skipLibCheck.
 */
export function toModelProto(g: Graph, opts: SerializeOptions = {}): onnxProto.onnx.ModelProto {
  const inlined = inlinedNames(g, opts);
  const values = opts.inlineParams instanceof Map ? opts.inlineParams : new Map<string, Float32Array>();
  const extra: Initializer[] = g
    .params({ trainable: true })
    .filter((p) => inlined.has(p.name))
    .map((p) => {
      const data = values.get(p.name) ?? p.data;
      if (data.length !== p.data.length)
        throw new Error(`inlineParams: ${p.name} has ${data.length} values, expected ${p.data.length}`);
      return { name: p.name, shape: p.shape, dtype: 'float32', data };
    });
  const graph = onnx.GraphProto.create({
    name: opts.graphName ?? 'dermtl',
    node: g.nodes.map((n, i) => nodeProto(n, i)),
    input: graphInputs(g, opts).map(valueInfo),
    output: g.outputs.map(valueInfo),
    initializer: [...g.initializers, ...extra].map(tensorProto),
  });
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'dermtl',
    opsetImport: [{ domain: '', version: OPSET }],
    graph,
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
}

/** Input names, shapes and types of serialised model bytes (for validating feeds of a model loaded from disk). */
export function readModelInputs(bytes: Uint8Array): InputSpec[] {
  const model = onnx.ModelProto.decode(bytes);
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const byCode = new Map(Object.entries(ONNX_TYPE).map(([k, v]) => [v, k as DType]));
  return (model.graph?.input ?? [])
    .filter((i) => !inits.has(i.name))
    .map((i) => {
      const tt = i.type?.tensorType;
      const dtype = byCode.get(tt?.elemType ?? 0);
      if (!dtype) throw new Error(`model input ${i.name} has an unsupported element type ${tt?.elemType}`);
      const shape = (tt?.shape?.dim ?? []).map((d) => (d.dimValue == null ? -1 : Number(d.dimValue)));
      return { name: i.name ?? '', shape, dtype };
    });
}

export function readMetadata(bytes: Uint8Array): Record<string, string> {
  const model = onnx.ModelProto.decode(bytes);
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key, p.value]));
}

function inlinedNames(g: Graph, opts: SerializeOptions): Set<string> {
  if (!opts.inlineParams) return new Set();
  const trainable = g.params({ trainable: true }).map((p) => p.name);
  if (opts.inlineParams === true) return new Set(trainable);
  for (const k of opts.inlineParams.keys()) {
    if (!trainable.includes(k)) throw new Error(`inlineParams: ${k} is not a trainable param of this graph`);
  }
  return new Set(trainable);
}

function valueInfo(t: { name: string; shape: readonly number[]; dtype: DType }): onnxProto.onnx.IValueInfoProto {
  return {
    name: t.name,
    type: { tensorType: { elemType: ONNX_TYPE[t.dtype], shape: { dim: t.shape.map((d) => ({ dimValue: d })) } } },
  };
}

function tensorProto(t: Initializer): onnxProto.onnx.ITensorProto {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name: t.name, dims: [...t.shape], dataType: ONNX_TYPE[t.dtype], rawData: bytes };
}

function nodeProto(n: NodeSpec, i: number): onnxProto.onnx.INodeProto {
  return {
    name: `${n.opType}_${i}`,
    opType: n.opType,
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([name, v]) => attribute(name, v, n)),
  };
}

function attribute(name: string, v: AttrValue, n: NodeSpec): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  const isFloat = n.floatAttrs?.includes(name) ?? false;
  if (n.tensorAttrs?.includes(name)) {
    return { name, type: T.TENSOR, t: { dims: [1], dataType: ONNX_TYPE.float32, floatData: [v as number] } };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return isFloat ? { name, type: T.FLOAT, f: v } : { name, type: T.INT, i: v };
  return isFloat ? { name, type: T.FLOATS, floats: [...v] } : { name, type: T.INTS, ints: [...v] };
}
