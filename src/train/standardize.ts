// Feature standardisation of frozen-trunk training. Pooled ResNet features are non-negative, with per-dimension
// scales that differ by orders of magnitude, so SGD with one learning rate (and one weight decay) suits some
// dimensions and not others; a linear probe standardises them first, and so do we: x' = (x - mean) / std with the
// TRAINING part's statistics. The saved model takes raw features (the full network image -> probabilities), so
// at the end the affine map is folded into the first layer(s) that read the features:
//   W (x - m) / s + b = (W / s) x + (b - W (m / s)).
import { HEAD_PREFIX } from '../models/heads.ts';

export interface FeatureStats {
  mean: Float32Array;
  /** 1 / std, 1 where a dimension is constant (it then only shifts). */
  invStd: Float32Array;
}

/** Mean and 1/std per dimension over `rows` feature vectors of length `dim` (fp64 sums). */
export function featureStats(rows: Iterable<Float32Array>, dim: number): FeatureStats {
  const sum = new Float64Array(dim);
  const sq = new Float64Array(dim);
  let n = 0;
  for (const r of rows) {
    for (let d = 0; d < dim; d++) {
      sum[d] += r[d];
      sq[d] += r[d] * r[d];
    }
    n++;
  }
  if (n === 0) throw new Error('featureStats: no rows');
  const mean = Float32Array.from(sum, (s) => s / n);
  const invStd = Float32Array.from(sq, (q, d) => {
    const sd = Math.sqrt(Math.max(q / n - (sum[d] / n) ** 2, 0));
    return sd > 1e-6 ? 1 / sd : 1;
  });
  return { mean, invStd };
}

/** x' = (x - mean) * invStd, in place, for a batch of feature rows. */
export function standardizeInPlace(x: Float32Array, s: FeatureStats): Float32Array {
  const dim = s.mean.length;
  for (let i = 0; i < x.length; i++) {
    const d = i % dim;
    x[i] = (x[i] - s.mean[d]) * s.invStd[d];
  }
  return x;
}

/** The head layers that read the features: the shared layer when there is one, else the lesion and location layers. */
export function firstLayers(params: ReadonlyMap<string, Float32Array>): string[] {
  const shared = `${HEAD_PREFIX}shared`;
  if (params.has(`${shared}/weight`)) return [shared];
  return [`${HEAD_PREFIX}lesion`, `${HEAD_PREFIX}location`].filter((l) => params.has(`${l}/weight`));
}

/** Copies of the head params with the standardisation folded into the first layer(s) (weights [out, dim]). */
export function foldStandardization(
  params: ReadonlyMap<string, Float32Array>,
  s: FeatureStats,
): Map<string, Float32Array> {
  const out = new Map([...params].map(([k, v]) => [k, v.slice()]));
  const dim = s.mean.length;
  for (const layer of firstLayers(params)) {
    const w = out.get(`${layer}/weight`)!;
    const b = out.get(`${layer}/bias`)!;
    const rows = w.length / dim;
    for (let o = 0; o < rows; o++) {
      let shift = 0;
      for (let d = 0; d < dim; d++) {
        const k = o * dim + d;
        w[k] *= s.invStd[d];
        shift += w[k] * s.mean[d];
      }
      b[o] -= shift;
    }
  }
  return out;
}
