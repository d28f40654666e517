// Runs built graphs with onnxruntime-node: feeds and fetches by name, feeds validated (names, types,
// shapes, finiteness) before they reach ORT so bad input gives a DermtlError naming the tensor.
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { DermtlError } from '../util/errors.ts';
import type { Graph } from './builder.ts';
import { graphInputs, readModelInputs, serialize, type SerializeOptions } from './onnx.ts';
import type { DType, InputSpec } from './types.ts';
import { numel, shapeStr } from './types.ts';

export type FeedData = Float32Array | BigInt64Array | Int32Array | Uint8Array | readonly number[];
/** A feed: the data alone (shape taken from the model) or data with explicit dims (checked against the model). */
export type Feed = FeedData | { data: FeedData; dims: readonly number[] };
export interface Fetched {
  data: Float32Array | BigInt64Array | Uint8Array;
  dims: number[];
}
/** A caller-owned float32 buffer for an output, with the output's exact dims. */
export interface Preallocated {
  data: Float32Array;
  dims: readonly number[];
}

export interface RunOptions {
  /** Training graphs: turns ORT's memory pattern planning off (halves peak memory at no speed cost). */
  training?: boolean;
  /** Intra-op threads; defaults to os.availableParallelism(). */
  threads?: number;
  /** Reject NaN/Inf in float feeds: all of them (default), none, or only the named ones. */
  checkFinite?: boolean | readonly string[];
  /** ORT profiling file prefix (for speed work only). */
  profilePrefix?: string;
}

export class GraphSession {
  private readonly specs: Map<string, InputSpec>;

  private constructor(
    private readonly session: ort.InferenceSession,
    inputs: InputSpec[],
    private readonly opts: RunOptions,
  ) {
    this.specs = new Map(inputs.map((i) => [i.name, i]));
  }

  /** Serialises a built graph and opens a session on it. */
  static async fromGraph(g: Graph, opts: RunOptions & SerializeOptions = {}): Promise<GraphSession> {
    return GraphSession.open(serialize(g, opts), graphInputs(g, opts), opts);
  }

  /** Opens ONNX model bytes (e.g. read from disk); input specs are read from the model. */
  static async fromBytes(bytes: Uint8Array, opts: RunOptions = {}): Promise<GraphSession> {
    return GraphSession.open(bytes, readModelInputs(bytes), opts);
  }

  private static async open(bytes: Uint8Array, inputs: InputSpec[], opts: RunOptions): Promise<GraphSession> {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: opts.threads ?? os.availableParallelism(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableMemPattern: !opts.training,
      enableProfiling: opts.profilePrefix !== undefined,
      profileFilePrefix: opts.profilePrefix,
    });
    return new GraphSession(session, inputs, opts);
  }

  get inputNames(): readonly string[] {
    return [...this.specs.keys()];
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Runs the graph; `fetches` defaults to every output. `into` names float32 outputs that ORT writes straight
   * into the caller's arrays (fetched too, whether listed in `fetches` or not): a training step reuses its
   * gradient buffers instead of receiving ~100 MB of fresh memory per run.
   */
  async run(
    feeds: Record<string, Feed>,
    fetches: readonly string[] = this.session.outputNames,
    into: Readonly<Record<string, Preallocated>> = {},
  ): Promise<Record<string, Fetched>> {
    const names = [...new Set([...fetches, ...Object.keys(into)])];
    const unknownFetch = names.filter((f) => !this.session.outputNames.includes(f));
    if (unknownFetch.length)
      throw new DermtlError(
        `unknown output(s) ${unknownFetch.join(', ')}; the model has ${this.session.outputNames.join(', ')}`,
      );
    const tensors: Record<string, ort.Tensor> = {};
    for (const name of Object.keys(feeds)) {
      if (!this.specs.has(name))
        throw new DermtlError(`unknown input '${name}'; the model takes ${this.inputNames.join(', ')}`);
    }
    for (const spec of this.specs.values()) {
      const feed = feeds[spec.name];
      if (feed === undefined)
        throw new DermtlError(`missing input '${spec.name}' (${spec.dtype} ${shapeStr(spec.shape)})`);
      tensors[spec.name] = this.toTensor(spec, feed);
    }
    const targets: Record<string, ort.Tensor | null> = Object.fromEntries(names.map((f) => [f, null]));
    for (const [f, p] of Object.entries(into)) {
      if (p.data.length !== numel(p.dims))
        throw new Error(
          `output buffer for ${f} has ${p.data.length} values, its dims ${shapeStr(p.dims)} need ${numel(p.dims)}`,
        );
      targets[f] = new ort.Tensor('float32', p.data, [...p.dims]);
    }
    const out = await this.session.run(tensors, targets);
    return Object.fromEntries(
      names.map((f) => {
        const p = into[f];
        return [
          f,
          p ? { data: p.data, dims: [...p.dims] } : { data: out[f].data as Fetched['data'], dims: [...out[f].dims] },
        ];
      }),
    );
  }

  async profileEnd(): Promise<void> {
    this.session.endProfiling();
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private toTensor(spec: InputSpec, feed: Feed): ort.Tensor {
    const data = isWithDims(feed) ? feed.data : feed;
    const dims = isWithDims(feed) ? [...feed.dims] : spec.shape.map((d) => d);
    const label = `input '${spec.name}'`;
    if (
      isWithDims(feed) &&
      (dims.length !== spec.shape.length || dims.some((d, i) => spec.shape[i] >= 0 && d !== spec.shape[i]))
    ) {
      throw new DermtlError(`${label}: expected shape ${shapeStr(spec.shape)}, got ${shapeStr(dims)}`);
    }
    if (dims.some((d) => d < 0))
      throw new DermtlError(
        `${label}: the model shape ${shapeStr(spec.shape)} has free dimensions; feed { data, dims }`,
      );
    if (data.length !== numel(dims)) {
      throw new DermtlError(
        `${label}: expected shape ${shapeStr(dims)} (${numel(dims)} values), got ${data.length} values`,
      );
    }
    const typed = convert(spec.dtype, data, label);
    if (typed instanceof Float32Array && this.wantsFiniteCheck(spec.name)) assertFinite(typed, dims, label);
    return new ort.Tensor(spec.dtype, typed, dims);
  }

  private wantsFiniteCheck(name: string): boolean {
    const c = this.opts.checkFinite ?? true;
    return typeof c === 'boolean' ? c : c.includes(name);
  }
}

function isWithDims(f: Feed): f is { data: FeedData; dims: readonly number[] } {
  return !ArrayBuffer.isView(f) && !Array.isArray(f);
}

function convert(dtype: DType, data: FeedData, label: string): Float32Array | BigInt64Array | Uint8Array {
  if (dtype === 'float32') {
    if (data instanceof Float32Array) return data;
    if (Array.isArray(data)) return Float32Array.from(data);
    throw new DermtlError(`${label}: expected float32 data (Float32Array), got ${data.constructor.name}`);
  }
  if (dtype === 'int64') {
    if (data instanceof BigInt64Array) return data;
    if (data instanceof Int32Array || Array.isArray(data)) {
      const out = new BigInt64Array(data.length);
      for (let i = 0; i < data.length; i++) {
        if (!Number.isInteger(data[i]))
          throw new DermtlError(`${label}: value ${data[i]} at index ${i} is not an integer`);
        out[i] = BigInt(data[i]);
      }
      return out;
    }
    throw new DermtlError(
      `${label}: expected int64 data (BigInt64Array, Int32Array or integers), got ${data.constructor.name}`,
    );
  }
  if (data instanceof Uint8Array) return data;
  if (Array.isArray(data)) return Uint8Array.from(data, (v) => (v ? 1 : 0));
  throw new DermtlError(`${label}: expected bool data (Uint8Array), got ${data.constructor.name}`);
}

/** Rejects NaN and +-Inf; the message gives the first bad value's index and its coordinates. */
export function assertFinite(data: Float32Array, dims: readonly number[], label: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      throw new DermtlError(
        `${label} contains ${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'} at index ${i} (coordinates ${shapeStr(unravel(i, dims))})`,
      );
    }
  }
}

function unravel(i: number, dims: readonly number[]): number[] {
  const out = new Array<number>(dims.length);
  for (let a = dims.length - 1; a >= 0; a--) {
    out[a] = i % dims[a];
    i = Math.floor(i / dims[a]);
  }
  return out;
}
