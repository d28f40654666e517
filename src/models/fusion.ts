// Late fusion of the body location into the lesion head (beyond the paper; issue 9): lesion logits += U z, where z is
// the site as a one-hot when it is known and otherwise the model's OWN predicted location distribution, so one model
// serves both cases. U [P, Q] holds one logit offset per lesion label and site (what Figure 1's co-occurrence shows,
// learned jointly), zero unless the caller gives its start (training: the training part's site log-odds, config
// fusion.init). The predicted distribution enters as a constant (stopGradient): the lesion loss never bends the
// location head, whose metrics stay its own.
import type { Graph, Tensor } from '../graph/index.ts';
import { paramValue } from './resnet.ts';

/** The site-offset layer's weight [P, Q] (a head param: heads.ts HEAD_PREFIX). */
export const SITE_WEIGHT = 'heads/lesion_site/weight';

/** The fusion inputs (also in heads.ts HEAD_TENSORS). */
export const SITE_TENSORS = { locationGiven: 'location_given', locationKnown: 'location_known' } as const;

export interface SiteTermOptions {
  trainable: boolean;
  values?: ReadonlyMap<string, Float32Array>;
  requireValues?: boolean;
}

/**
 * U z for `locationProbs` [N, Q], with the inputs location_given [N, Q] (a one-hot row, zeros when the site is
 * unknown) and location_known [N, 1] (1 or 0): z = known * given + (1 - known) * stop(probs).
 */
export function siteTerm(
  g: Graph,
  locationProbs: Tensor,
  lesion: number,
  opts: SiteTermOptions,
): { term: Tensor; param: string } {
  const [n, q] = locationProbs.shape;
  const given = g.input(SITE_TENSORS.locationGiven, [n, q]);
  const known = g.input(SITE_TENSORS.locationKnown, [n, 1]);
  const predicted = g.stopGradient(locationProbs, { name: 'location_predicted' });
  const z = g.add(predicted, g.mul(known, g.sub(given, predicted)), { name: 'location_fused' });
  const shape = [lesion, q];
  const u = g.param(
    SITE_WEIGHT,
    shape,
    paramValue(SITE_WEIGHT, shape, opts, () => new Float32Array(lesion * q)),
    { trainable: opts.trainable },
  );
  return { term: g.gemm(z, u, undefined, { transB: true, name: 'lesion_site_logits' }), param: SITE_WEIGHT };
}

/**
 * Site feeds for `rows` of a batch of `batch` slots: per row the location index (< 0: unknown) and whether to reveal
 * it. Unrevealed and padding rows get zeros and known 0.
 */
export function siteFeeds(
  locations: readonly number[],
  reveal: readonly boolean[],
  batch: number,
  q: number,
): Record<string, Float32Array> {
  const given = new Float32Array(batch * q);
  const known = new Float32Array(batch);
  locations.forEach((c, b) => {
    if (c < 0 || c >= q || !reveal[b]) return;
    given[b * q + c] = 1;
    known[b] = 1;
  });
  return { [SITE_TENSORS.locationGiven]: given, [SITE_TENSORS.locationKnown]: known };
}
