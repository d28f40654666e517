// Reads an onnxruntime profile (enableProfiling's JSON trace) and sums kernel time by op type and by node, for
// the LAST model run only: earlier runs are warm-up (the arena still growing) and would blur the picture.
import { readFileSync } from 'node:fs';

interface TraceEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: {
    op_name?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}

export interface OpTypeTime {
  op: string;
  ms: number;
  share: number;
  nodes: number;
}

export interface NodeTime {
  node: string;
  op: string;
  ms: number;
  /** 'forward' / 'backward' from the node's index in our serialised graph (names are `<OpType>_<index>`); '?' for nodes ORT made. */
  pass: 'forward' | 'backward' | '?';
  inputs: string;
}

export interface ProfileSummary {
  runMs: number;
  kernelMs: number;
  /** Kernel ms of the forward nodes, the backward nodes and nodes ORT made ('?': fused or layout nodes). */
  byPass: Record<NodeTime['pass'], number>;
  byOp: OpTypeTime[];
  topNodes: NodeTime[];
}

/**
 * `forwardNodes`: how many nodes the forward part of the training graph has (the backward nodes follow them in
 * the serialised order), so each node can be labelled forward or backward.
 */
export function summarizeProfile(path: string, forwardNodes: number, topN = 12): ProfileSummary {
  const events = JSON.parse(readFileSync(path, 'utf8')) as TraceEvent[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  if (!runs.length) throw new Error(`${path}: no model_run event (was the session run while profiling?)`);
  const last = runs[runs.length - 1];
  const kernels = events.filter(
    (e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= last.ts && e.ts <= last.ts + last.dur,
  );
  const kernelUs = kernels.reduce((s, e) => s + e.dur, 0);
  const byOp = new Map<string, { us: number; nodes: number }>();
  for (const e of kernels) {
    const op = e.args?.op_name ?? '?';
    const o = byOp.get(op) ?? { us: 0, nodes: 0 };
    o.us += e.dur;
    o.nodes++;
    byOp.set(op, o);
  }
  const nodes: NodeTime[] = kernels.map((e) => {
    const node = e.name.slice(0, -'_kernel_time'.length);
    const index = /^[A-Za-z]+_(\d+)/.exec(node);
    const pass = index ? (Number(index[1]) < forwardNodes ? 'forward' : 'backward') : '?';
    const inputs = (e.args?.input_type_shape ?? []).map((s) => `[${Object.values(s)[0]?.join(',')}]`).join(' ');
    return { node, op: e.args?.op_name ?? '?', ms: e.dur / 1000, pass, inputs };
  });
  const byPass = { forward: 0, backward: 0, '?': 0 };
  for (const n of nodes) byPass[n.pass] += n.ms;
  return {
    runMs: last.dur / 1000,
    kernelMs: kernelUs / 1000,
    byPass,
    byOp: [...byOp]
      .map(([op, o]) => ({ op, ms: o.us / 1000, share: o.us / kernelUs, nodes: o.nodes }))
      .sort((a, b) => b.ms - a.ms),
    topNodes: nodes.sort((a, b) => b.ms - a.ms).slice(0, topN),
  };
}

/** Lines for the console: the op-type table and the slowest nodes. */
export function formatProfile(p: ProfileSummary, topOps = 8): string[] {
  const pass = Object.entries(p.byPass)
    .map(([k, ms]) => `${k} ${ms.toFixed(0)}`)
    .join(', ');
  const lines = [
    `ORT profile of one training step: run ${p.runMs.toFixed(0)} ms, kernels ${p.kernelMs.toFixed(0)} ms (${pass})`,
    'top op types:',
  ];
  for (const o of p.byOp.slice(0, topOps)) {
    lines.push(
      `  ${o.op.padEnd(22)} ${o.ms.toFixed(0).padStart(7)} ms  ${(100 * o.share).toFixed(1).padStart(5)}%  (${o.nodes} nodes)`,
    );
  }
  lines.push('slowest nodes:');
  for (const n of p.topNodes)
    lines.push(
      `  ${n.ms.toFixed(1).padStart(7)} ms  ${n.pass.padEnd(8)} ${n.op.padEnd(16)} ${n.node.padEnd(26)} ${n.inputs}`,
    );
  return lines;
}
