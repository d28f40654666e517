import { z } from 'zod';
import { DermtlError } from '../util/errors.ts';
import { readJsonWith } from '../util/jsonFile.ts';
import { loadManifest, sampleToRow, writeManifest } from './manifest.ts';
import { countLabels, type LabelCount } from './statistics.ts';
import type { Sample } from './types.ts';

/** `{"lesion": {"from": "to"}, "location": {"from": "to"}}`: synonyms or sub-types folded into one label. */
const MergeSchema = z.strictObject({
  lesion: z.record(z.string(), z.string().trim().min(1)).optional(),
  location: z.record(z.string(), z.string().trim().min(1)).optional(),
});
export type MergeSpec = z.infer<typeof MergeSchema>;

export async function loadMergeSpec(file: string): Promise<MergeSpec> {
  const spec = await readJsonWith(MergeSchema, file, {
    missing: `merge file not found: ${file}`,
    notJson: (why) => `merge file ${file} is not valid JSON: ${why}`,
    invalid: `invalid merge file ${file}; expected {"lesion": {"from": "to"}, "location": {"from": "to"}}`,
  });
  for (const kind of ['lesion', 'location'] as const) resolveChains(spec[kind] ?? {}, `${file} (${kind})`);
  return spec;
}

/** Follows a -> b -> c so a lands on c; a cycle is an error naming the file. */
function resolveChains(map: Record<string, string>, where: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const from of Object.keys(map)) {
    if (map[from] === from) continue; // identity entry: harmless
    const seen = [from];
    let to = map[from];
    while (Object.hasOwn(map, to) && to !== from) {
      if (seen.includes(to)) break;
      seen.push(to);
      to = map[to];
    }
    if (to === from || seen.includes(to))
      throw new DermtlError(`merge file ${where}: label cycle ${[...seen, to].join(' -> ')}`);
    out.set(from, to);
  }
  return out;
}

export interface MergeApplied {
  kind: 'lesion' | 'location';
  from: string;
  to: string;
  /** Images that carried `from`. */
  images: number;
}

export interface RefineReport {
  merged: MergeApplied[];
  /** Merge entries whose `from` label no image has. */
  unusedMerges: { kind: 'lesion' | 'location'; from: string }[];
  droppedLocations: LabelCount[];
  droppedLesions: LabelCount[];
  /** Images removed because their location label was dropped. */
  droppedImages: number;
  /** Kept images that lost every lesion label (they still train the location head). */
  emptiedImages: number;
  imagesIn: number;
  imagesOut: number;
}

/**
 * Merges labels, then drops rare ones. Counting happens AFTER merging, so sub-types that are each
 * rare but common together survive as their merged label. Locations go first (dropping an image's
 * only location drops the image), then lesions are counted on the images that remain, so every
 * label of the result has at least `minCount` images.
 */
export function refine(
  samples: Sample[],
  minCount: number,
  merge: MergeSpec = {},
): { samples: Sample[]; report: RefineReport } {
  const lesionMap = resolveChains(merge.lesion ?? {}, 'lesion');
  const locationMap = resolveChains(merge.location ?? {}, 'location');
  const merged = [
    ...appliedMerges(
      'lesion',
      lesionMap,
      samples.flatMap((s) => s.lesions),
    ),
    ...appliedMerges(
      'location',
      locationMap,
      samples.map((s) => s.location),
    ),
  ];
  const unusedMerges = [
    ...[...lesionMap.keys()]
      .filter((f) => !merged.some((m) => m.kind === 'lesion' && m.from === f))
      .map((from) => ({ kind: 'lesion' as const, from })),
    ...[...locationMap.keys()]
      .filter((f) => !merged.some((m) => m.kind === 'location' && m.from === f))
      .map((from) => ({ kind: 'location' as const, from })),
  ];
  const renamed = samples.map((s) => ({
    ...s,
    lesions: [...new Set(s.lesions.map((l) => lesionMap.get(l) ?? l))],
    location: locationMap.get(s.location) ?? s.location,
  }));

  const droppedLocations = countLabels(renamed.map((s) => s.location)).filter((c) => c.count < minCount);
  const badLocation = new Set(droppedLocations.map((c) => c.label));
  const placed = renamed.filter((s) => !badLocation.has(s.location));

  const droppedLesions = countLabels(placed.flatMap((s) => s.lesions)).filter((c) => c.count < minCount);
  const badLesion = new Set(droppedLesions.map((c) => c.label));
  const kept = placed.map((s) => ({ ...s, lesions: s.lesions.filter((l) => !badLesion.has(l)) }));
  const emptiedImages = kept.filter((s, i) => s.lesions.length === 0 && placed[i].lesions.length > 0).length;

  return {
    samples: kept,
    report: {
      merged,
      unusedMerges,
      droppedLocations,
      droppedLesions,
      droppedImages: renamed.length - placed.length,
      emptiedImages,
      imagesIn: samples.length,
      imagesOut: kept.length,
    },
  };
}

function appliedMerges(kind: 'lesion' | 'location', map: Map<string, string>, labels: string[]): MergeApplied[] {
  const counts = countLabels(labels);
  return counts
    .filter((c) => map.has(c.label))
    .map((c) => ({ kind, from: c.label, to: map.get(c.label)!, images: c.count }));
}

/** `dermtl refine`: reads `input`, refines, writes `out` with image paths re-based on its folder. */
export async function refineManifest(
  input: string,
  out: string,
  minCount: number,
  mergeFile?: string,
): Promise<RefineReport> {
  if (!Number.isInteger(minCount) || minCount < 0)
    throw new DermtlError(`--min-count must be a whole number >= 0, got ${minCount}`);
  const merge = mergeFile ? await loadMergeSpec(mergeFile) : {};
  const manifest = await loadManifest(input);
  const { samples, report } = refine(manifest.samples, minCount, merge);
  if (samples.length === 0)
    throw new DermtlError(`refining ${input} with --min-count ${minCount} leaves no images; nothing written to ${out}`);
  await writeManifest(
    out,
    samples.map((s) => sampleToRow(s, out)),
    manifest.extraColumns,
  );
  return report;
}

/** Human-readable account of a refinement, one line per fact. */
export function formatRefineReport(r: RefineReport, minCount: number): string[] {
  const labels = (cs: LabelCount[]) => (cs.length ? cs.map((c) => `${c.label} (${c.count})`).join(', ') : 'none');
  const lines = r.merged.map(
    (m) => `merged ${m.kind} "${m.from}" -> "${m.to}" (${m.images} image${m.images === 1 ? '' : 's'})`,
  );
  for (const u of r.unusedMerges) lines.push(`merge entry for ${u.kind} "${u.from}" matched no image`);
  lines.push(`dropped location labels with < ${minCount} images: ${labels(r.droppedLocations)}`);
  lines.push(`dropped lesion labels with < ${minCount} images: ${labels(r.droppedLesions)}`);
  lines.push(
    `images: ${r.imagesIn} in, ${r.droppedImages} dropped (location dropped), ${r.imagesOut} out; ${r.emptiedImages} kept image(s) lost all lesion labels`,
  );
  return lines;
}
