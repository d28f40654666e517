import { basename } from 'node:path';
import { z } from 'zod';
import { DermtlError, errorList } from '../util/errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { readJsonWith } from '../util/jsonFile.ts';
import { Rng } from '../util/rng.ts';
import { manifestHash } from './manifest.ts';
import type { Manifest, Sample } from './types.ts';

/** What `dermtl split` writes. `splits[f].test` lists image paths exactly as in the manifest. */
export interface FoldFile {
  version: 1;
  folds: number;
  seed: number;
  manifest: string;
  manifestHash: string;
  splits: { fold: number; test: string[] }[];
}

/** Weight of the fold-size term relative to the per-label terms (both chi-square-like). */
const SIZE_WEIGHT = 1;

interface Unit {
  group: string;
  images: Sample[];
  /** Images of this group per label index (locations and lesions share one index space). */
  labelCounts: Map<number, number>;
  /** Total count of the group's rarest label: rare groups are placed first. */
  rarity: number;
}

/**
 * Grouped, stratified k-fold assignment. A group (lesion or patient) never spans two folds.
 * Greedy in the spirit of iterative stratification: groups are shuffled with the seeded Rng (ties
 * broken at random, reproducibly), ordered so those carrying the rarest labels go first, and each is
 * put in the fold where it least increases sum_label (count - target)^2 / target, plus the same
 * term for the fold size. Location and every lesion label are stratified together.
 * Returns the fold index of every sample, in input order.
 */
export function assignFolds(samples: Sample[], k: number, seed: number): number[] {
  const groups = new Set(samples.map((s) => s.group)).size;
  if (!Number.isInteger(k) || k < 2) throw new DermtlError(`--folds must be a whole number >= 2, got ${k}`);
  if (k > groups)
    throw new DermtlError(
      `--folds ${k} is more than the ${groups} group(s) in the manifest: every fold needs at least one group`,
    );
  const { units, totals } = buildUnits(samples);
  const order = Rng.seeded(seed)
    .shuffle(units)
    .sort((a, b) => a.rarity - b.rarity || b.images.length - a.images.length); // stable: shuffled order breaks ties
  const target = totals.map((t) => t / k);
  const sizeTarget = samples.length / k;
  const counts = Array.from({ length: k }, () => new Float64Array(totals.length));
  const sizes = new Float64Array(k);
  const foldOfGroup = new Map<string, number>();
  let empty = k;
  order.forEach((u, placed) => {
    // when only as many groups remain as there are empty folds, they must go there: no fold stays empty
    const mustFillEmpty = order.length - placed <= empty;
    let best = -1;
    let bestCost = Infinity;
    for (let f = 0; f < k; f++) {
      if (mustFillEmpty && sizes[f] > 0) continue;
      const cost = addCost(u, counts[f], target, sizes[f], sizeTarget);
      // ties: the smaller fold, then the lower index
      if (best < 0 || cost < bestCost - 1e-12 || (Math.abs(cost - bestCost) <= 1e-12 && sizes[f] < sizes[best])) {
        best = f;
        bestCost = cost;
      }
    }
    if (sizes[best] === 0) empty--;
    for (const [l, n] of u.labelCounts) counts[best][l] += n;
    sizes[best] += u.images.length;
    foldOfGroup.set(u.group, best);
  });
  return samples.map((s) => foldOfGroup.get(s.group)!);
}

/** Increase of the fold's imbalance if unit `u` joins it. */
function addCost(u: Unit, counts: Float64Array, target: number[], size: number, sizeTarget: number): number {
  let cost = 0;
  for (const [l, n] of u.labelCounts) {
    const before = counts[l] - target[l];
    const after = before + n;
    cost += (after * after - before * before) / target[l];
  }
  const sb = size - sizeTarget;
  const sa = sb + u.images.length;
  return cost + (SIZE_WEIGHT * (sa * sa - sb * sb)) / sizeTarget;
}

function buildUnits(samples: Sample[]): { units: Unit[]; totals: number[] } {
  const index = new Map<string, number>();
  const totals: number[] = [];
  const labelIndex = (key: string) => {
    let i = index.get(key);
    if (i === undefined) index.set(key, (i = totals.push(0) - 1));
    return i;
  };
  const byGroup = new Map<string, Unit>();
  for (const s of samples) {
    let u = byGroup.get(s.group);
    if (!u) byGroup.set(s.group, (u = { group: s.group, images: [], labelCounts: new Map(), rarity: Infinity }));
    u.images.push(s);
    // prefixes keep a lesion and a location of the same name apart
    for (const key of [`location:${s.location}`, ...new Set(s.lesions.map((l) => `lesion:${l}`))]) {
      const i = labelIndex(key);
      totals[i]++;
      u.labelCounts.set(i, (u.labelCounts.get(i) ?? 0) + 1);
    }
  }
  const units = [...byGroup.values()].sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0)); // shuffle input independent of row order
  for (const u of units) u.rarity = Math.min(...[...u.labelCounts.keys()].map((i) => totals[i]));
  return { units, totals };
}

/** Builds the fold file for a loaded manifest. */
export function makeFolds(manifest: Manifest, k: number, seed: number): FoldFile {
  const fold = assignFolds(manifest.samples, k, seed);
  const splits = Array.from({ length: k }, (_, f) => ({
    fold: f,
    test: manifest.samples.filter((_, i) => fold[i] === f).map((s) => s.image),
  }));
  return {
    version: 1,
    folds: k,
    seed,
    manifest: basename(manifest.file),
    manifestHash: manifestHash(manifest),
    splits,
  };
}

export async function writeFolds(file: string, folds: FoldFile): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(folds, null, 1) + '\n');
}

export interface FoldBalance {
  fold: number;
  images: number;
  groups: number;
  /** max over location labels of |share in this fold's test set - share overall|. */
  maxLocationDeviation: number;
  /** The same over lesion labels (share of images carrying the label). */
  maxLesionDeviation: number;
}

/** How far each fold's label proportions are from the whole manifest's: the check on stratification. */
export function foldBalance(samples: Sample[], fold: number[], k: number): FoldBalance[] {
  const share = (ss: Sample[], has: (s: Sample, l: string) => boolean, labels: string[]) =>
    labels.map((l) => ss.filter((s) => has(s, l)).length / Math.max(ss.length, 1));
  const locations = [...new Set(samples.map((s) => s.location))];
  const lesions = [...new Set(samples.flatMap((s) => s.lesions))];
  const atLoc = (s: Sample, l: string) => s.location === l;
  const hasLesion = (s: Sample, l: string) => s.lesions.includes(l);
  const allLoc = share(samples, atLoc, locations);
  const allLes = share(samples, hasLesion, lesions);
  const maxDev = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
  return Array.from({ length: k }, (_, f) => {
    const test = samples.filter((_, i) => fold[i] === f);
    return {
      fold: f,
      images: test.length,
      groups: new Set(test.map((s) => s.group)).size,
      maxLocationDeviation: maxDev(share(test, atLoc, locations), allLoc),
      maxLesionDeviation: maxDev(share(test, hasLesion, lesions), allLes),
    };
  });
}

const FoldFileSchema = z.object({
  version: z.literal(1),
  folds: z.number().int().min(2),
  seed: z.number(),
  manifest: z.string(),
  manifestHash: z.string(),
  splits: z.array(z.object({ fold: z.number().int().min(0), test: z.array(z.string()) })),
});

export interface Fold {
  fold: number;
  train: Sample[];
  test: Sample[];
}

export interface LoadedFolds {
  file: string;
  folds: number;
  seed: number;
  splits: Fold[];
}

/**
 * Reads a fold file and checks it against `manifest`: same manifest (hash), every image in
 * exactly one test set, no group across folds. Returns train/test samples for every fold.
 */
export async function loadFolds(file: string, manifest: Manifest): Promise<LoadedFolds> {
  const doc = await readFoldFile(file);
  if (doc.manifestHash !== manifestHash(manifest)) {
    throw new DermtlError(
      `fold file ${file} does not match manifest ${manifest.file}: it was made for "${doc.manifest}" with different rows (hash ${doc.manifestHash.slice(0, 12)}…); re-run dermtl split`,
    );
  }
  const foldOf = checkCoverage(doc, manifest, file);
  const splits = doc.splits.map((s) => ({
    fold: s.fold,
    train: manifest.samples.filter((x) => foldOf.get(x.image) !== s.fold),
    test: manifest.samples.filter((x) => foldOf.get(x.image) === s.fold),
  }));
  return { file, folds: doc.folds, seed: doc.seed, splits };
}

/** Fold `k` of a loaded fold file; out of range is a user error naming the file. */
export function selectFold(loaded: LoadedFolds, k: number): Fold {
  if (!Number.isInteger(k) || k < 0 || k >= loaded.folds)
    throw new DermtlError(`--fold ${k} is out of range: ${loaded.file} has folds 0..${loaded.folds - 1}`);
  return loaded.splits[k];
}

async function readFoldFile(file: string): Promise<FoldFile> {
  return (await readJsonWith(FoldFileSchema, file, {
    missing: `fold file not found: ${file}`,
    notJson: (why) => `fold file ${file} is not valid JSON: ${why}`,
    invalid: `invalid fold file ${file}`,
  })) as FoldFile;
}

function checkCoverage(doc: FoldFile, manifest: Manifest, file: string): Map<string, number> {
  const problems: string[] = [];
  if (doc.splits.length !== doc.folds)
    problems.push(`"folds" is ${doc.folds} but there are ${doc.splits.length} splits`);
  doc.splits.forEach((s, i) => {
    if (s.fold !== i) problems.push(`splits[${i}] has fold ${s.fold}, expected ${i}`);
  });
  const known = new Map(manifest.samples.map((s) => [s.image, s]));
  const foldOf = new Map<string, number>();
  for (const s of doc.splits) {
    for (const image of s.test) {
      if (!known.has(image)) problems.push(`fold ${s.fold}: image not in the manifest: ${image}`);
      else if (foldOf.has(image))
        problems.push(`fold ${s.fold}: image listed twice (also in fold ${foldOf.get(image)}): ${image}`);
      else foldOf.set(image, s.fold);
    }
  }
  const unassigned = manifest.samples.filter((s) => !foldOf.has(s.image));
  for (const s of unassigned) problems.push(`manifest line ${s.line}: image in no fold: ${s.image}`);
  const groupFold = new Map<string, number>();
  for (const s of manifest.samples) {
    const f = foldOf.get(s.image);
    if (f === undefined) continue;
    const g = groupFold.get(s.group);
    if (g === undefined) groupFold.set(s.group, f);
    else if (g !== f) problems.push(`group ${s.group} spans folds ${g} and ${f} (${s.image})`);
  }
  if (problems.length) throw errorList(`fold file ${file} does not match manifest ${manifest.file}`, problems);
  return foldOf;
}
