import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { CsvError, parse, type Options as CsvOptions } from 'csv-parse/sync';
import { DermtlError, errorList } from '../../util/errors.ts';
import type { ManifestRow } from '../types.ts';

export interface ImportOptions {
  /** derm7pt only: which image of each case to use. */
  view?: 'clinic' | 'derm' | 'both';
}

/** What an importer produces; the caller writes it with writeManifest. */
export interface ImportResult {
  rows: ManifestRow[];
  extraColumns: string[];
  /** Human-readable lines: what was read, dropped or excluded and why. */
  summary: string[];
}

export interface Importer {
  /** The metadata file(s) it reads, for --help and error messages. */
  reads: string;
  /** `root` is the dataset folder; `out` the manifest to be written (image paths are relative to it). */
  run(root: string, out: string, opts: ImportOptions): Promise<ImportResult>;
}

/** One metadata row with its 1-based line in the file (header is line 1). */
export interface MetadataRow {
  line: number;
  values: Record<string, string>;
}

/** The dataset root must be an existing folder. */
export async function requireRoot(root: string, format: string): Promise<string> {
  const abs = resolve(root);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new DermtlError(`${format} dataset folder not found: ${root}`);
  if (!st.isDirectory()) throw new DermtlError(`${format} dataset root is not a folder: ${root}`);
  return abs;
}

/** Reads a dataset's metadata CSV as distributed, checking that the columns the importer needs are there. */
export async function readMetadata(file: string, required: readonly string[], what: string): Promise<MetadataRow[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new DermtlError(`${what}: expected metadata file not found: ${file}`);
  }
  const rows: MetadataRow[] = [];
  let header: string[] = [];
  try {
    parse(text, {
      bom: true,
      skip_empty_lines: true,
      columns: (h: string[]) => (header = h.map((c) => c.trim())),
      on_record: (values: Record<string, string>, ctx: { lines: number }) => {
        rows.push({ line: ctx.lines, values });
        return null;
      },
    } as unknown as CsvOptions);
  } catch (e) {
    if (e instanceof CsvError)
      throw new DermtlError(`${file}: malformed CSV near line ${(e as { lines?: number }).lines ?? '?'}: ${e.message}`);
    throw e;
  }
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length)
    throw new DermtlError(`${file}: missing column(s) ${missing.join(', ')} (has: ${header.join(',')})`);
  if (rows.length === 0) throw new DermtlError(`${file}: no data rows`);
  return rows;
}

/**
 * Every file under `dir` (any depth) by lower-cased file name. Several copies of one name (some
 * distributions ship each image folder twice) resolve to the first path in sorted order, so
 * imports are reproducible; `duplicates` counts such names.
 */
export async function indexFiles(
  dir: string,
  extensions: readonly string[],
): Promise<{ byName: Map<string, string>; duplicates: number }> {
  const entries = (await readdir(dir, { recursive: true })).map(String).sort();
  const byName = new Map<string, string>();
  let duplicates = 0;
  for (const rel of entries) {
    const name = basename(rel).toLowerCase();
    if (!extensions.some((e) => name.endsWith(e))) continue;
    if (byName.has(name)) duplicates++;
    else byName.set(name, join(dir, rel));
  }
  return { byName, duplicates };
}

/** Throws one error listing every problem (bad rows, missing images) found while importing. */
export function throwIfProblems(what: string, problems: string[]): void {
  if (problems.length) throw errorList(what, problems);
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
