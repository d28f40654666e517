// A head ensemble: K sets of heads on the same features, each with its own init and dropout (buildHeads' scope
// m0..m(K-1)), trained side by side on the same batches with their own losses (addHeadLosses sums them, so each
// member's gradient is exactly its own), and averaged in LOGIT space. Averaged logits are linear in the members'
// last layers, so the ensemble is exactly one set of heads whose shared layer is K times as wide (mergeMembers):
// the saved model is an ordinary single-head network that every reader of a model folder already understands.
import type { Graph, Tensor } from '../graph/index.ts';
import { concatFloat32 } from '../util/float32.ts';
import {
  buildHeads,
  fuseSite,
  HEAD_PREFIX,
  HEAD_TENSORS,
  LESION_BASE_LOGITS,
  memberScope,
  type Heads,
  type HeadsConfig,
  type HeadsOptions,
} from './heads.ts';

/** K member heads on `features` and their mean logits (named as the plain heads' logits and probs). */
export function buildMemberHeads(
  g: Graph,
  features: Tensor,
  opts: Omit<HeadsOptions, 'scope'>,
  members: number,
): Heads {
  if (!Number.isInteger(members) || members < 2)
    throw new Error(`a head ensemble needs at least 2 members, got ${members}`);
  const list = Array.from({ length: members }, (_, k) => buildHeads(g, features, { ...opts, scope: memberScope(k) }));
  const mean = (logits: Tensor[], name: string) =>
    g.mul(
      logits.reduce((a, b) => g.add(a, b)),
      g.scalar(1 / members),
      { name },
    );
  const T = HEAD_TENSORS;
  const heads: Heads = {
    params: list.flatMap((h) => h.params),
    dropoutMasks: list.flatMap((h) => h.dropoutMasks),
    members: list,
  };
  if (opts.lesion > 0)
    heads.lesionLogits = mean(
      list.map((h) => h.lesionLogits!),
      opts.fusion ? LESION_BASE_LOGITS : T.lesionLogits,
    );
  if (opts.location > 0) {
    heads.locationLogits = mean(
      list.map((h) => h.locationLogits!),
      T.locationLogits,
    );
    heads.locationProbs = g.softmax(heads.locationLogits, 1, { name: T.locationProbs });
  }
  if (opts.fusion) fuseSite(g, heads, opts);
  if (heads.lesionLogits) heads.lesionProbs = g.sigmoid(heads.lesionLogits, { name: T.lesionProbs });
  return heads;
}

/** The single-head config equivalent to K members of `c`: the shared layer K times as wide. */
export function mergedHeadsConfig<C extends HeadsConfig>(c: C, members: number): C {
  return c.shared ? { ...c, shared: { ...c.shared, hidden: c.shared.hidden * members } } : c;
}

/**
 * The member params (heads/m<k>/...) as the params of mergedHeadsConfig's single heads, computing the same
 * logits: shared layers stacked ([K*H, d]); each output layer's weights side by side and divided by K
 * ([P, K*H]), its bias the members' mean. Without a shared layer the output layers are simply averaged.
 * Params outside the heads pass through unchanged.
 */
export function mergeMembers(params: ReadonlyMap<string, Float32Array>, members: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  // the trunk's params, and head params the members share (a fusion model's site layer), pass through
  const memberParam = new RegExp(`^${HEAD_PREFIX}m\\d+/`);
  for (const [k, v] of params) if (!memberParam.test(k)) out.set(k, v);
  const member = (k: number, layer: string, what: 'weight' | 'bias') =>
    params.get(`${HEAD_PREFIX}${memberScope(k)}/${layer}/${what}`);
  const ks = [...Array(members).keys()];
  const shared = member(0, 'shared', 'weight') !== undefined;
  if (shared) {
    out.set(`${HEAD_PREFIX}shared/weight`, concatFloat32(ks.map((k) => member(k, 'shared', 'weight')!)));
    out.set(`${HEAD_PREFIX}shared/bias`, concatFloat32(ks.map((k) => member(k, 'shared', 'bias')!)));
  }
  for (const layer of ['lesion', 'location']) {
    if (!member(0, layer, 'weight')) continue;
    const ws = ks.map((k) => member(k, layer, 'weight')!);
    const bs = ks.map((k) => member(k, layer, 'bias')!);
    const rows = bs[0].length;
    out.set(`${HEAD_PREFIX}${layer}/weight`, shared ? sideBySide(ws, rows, 1 / members) : average(ws));
    out.set(`${HEAD_PREFIX}${layer}/bias`, average(bs));
  }
  return out;
}

/** Row r of the result: row r of every matrix [rows, cols_k] one after the other, times `scale`. */
function sideBySide(ms: Float32Array[], rows: number, scale: number): Float32Array {
  const cols = ms.map((m) => m.length / rows);
  const width = cols.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let at = r * width;
    ms.forEach((m, k) => {
      for (let c = 0; c < cols[k]; c++) out[at + c] = m[r * cols[k] + c] * scale;
      at += cols[k];
    });
  }
  return out;
}

function average(xs: Float32Array[]): Float32Array {
  const out = new Float32Array(xs[0].length);
  for (const x of xs) for (let i = 0; i < x.length; i++) out[i] += x[i] / xs.length;
  return out;
}
