/** Element types the graph builder knows. Training graphs are float32; labels are int64; masks are bool. */
export type DType = 'float32' | 'int64' | 'bool';

/** A value in a graph: its ONNX name, its static shape and element type. Handles are plain data. */
export interface Tensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export type AttrValue = number | string | readonly number[];

/** One ONNX node as emitted (attributes already in ONNX form; ints vs floats decided by `floatAttrs`). */
export interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  /** Names of numeric attributes that ONNX wants as FLOAT/FLOATS rather than INT/INTS. */
  floatAttrs?: string[];
  /** Numeric attributes that ONNX wants as a one-element float TENSOR (ConstantOfShape's value). */
  tensorAttrs?: string[];
}

/**
 * One logical operation as the user wrote it (a typed op method call). Autodiff walks these records in
 * reverse; `node` is the index of its main ONNX node (so a gradient rule can ask it for an extra output,
 * e.g. MaxPool's Indices). Composite ops (the losses) emit several nodes but are one record.
 */
export interface OpRecord {
  readonly type: string;
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  readonly attrs: Readonly<Record<string, unknown>>;
  readonly node: number;
}

export interface Initializer {
  name: string;
  shape: readonly number[];
  dtype: DType;
  data: Float32Array | BigInt64Array | Uint8Array;
}

export interface InputSpec {
  name: string;
  shape: readonly number[];
  dtype: DType;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
