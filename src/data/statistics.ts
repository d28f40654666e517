import type { Manifest, Sample } from './types.ts';

export interface LabelCount {
  label: string;
  count: number;
}

export interface ManifestStats {
  images: number;
  groups: number;
  /** Images per lesion label, by descending count then name. */
  lesions: LabelCount[];
  /** Images per location label, by descending count then name. */
  locations: LabelCount[];
  /** lesionsPerImage[k] = number of images with exactly k lesion labels (k = 0..max). */
  lesionsPerImage: number[];
  imagesWithoutLesion: number;
}

/** Counts per label, sorted by descending count, ties by name (the order every table and figure uses). */
export function countLabels(labels: Iterable<string>): LabelCount[] {
  const counts = new Map<string, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([label, count]) => ({ label, count })).sort(byCountThenName);
}

function byCountThenName(a: LabelCount, b: LabelCount): number {
  return b.count - a.count || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
}

export function manifestStats(m: Pick<Manifest, 'samples'>): ManifestStats {
  const samples = m.samples;
  const maxK = samples.reduce((mx, s) => Math.max(mx, s.lesions.length), 0);
  const lesionsPerImage = new Array<number>(maxK + 1).fill(0);
  for (const s of samples) lesionsPerImage[s.lesions.length]++;
  return {
    images: samples.length,
    groups: new Set(samples.map((s) => s.group)).size,
    lesions: countLabels(samples.flatMap((s) => [...new Set(s.lesions)])),
    locations: countLabels(samples.map((s) => s.location)),
    lesionsPerImage: samples.length ? lesionsPerImage : [],
    imagesWithoutLesion: lesionsPerImage[0] ?? 0,
  };
}

/**
 * Figure 1 of the paper: how each lesion label distributes over body locations.
 * counts[i][j] = images with lesion i at location j; lesionTotals[i] = images with lesion i;
 * R[i][j] = counts[i][j] / lesionTotals[i], so each row sums to 1 (one location per image).
 */
export function cooccurrence(samples: Sample[]): {
  lesions: string[];
  locations: string[];
  counts: number[][];
  lesionTotals: number[];
  R: number[][];
} {
  const lesions = countLabels(samples.flatMap((s) => [...new Set(s.lesions)])).map((c) => c.label);
  const locations = countLabels(samples.map((s) => s.location)).map((c) => c.label);
  const li = new Map(lesions.map((l, i) => [l, i]));
  const lj = new Map(locations.map((l, j) => [l, j]));
  const counts = lesions.map(() => new Array<number>(locations.length).fill(0));
  const lesionTotals = new Array<number>(lesions.length).fill(0);
  for (const s of samples) {
    const j = lj.get(s.location)!;
    for (const l of new Set(s.lesions)) {
      const i = li.get(l)!;
      counts[i][j]++;
      lesionTotals[i]++;
    }
  }
  const R = counts.map((row, i) => row.map((c) => c / lesionTotals[i]));
  return { lesions, locations, counts, lesionTotals, R };
}

/** Pseudo-count that shrinks a rare site's label rates towards the label's overall rate (siteLabelRates). */
export const SITE_PRIOR_COUNT = 10;

/**
 * How often each lesion label occurs at each body site, over the images with a listed lesion label and a listed
 * site: prior[i] = P(label i) with add-one, rate[i * Q + j] = P(label i | site j) smoothed towards prior[i] with
 * SITE_PRIOR_COUNT pseudo-images (a site seen rarely moves a label's rate little). The site prior baseline scores
 * with rate; a fusion model's site layer starts at its log-odds shift.
 */
export function siteLabelRates(
  samples: readonly Sample[],
  lesionLabels: readonly string[],
  locationLabels: readonly string[],
): { prior: Float64Array; rate: Float64Array } {
  const P = lesionLabels.length;
  const Q = locationLabels.length;
  const lesionIndex = new Map(lesionLabels.map((l, i) => [l, i]));
  const siteIndex = new Map(locationLabels.map((l, j) => [l, j]));
  const counts = new Float64Array(P * Q);
  const perSite = new Float64Array(Q);
  const perLabel = new Float64Array(P);
  let n = 0;
  for (const s of samples) {
    const j = siteIndex.get(s.location);
    const present = [...new Set(s.lesions)].map((l) => lesionIndex.get(l)).filter((i): i is number => i !== undefined);
    if (j === undefined || present.length === 0) continue;
    n++;
    perSite[j]++;
    for (const i of present) {
      counts[i * Q + j]++;
      perLabel[i]++;
    }
  }
  const prior = Float64Array.from(perLabel, (c) => (c + 1) / (n + 2));
  const rate = new Float64Array(P * Q);
  for (let i = 0; i < P; i++)
    for (let j = 0; j < Q; j++)
      rate[i * Q + j] = (counts[i * Q + j] + SITE_PRIOR_COUNT * prior[i]) / (perSite[j] + SITE_PRIOR_COUNT);
  return { prior, rate };
}

/** The `dermtl stats` text: one fact per line, label tables sorted by count. */
export function formatStats(s: ManifestStats): string[] {
  const width = String(Math.max(s.images, 1)).length;
  const table = (cs: LabelCount[]) =>
    cs.map((c) => `  ${String(c.count).padStart(width)}  ${pct(c.count, s.images)}  ${c.label}`);
  return [
    `images: ${s.images}`,
    `groups: ${s.groups}`,
    `images with no lesion label: ${s.imagesWithoutLesion}`,
    `lesion labels per image: ${s.lesionsPerImage.map((n, k) => `${k}:${n}`).join(' ')}`,
    `lesion labels (${s.lesions.length}):`,
    ...table(s.lesions),
    `locations (${s.locations.length}):`,
    ...table(s.locations),
  ];
}

function pct(n: number, total: number): string {
  return `${((100 * n) / Math.max(total, 1)).toFixed(1).padStart(5)}%`;
}
