import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { CsvError, parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { DermtlError, errorList } from '../util/errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import type { Manifest, Sample } from '../data/types.ts';

/**
 * Score tables: one row per image, one column per label, written by any model or tool and read by
 * `dermtl metrics`. CSV header: `image`, then `lesion:<label>` / `location:<label>` columns (the
 * kind ends at the FIRST colon, so `lesion:streaks:irregular` is lesion label `streaks:irregular`).
 * Scores are any ordered numbers (probabilities or logits); only their order within a column (AP)
 * or within a row (top-k, mAP-image) matters.
 */

export const IMAGE_COLUMN = 'image';
export type ScoreKind = 'lesion' | 'location';
const KINDS: readonly ScoreKind[] = ['lesion', 'location'];

export interface ScoreTable {
  /** Image paths as written in the manifest. */
  images: string[];
  lesionLabels: string[];
  locationLabels: string[];
  /** lesion[i][c]: score of images[i] for lesionLabels[c]. */
  lesion: Float64Array[];
  /** location[i][c]: score of images[i] for locationLabels[c]. */
  location: Float64Array[];
}

/** The table without the columns of the heads not in `keep` (e.g. an MTL table's lesion scores only). */
export function keepHeads(t: ScoreTable, keep: { lesion: boolean; location: boolean }): ScoreTable {
  const none = () => t.images.map(() => new Float64Array(0));
  return {
    ...t,
    ...(keep.lesion ? {} : { lesionLabels: [], lesion: none() }),
    ...(keep.location ? {} : { locationLabels: [], location: none() }),
  };
}

/** A table read from a file, with each image's line for messages. */
export interface ScoreFile extends ScoreTable {
  file: string;
  lines: number[];
}

export function scoreColumn(kind: ScoreKind, label: string): string {
  return `${kind}:${label}`;
}

/** `lesion:streaks:irregular` -> { kind: 'lesion', label: 'streaks:irregular' }; undefined if not a score column. */
export function parseScoreColumn(name: string): { kind: ScoreKind; label: string } | undefined {
  const colon = name.indexOf(':');
  if (colon < 0) return undefined;
  const kind = name.slice(0, colon) as ScoreKind;
  const label = name.slice(colon + 1);
  return KINDS.includes(kind) && label !== '' ? { kind, label } : undefined;
}

/** Writes a score table atomically (lesion columns, then location columns). */
export async function writeScores(file: string, table: ScoreTable): Promise<void> {
  await writeFileAtomic(file, formatScores(table));
}

export function formatScores(table: ScoreTable): string {
  const problems = tableProblems(table);
  if (problems.length) throw errorList(`cannot write score file`, problems);
  const header = [
    IMAGE_COLUMN,
    ...table.lesionLabels.map((l) => scoreColumn('lesion', l)),
    ...table.locationLabels.map((l) => scoreColumn('location', l)),
  ];
  // String(x) is the shortest text that reads back as the same double: the round trip is exact
  const rows = table.images.map((image, i) => [
    image,
    ...Array.from(table.lesion[i] ?? [], String),
    ...Array.from(table.location[i] ?? [], String),
  ]);
  return stringify([header, ...rows]);
}

/** Shape problems of an in-memory table (a bug in the caller, reported before anything is written). */
function tableProblems(t: ScoreTable): string[] {
  const problems: string[] = [];
  const dupes = (xs: string[]) => [...new Set(xs.filter((x, i) => xs.indexOf(x) !== i))];
  if (dupes(t.images).length) problems.push(`duplicate image(s): ${dupes(t.images).join(', ')}`);
  if (dupes(t.lesionLabels).length) problems.push(`duplicate lesion label(s): ${dupes(t.lesionLabels).join(', ')}`);
  if (dupes(t.locationLabels).length)
    problems.push(`duplicate location label(s): ${dupes(t.locationLabels).join(', ')}`);
  const empty = [...t.lesionLabels, ...t.locationLabels].filter((l) => l === '');
  if (empty.length) problems.push('empty label');
  for (const [kind, labels, rows] of [
    ['lesion', t.lesionLabels, t.lesion],
    ['location', t.locationLabels, t.location],
  ] as const) {
    if (labels.length > 0 && rows.length !== t.images.length)
      problems.push(`${t.images.length} images but ${rows.length} ${kind} score rows`);
    rows.forEach((row, i) => {
      if (row.length !== labels.length)
        problems.push(`${kind} row ${i} (${t.images[i]}) has ${row.length} scores for ${labels.length} labels`);
      else if (row.some((x) => !Number.isFinite(x)))
        problems.push(`${kind} row ${i} (${t.images[i]}) has a score that is not a finite number`);
    });
  }
  return problems;
}

/** A plain decimal or scientific number; `''`, `nan`, `inf`, `0x1f` are refused (Number() would take some). */
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

interface Column {
  kind: ScoreKind;
  label: string;
  /** Index in the kind's label list. */
  index: number;
}

/**
 * Reads a score file and checks it on its own: header, numbers, duplicate images. Every problem
 * is collected (with its line and column) and thrown together as one DermtlError.
 */
export async function readScores(file: string): Promise<ScoreFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DermtlError(`score file not found: ${file}`);
    if (code === 'EISDIR') throw new DermtlError(`score file is a folder, not a CSV file: ${file}`);
    throw new DermtlError(`cannot read score file ${file}: ${(e as Error).message}`);
  }
  return parseScores(text, file);
}

/** Parses score-file text; `file` only names it in messages. */
export function parseScores(text: string, file: string): ScoreFile {
  const records = parseCsv(text, file);
  const header = records.shift();
  if (!header)
    throw new DermtlError(
      `invalid score file ${file}: it is empty; expected a header "${IMAGE_COLUMN},lesion:<label>,...,location:<label>,..."`,
    );
  const problems: string[] = [];
  const { imageAt, columns } = readHeader(header.record, header.line, problems);
  const table: ScoreFile = {
    file,
    images: [],
    lines: [],
    lesionLabels: [],
    locationLabels: [],
    lesion: [],
    location: [],
  };
  for (const c of columns) if (c) (c.kind === 'lesion' ? table.lesionLabels : table.locationLabels).push(c.label);
  if (problems.length) throw errorList(`invalid score file ${file}`, problems);
  const firstLine = new Map<string, number>();
  for (const { record, line } of records) {
    if (record.length !== header.record.length) {
      problems.push(`line ${line}: expected ${header.record.length} columns, found ${record.length}`);
      continue;
    }
    const image = normaliseImage(record[imageAt]);
    if (image === '') problems.push(`line ${line}: empty image`);
    else if (firstLine.has(image))
      problems.push(`line ${line}: duplicate image "${image}" (first at line ${firstLine.get(image)})`);
    else firstLine.set(image, line);
    const lesion = new Float64Array(table.lesionLabels.length);
    const location = new Float64Array(table.locationLabels.length);
    columns.forEach((c, k) => {
      if (!c) return;
      const cell = record[k].trim();
      const value = NUMBER.test(cell) ? Number(cell) : NaN;
      if (!Number.isFinite(value))
        problems.push(
          `line ${line}, column "${header.record[k]}": ${cell === '' ? 'empty score' : `"${cell}" is not a finite number`}`,
        );
      (c.kind === 'lesion' ? lesion : location)[c.index] = value;
    });
    table.images.push(image);
    table.lines.push(line);
    table.lesion.push(lesion);
    table.location.push(location);
  }
  if (records.length === 0) problems.push(`line ${header.line}: a header but no rows`);
  if (problems.length) throw errorList(`invalid score file ${file}`, problems);
  return table;
}

/** Header cells -> where the image is and which label each other column scores. */
function readHeader(
  cells: string[],
  line: number,
  problems: string[],
): { imageAt: number; columns: (Column | undefined)[] } {
  const names = cells.map((c) => c.trim());
  const imageAt = names.indexOf(IMAGE_COLUMN);
  if (imageAt < 0) problems.push(`line ${line}: no "${IMAGE_COLUMN}" column (header: ${names.join(',')})`);
  const seen = new Set<string>();
  const count = { lesion: 0, location: 0 };
  const columns = names.map((name, k): Column | undefined => {
    if (seen.has(name)) {
      problems.push(`line ${line}: duplicate column "${name}"`);
      return undefined;
    }
    seen.add(name);
    if (k === imageAt) return undefined;
    const parsed = parseScoreColumn(name);
    if (!parsed) {
      problems.push(
        `line ${line}: column "${name}" is neither "${IMAGE_COLUMN}" nor lesion:<label> nor location:<label>`,
      );
      return undefined;
    }
    return { ...parsed, index: count[parsed.kind]++ };
  });
  if (imageAt >= 0 && names.length === 1)
    problems.push(`line ${line}: no score columns (lesion:<label> or location:<label>)`);
  return { imageAt, columns };
}

/** The same normalisation loadManifest applies, so `./a.jpg` matches manifest image `a.jpg`. */
function normaliseImage(raw: string): string {
  const image = raw.trim();
  return image === '' ? '' : posix.normalize(image.replaceAll('\\', '/'));
}

function parseCsv(text: string, file: string): { record: string[]; line: number }[] {
  try {
    const rows = parse(text, {
      bom: true,
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as { record: string[]; info: { lines: number } }[];
    // info.lines is the record's LAST line; quoted cells spanning lines move its first line up
    return rows.map(({ record, info }) => ({
      record,
      line: info.lines - record.reduce((n, cell) => n + (cell.match(/\n/g)?.length ?? 0), 0),
    }));
  } catch (e) {
    if (e instanceof CsvError) throw new DermtlError(`invalid score file ${file}: malformed CSV (${e.message})`);
    throw e;
  }
}

/** Which images of the manifest a score file is evaluated on. */
export type ImageSelection =
  /** Every manifest image must have scores (the default). */
  | 'all'
  /** The images present in the score file: a subset, e.g. one fold's test part. */
  | 'present'
  /** Exactly these manifest images; each must have scores, other rows of the file are ignored. */
  | readonly string[];

export interface MatchedScores {
  /** The evaluated manifest samples, aligned with `table`'s rows. */
  samples: Sample[];
  /** The score table restricted to those samples, in the same order. */
  table: ScoreTable;
  /** Manifest lesion labels with no score column: not evaluated. */
  unscoredLesions: string[];
  /** Things worth telling the user that are not errors. */
  notes: string[];
}

/**
 * Checks a score file against the manifest and returns the rows to evaluate. Errors (all
 * collected into one DermtlError): images not in the manifest, expected images without scores,
 * labels the manifest does not have, and, when there are location columns, a manifest location
 * without one (top-k over a partial class list would be meaningless). A manifest lesion label
 * without a column is only noted: that class is not evaluated (and not ranked in mAP-image).
 */
export function matchManifest(scores: ScoreFile, manifest: Manifest, images: ImageSelection = 'all'): MatchedScores {
  const problems: string[] = [];
  const notes: string[] = [];
  const byImage = new Map(manifest.samples.map((s) => [s.image, s]));
  const strangers = scores.images
    .map((image, i) => [image, scores.lines[i]] as const)
    .filter(([image]) => !byImage.has(image));
  problems.push(
    ...strangers.map(([image, line]) => `line ${line}: image "${image}" is not in manifest ${manifest.file}`),
  );
  const lesions = new Set(manifest.samples.flatMap((s) => s.lesions));
  const locations = new Set(manifest.samples.map((s) => s.location));
  for (const l of scores.lesionLabels)
    if (!lesions.has(l))
      problems.push(`column "${scoreColumn('lesion', l)}": "${l}" is not a lesion label of the manifest`);
  for (const l of scores.locationLabels)
    if (!locations.has(l))
      problems.push(`column "${scoreColumn('location', l)}": "${l}" is not a location label of the manifest`);
  const unscoredLesions =
    scores.lesionLabels.length === 0 ? [] : [...lesions].filter((l) => !scores.lesionLabels.includes(l)).sort();
  if (unscoredLesions.length)
    notes.push(`lesion label(s) of the manifest with no score column, not evaluated: ${unscoredLesions.join(', ')}`);
  if (scores.locationLabels.length > 0) {
    const unscored = [...locations].filter((l) => !scores.locationLabels.includes(l)).sort();
    if (unscored.length)
      problems.push(
        `location label(s) of the manifest with no score column (top-k needs every location): ${unscored.map((l) => scoreColumn('location', l)).join(', ')}`,
      );
  }
  const row = new Map(scores.images.map((image, i) => [image, i]));
  const wanted =
    images === 'all'
      ? manifest.samples.map((s) => s.image)
      : images === 'present'
        ? scores.images.filter((i) => byImage.has(i))
        : [...images];
  const unknownWanted = wanted.filter((i) => !byImage.has(i));
  if (unknownWanted.length)
    throw errorList(
      `cannot evaluate ${scores.file}: requested image(s) not in manifest ${manifest.file}`,
      unknownWanted,
    );
  const missing = wanted.filter((i) => !row.has(i));
  if (missing.length)
    problems.push(
      `${missing.length} manifest image(s) have no scores: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}`,
    );
  if (problems.length) throw errorList(`score file ${scores.file} does not match manifest ${manifest.file}`, problems);
  if (wanted.length === 0) throw new DermtlError(`score file ${scores.file}: no images to evaluate`);
  const ignored = scores.images.length - wanted.length;
  if (ignored > 0)
    notes.push(`${ignored} row(s) of the score file are not among the requested images and were ignored`);
  const rows = wanted.map((i) => row.get(i)!);
  const table: ScoreTable = {
    images: wanted,
    lesionLabels: scores.lesionLabels,
    locationLabels: scores.locationLabels,
    lesion: rows.map((r) => scores.lesion[r]),
    location: rows.map((r) => scores.location[r]),
  };
  return { samples: wanted.map((i) => byImage.get(i)!), table, unscoredLesions, notes };
}

/** readScores + matchManifest. */
export async function loadScores(
  file: string,
  manifest: Manifest,
  images: ImageSelection = 'all',
): Promise<MatchedScores> {
  return matchManifest(await readScores(file), manifest, images);
}
