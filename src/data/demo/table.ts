/**
 * The label model of the SYNTHETIC demo dataset, in one place: which body sites and lesion types exist,
 * how often each site occurs, and how likely each lesion type is on each site. The numbers are invented,
 * in the spirit of the paper's Figure 1 (lesion x location co-occurrence): scales and plaques on
 * scalp/elbows/knees, vesicles on hands and feet, pigmented macules and telangiectasia on face and back,
 * ulcers on legs and feet. They are weights, not probabilities: each row is normalised when sampling.
 */

export const SITES = ['scalp', 'face', 'chest', 'back', 'arm', 'leg', 'hand', 'foot'] as const;
export type Site = (typeof SITES)[number];

export const LESIONS = [
  'papule',
  'plaque',
  'scale',
  'crust',
  'macule',
  'vesicle',
  'erosion',
  'nodule',
  'ulcer',
  'telangiectasia',
] as const;
export type Lesion = (typeof LESIONS)[number];

/** How often each site is photographed (a mild imbalance, as in real atlases). */
export const SITE_WEIGHTS: Record<Site, number> = {
  scalp: 0.8,
  face: 1.5,
  chest: 0.9,
  back: 1.2,
  arm: 1.1,
  leg: 1.2,
  hand: 0.8,
  foot: 0.6,
};

/** Site x lesion weights. Read a row as "on this site, lesion X is k times as likely as a weight-1 lesion". */
// prettier-ignore
export const LESION_WEIGHTS: Record<Site, Record<Lesion, number>> = {
  //        papule plaque scale crust macule vesicle erosion nodule ulcer telangiectasia
  scalp: row(2, 5, 8, 4, 1, 1, 2, 2, 1, 0.5),
  face: row(5, 1, 1, 3, 6, 2, 2, 3, 1, 7),
  chest: row(6, 3, 2, 1, 3, 2, 1, 2, 0.5, 2),
  back: row(3, 3, 2, 1, 8, 1, 1, 3, 0.5, 1),
  arm: row(3, 7, 6, 2, 2, 2, 2, 1, 1, 0.5),
  leg: row(2, 5, 4, 2, 2, 1, 2, 2, 7, 1),
  hand: row(2, 2, 3, 2, 1, 9, 3, 1, 1, 0.3),
  foot: row(1, 2, 4, 2, 1, 5, 3, 1, 6, 0.3),
};

/** How many distinct lesion types an image shows: P(0), P(1), P(2), P(3). No lesion at all is rare. */
export const LESION_COUNT_WEIGHTS = [0.02, 0.6, 0.3, 0.08];

/** How many images (views of one drawn scene) a group has: P(1), P(2), P(3). */
export const GROUP_SIZE_WEIGHTS = [0.4, 0.35, 0.25];

function row(...w: number[]): Record<Lesion, number> {
  return Object.fromEntries(LESIONS.map((l, i) => [l, w[i]])) as Record<Lesion, number>;
}

/** The lesion a site's row favours most (what the frequency test checks against). */
export function mostLikelyLesion(site: Site): Lesion {
  const w = LESION_WEIGHTS[site];
  return LESIONS.reduce((best, l) => (w[l] > w[best] ? l : best), LESIONS[0]);
}
