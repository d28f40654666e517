// The training-free way of using a known body site (issue 9): a lesion-only model's scores shifted, per label, by
// the training part's site log-odds (naive Bayes: the image and the site taken as independent given the label),
//   score = sigmoid(logit p(label | image) + logit P(label | site) - logit P(label)),
// the same offsets a fusion model's site layer starts from (train/trainContext.ts siteLogOdds), with no weight to
// choose. The study scores it next to the trained fusion model ('lesion-site'), so a gain from fusion can be told
// apart from what the co-occurrence prior gives by itself.
import type { Sample } from '../data/types.ts';
import type { ScoreTable } from '../metrics/scores.ts';
import { siteLogOdds } from '../train/trainContext.ts';

/** Probabilities are clamped this far from 0 and 1 before their logit (a score of exactly 0 or 1 stays finite). */
const EPS = 1e-7;

/**
 * `table`'s lesion scores with each image's site (from `samples`, by image) applied as log-odds learned on `train`;
 * an image whose site is not among `locations` keeps its scores. The table's location scores (if any) are dropped.
 */
export function siteCorrected(
  table: ScoreTable,
  samples: ReadonlyMap<string, Sample>,
  train: readonly Sample[],
  locations: readonly string[],
): ScoreTable {
  const u = siteLogOdds(train, { lesion: table.lesionLabels, location: [...locations] });
  const q = locations.length;
  const logit = (p: number) => {
    const x = Math.min(Math.max(p, EPS), 1 - EPS);
    return Math.log(x / (1 - x));
  };
  const lesion = table.lesion.map((row, r) => {
    const site = samples.get(table.images[r])?.location;
    const j = site === undefined ? -1 : locations.indexOf(site);
    return j < 0
      ? Float64Array.from(row)
      : Float64Array.from(row, (p, i) => 1 / (1 + Math.exp(-(logit(p) + u[i * q + j]))));
  });
  return {
    images: [...table.images],
    lesionLabels: [...table.lesionLabels],
    locationLabels: [],
    lesion,
    location: table.images.map(() => new Float64Array(0)),
  };
}
