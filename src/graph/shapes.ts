// Static shape inference for the ops the builder emits. Every function throws a plain Error naming the op
// and the offending shapes: a wrong shape here is a bug in the network definition, not user input.
import { shapeStr } from './types.ts';

export type Pair = readonly [number, number];
export type Quad = readonly [number, number, number, number];

export function pair(v: number | readonly number[] | undefined, dflt: number, what: string): Pair {
  if (v === undefined) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  if (v.length !== 2) throw new Error(`${what}: expected 2 values, got ${v.length}`);
  return [v[0], v[1]];
}

/** ONNX pads order for 2-D: [top, left, bottom, right]. A number pads all sides; a pair means [h, w]. */
export function quad(v: number | readonly number[] | undefined, what: string): Quad {
  if (v === undefined) return [0, 0, 0, 0];
  if (typeof v === 'number') return [v, v, v, v];
  if (v.length === 2) return [v[0], v[1], v[0], v[1]];
  if (v.length !== 4) throw new Error(`${what}: pads need 1, 2 or 4 values, got ${v.length}`);
  return [v[0], v[1], v[2], v[3]];
}

/** Output size of a sliding window (conv / pool, floor mode). */
export function windowOut(
  size: number,
  k: number,
  stride: number,
  padBegin: number,
  padEnd: number,
  dilation = 1,
): number {
  return Math.floor((size + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

/** Numpy-style broadcast of two shapes. */
export function broadcast(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1)
      throw new Error(`${what}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Shape after Slice with positive steps (ONNX clamping rules for starts/ends). */
export function sliceShape(
  shape: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[],
  steps: readonly number[],
): number[] {
  const out = [...shape];
  axes.forEach((ax, i) => {
    const d = shape[ax];
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const s = clamp(starts[i]);
    const e = clamp(ends[i]);
    if (steps[i] <= 0) throw new Error('slice: only positive steps are supported');
    out[ax] = Math.max(0, Math.ceil((e - s) / steps[i]));
  });
  return out;
}

/** Resolve a Reshape target with at most one -1 (0 is not allowed: shapes here are fully static). */
export function resolveReshape(from: readonly number[], to: readonly number[]): number[] {
  const total = from.reduce((a, b) => a * b, 1);
  const known = to.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const free = to.filter((d) => d === -1).length;
  if (free > 1 || to.some((d) => d === 0 || d < -1)) throw new Error(`reshape: bad target ${shapeStr(to)}`);
  const out = to.map((d) => (d === -1 ? total / known : d));
  if (out.reduce((a, b) => a * b, 1) !== total || out.some((d) => !Number.isInteger(d))) {
    throw new Error(`reshape: cannot reshape ${shapeStr(from)} to ${shapeStr(to)}`);
  }
  return out;
}
