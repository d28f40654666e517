// Does a lesion label's Grad-CAM map fall on the drawn lesion? For a synthetic demo photo the generator knows each
// lesion's box (data/demo demoLesionBoxes): the share of the map's mass inside the box of its label, against chance
// (the box's share of the explained view: what a flat map would score) and a centre prior (a Gaussian bump at the
// view's centre: the demo draws its lesions near the middle, so "look at the centre" scores above chance too).
import type { DemoLesionBox } from '../data/demo/generate.ts';
import type { Explanation } from '../serve/explain.ts';
import { mapOnPhoto, massInBox, viewRegion } from '../image/heatmap.ts';

export interface BoxShare {
  image: string;
  label: string;
  /** Share of the label's map mass inside its lesion's box. */
  share: number;
  /** The box's share of the explained view's area (a flat map's score). */
  chance: number;
  /** A centred Gaussian bump's share (sigma = a quarter of the view). */
  centre: number;
}

/**
 * One BoxShare per lesion label drawn in the photo whose map is not empty (a label the model's head lacks, or whose
 * map is all zero, is left out and counted in `empty`). width x height: the photo's size (the boxes' pixels).
 */
export function lesionBoxShares(
  image: string,
  e: Explanation,
  boxes: readonly DemoLesionBox[],
  width: number,
  height: number,
): { shares: BoxShare[]; empty: number } {
  const shares: BoxShare[] = [];
  let empty = 0;
  const region = viewRegion(e.view, width, height);
  const centre = centrePrior(e, width, height);
  for (const { lesion, box } of boxes) {
    const m = e.lesions.find((l) => l.label === lesion);
    if (!m) continue;
    if (!(m.max > 0)) {
      empty++;
      continue;
    }
    const values = mapOnPhoto({ h: e.grid.h, w: e.grid.w, values: m.map }, e.view, width, height);
    const inter =
      Math.max(0, Math.min(box.x1, region.x1) - Math.max(box.x0, region.x0)) *
      Math.max(0, Math.min(box.y1, region.y1) - Math.max(box.y0, region.y0));
    shares.push({
      image,
      label: lesion,
      share: massInBox(values, width, height, box),
      chance: inter / ((region.x1 - region.x0) * (region.y1 - region.y0)),
      centre: massInBox(centre, width, height, box),
    });
  }
  return { shares, empty };
}

/** A Gaussian bump at the explained view's centre (sigma a quarter of its side) as a picture-sized map. */
function centrePrior(e: Explanation, width: number, height: number): Float32Array {
  const { h, w } = e.grid;
  const values = Array.from({ length: h * w }, (_, i) => {
    const dy = ((Math.floor(i / w) + 0.5) / h - 0.5) / 0.25,
      dx = (((i % w) + 0.5) / w - 0.5) / 0.25;
    return Math.exp(-(dx * dx + dy * dy) / 2);
  });
  return mapOnPhoto({ h, w, values }, e.view, width, height);
}

/** Mean share, chance and centre prior, and how often the map beats chance, over a list of BoxShares. */
export function summarise(shares: readonly BoxShare[]): {
  n: number;
  share: number;
  chance: number;
  centre: number;
  aboveChance: number;
} {
  const mean = (f: (s: BoxShare) => number) => shares.reduce((a, s) => a + f(s), 0) / Math.max(1, shares.length);
  return {
    n: shares.length,
    share: mean((s) => s.share),
    chance: mean((s) => s.chance),
    centre: mean((s) => s.centre),
    aboveChance: mean((s) => +(s.share > s.chance)),
  };
}

/** Spearman's rank correlation of two maps (average ranks for ties); NaN when one is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const rank = (v: ArrayLike<number>) => {
    const idx = Array.from(v, (x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(idx.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1][0] === idx[i][0]) j++;
      for (let k = i; k <= j; k++) r[idx[k][1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a),
    rb = rank(b);
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  const ma = mean(ra),
    mb = mean(rb);
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < ra.length; i++) {
    ab += (ra[i] - ma) * (rb[i] - mb);
    aa += (ra[i] - ma) ** 2;
    bb += (rb[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}
