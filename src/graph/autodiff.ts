// Reverse-mode autodiff over a built Graph: walks the op records backwards, applies rules.ts, accumulates
// gradients with Add, and returns ONE graph holding forward and backward pass.
import type { Graph } from './builder.ts';
import { rules } from './rules.ts';
import type { Tensor } from './types.ts';
import { numel, sameShape, shapeStr } from './types.ts';

export interface Loss {
  tensor: Tensor;
  /** Multiplier of this loss in the total that is differentiated (the per-task weight); default 1. */
  weight?: number;
}

export interface TrainingGraphOptions {
  /**
   * Names (or tensors) to differentiate with respect to; default: every trainable param. Data inputs may
   * be added (e.g. to check dX in tests).
   */
  wrt?: readonly (string | Tensor)[];
  /** What to do with a wrt tensor that no loss depends on: 'error' (default) or output zeros. */
  unused?: 'error' | 'zeros';
}

/**
 * The training graph: a copy of `forward` plus the backward pass. Inputs: the forward's inputs (batch,
 * labels, weights and every trainable param). Outputs: the forward's outputs, each loss (under its own
 * name) and `grad/<name>` for every wrt tensor, the gradient of sum_i weight_i * loss_i.
 */
export function buildTrainingGraph(forward: Graph, losses: readonly (Tensor | Loss)[], opts: TrainingGraphOptions = {}): Graph {
  const g = forward.clone();
  const opCount = g.ops.length;
  const wrt = (opts.wrt ?? forward.params({ trainable: true }).map((p) => p.name)).map((w) => (typeof w === 'string' ? w : w.name));
  for (const name of wrt) {
    const t = g.tensor(name);
    if (t.dtype !== 'float32') throw new Error(`cannot differentiate with respect to ${name}: it is ${t.dtype}`);
  }
  const depends = dependsOn(g, wrt);
  const grads = new Map<string, Tensor[]>();
  const push = (name: string, d: Tensor) => grads.set(name, [...(grads.get(name) ?? []), d]);

  for (const l of losses.map((x) => ('tensor' in x ? x : { tensor: x }))) {
    if (numel(l.tensor.shape) !== 1 || l.tensor.dtype !== 'float32') throw new Error(`loss ${l.tensor.name} must be a float32 scalar, got ${shapeStr(l.tensor.shape)}`);
    push(l.tensor.name, g.constant([l.weight ?? 1], l.tensor.shape));
  }

  const done = new Set<string>();
  for (let i = opCount - 1; i >= 0; i--) {
    const op = g.ops[i];
    const contributions = grads.get(op.output.name);
    if (!contributions) continue;
    const needs = op.inputs.map((t) => depends.has(t.name));
    done.add(op.output.name);
    if (!needs.some(Boolean)) continue;
    const rule = rules[op.type];
    if (!rule) throw new Error(`no gradient rule for ${op.type} (producing ${op.output.name})`);
    const dIn = rule(g, op, accumulate(g, contributions), needs);
    op.inputs.forEach((t, k) => {
      if (!needs[k]) return;
      const d = dIn[k];
      if (!d) throw new Error(`${op.type} has no gradient for its input ${k} (${t.name})`);
      if (!sameShape(d.shape, t.shape)) throw new Error(`bug: ${op.type} gradient for ${t.name} is ${shapeStr(d.shape)}, not ${shapeStr(t.shape)}`);
      push(t.name, d);
    });
  }

  const wrtSet = new Set(wrt);
  for (const name of grads.keys()) {
    if (!done.has(name) && !wrtSet.has(name) && depends.has(name)) {
      throw new Error(`gradient cannot flow back through the node producing ${name} (an op without a gradient record)`);
    }
  }

  for (const l of losses) {
    const t = 'tensor' in l ? l.tensor : l;
    if (!g.outputs.some((o) => o.name === t.name)) g.output(t);
  }
  for (const name of wrt) {
    const list = grads.get(name);
    if (!list && opts.unused !== 'zeros') throw new Error(`no loss depends on ${name}; freeze it or pass unused: 'zeros'`);
    g.output(list ? accumulate(g, list) : g.zeros(g.tensor(name).shape), `grad/${name}`);
  }
  return g;
}

/** Names of every tensor whose value depends on one of `roots` (true dataflow over all emitted nodes). */
function dependsOn(g: Graph, roots: readonly string[]): Set<string> {
  const set = new Set(roots);
  for (const node of g.nodes) {
    if (node.inputs.some((i) => set.has(i))) for (const o of node.outputs) set.add(o);
  }
  return set;
}

/** Sums gradient contributions with Add (measured ~2x faster than Sum for pairs). */
function accumulate(g: Graph, list: readonly Tensor[]): Tensor {
  return list.slice(1).reduce((acc, t) => g.add(acc, t), list[0]);
}
