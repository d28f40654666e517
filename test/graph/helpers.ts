// Shared test plumbing: seeded data, and "probe" gradient checks. A probe loss sum(y * R) with a fixed random
// R makes dL/dy = R, so one run checks an op's backward pass for an arbitrary upstream gradient.
import { Rng } from '../../src/util/rng.ts';
import { Graph, buildTrainingGraph, GraphSession, type Tensor, type Feed } from '../../src/graph/index.ts';
import { tensor, type T } from './reference.ts';

/**
 * Tolerance for fp32 ORT results against the fp64 references, as max|err| / max|ref| per tensor. fp32 has
 * a unit roundoff of 6e-8; the sums in these tiny ops have at most a few hundred terms, so a worst-case
 * bound is ~2e-5 and typical errors are ~1e-7..1e-6. 1e-5 leaves room while still catching any wrong
 * index, missing term or off-by-one window (those give errors of order 1e-1..1).
 */
export const TOL = 1e-5;

export function randomData(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const r = Rng.derive(20240601, 'graph-test', seed);
  return Float32Array.from({ length: n }, () => r.uniform(lo, hi));
}

export const ref = (shape: readonly number[], data: ArrayLike<number>): T => tensor([...shape], data);

export interface ProbeResult {
  y: Float32Array;
  grads: Record<string, Float32Array>;
  probe: T;
  graph: Graph;
}

/**
 * Outputs `y`, differentiates sum(y * R) with respect to `wrt` and runs it once. Returns y, the gradients
 * (by wrt name) and R.
 */
export async function runProbe(
  g: Graph,
  y: Tensor,
  wrt: readonly string[],
  feeds: Record<string, Feed>,
  seed = 1,
): Promise<ProbeResult> {
  const r = randomData(
    1000 + seed,
    y.shape.reduce((a, b) => a * b, 1),
  );
  const loss = g.reduceSum(g.mul(y, g.constant(r, y.shape)), undefined, false, { name: 'loss' });
  g.output(y, 'y');
  const tg = buildTrainingGraph(g, [loss], { wrt });
  const s = await GraphSession.fromGraph(tg, { training: true });
  try {
    const out = await s.run(feeds);
    const grads = Object.fromEntries(wrt.map((w) => [w, out[`grad/${w}`].data as Float32Array]));
    return { y: out.y.data as Float32Array, grads, probe: ref(y.shape, r), graph: tg };
  } finally {
    await s.release();
  }
}

/** Feeds for every trainable param at its declared value. */
export function paramFeeds(g: Graph): Record<string, Float32Array> {
  return Object.fromEntries(g.params({ trainable: true }).map((p) => [p.name, p.data]));
}
