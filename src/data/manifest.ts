import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, posix, relative, resolve, sep, win32 } from 'node:path';
import { CsvError, parse, type Options as CsvOptions } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { DermtlError, errorList } from '../util/errors.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import type { Manifest, ManifestRow, Sample } from './types.ts';

/** The four columns every manifest has, in the order writeManifest writes them. */
export const MANIFEST_COLUMNS = ['image', 'lesions', 'location', 'group'] as const;
/** Separator of the lesion labels inside the `lesions` cell. */
export const LESION_SEPARATOR = ';';

export interface LoadManifestOptions {
  /** Check that every image file exists (default true). */
  checkImages?: boolean;
  /**
   * Refuse every image path that leaves the manifest's folder, even a plain leading `../`
   * (default false). Use it for manifests from untrusted sources.
   */
  confine?: boolean;
}

/**
 * Reads and validates a manifest. Every problem (with its line number) is collected and thrown
 * together as one error, so a user fixes a broken file in one pass; nothing is silently dropped.
 */
export async function loadManifest(file: string, opts: LoadManifestOptions = {}): Promise<Manifest> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DermtlError(`manifest not found: ${file}`);
    if (code === 'EISDIR') throw new DermtlError(`manifest is a folder, not a CSV file: ${file}`);
    throw new DermtlError(`cannot read manifest ${file}: ${(e as Error).message}`);
  }
  const { samples, extraColumns, problems } = parseManifest(text, abs, opts.confine ?? false);
  if (opts.checkImages ?? true) problems.push(...(await missingImages(samples)));
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line);
    throw errorList(
      `invalid manifest ${file}`,
      problems.map((p) => p.message),
    );
  }
  return { file: abs, dir: dirname(abs), samples, extraColumns };
}

interface Problem {
  line: number;
  message: string;
}

interface Parsed {
  samples: Sample[];
  extraColumns: string[];
  problems: Problem[];
}

interface RawRecord {
  record: string[];
  line: number;
}

/** Parses manifest text (no file-system checks); `file` is the absolute CSV path. */
export function parseManifest(text: string, file: string, confine = false): Parsed {
  const problems: Problem[] = [];
  const records = parseCsv(text, problems);
  const header = records.shift();
  if (!header) {
    problems.push({ line: 1, message: `line 1: no header; expected columns ${MANIFEST_COLUMNS.join(',')}` });
    return { samples: [], extraColumns: [], problems };
  }
  const names = header.record.map((h) => h.trim());
  const missing = MANIFEST_COLUMNS.filter((c) => !names.includes(c));
  const dupes = names.filter((n, i) => names.indexOf(n) !== i);
  if (missing.length > 0 || dupes.length > 0) {
    if (missing.length)
      problems.push({
        line: header.line,
        message: `line ${header.line}: header lacks column(s) ${missing.join(', ')} (has: ${names.join(',')})`,
      });
    if (dupes.length)
      problems.push({
        line: header.line,
        message: `line ${header.line}: duplicate header column(s) ${[...new Set(dupes)].join(', ')}`,
      });
    return { samples: [], extraColumns: [], problems };
  }
  const extraColumns = names.filter((n) => !(MANIFEST_COLUMNS as readonly string[]).includes(n));
  const dir = dirname(file);
  const samples: Sample[] = [];
  const firstLine = new Map<string, number>();
  for (const { record, line } of records) {
    if (record.length !== names.length) {
      problems.push({ line, message: `line ${line}: expected ${names.length} columns, found ${record.length}` });
      continue;
    }
    const cells = Object.fromEntries(names.map((n, i) => [n, record[i]]));
    const sample = toSample(cells, extraColumns, dir, line, problems, confine);
    if (!sample) continue;
    const first = firstLine.get(sample.image);
    if (first !== undefined) {
      problems.push({ line, message: `line ${line}: duplicate image "${sample.image}" (first at line ${first})` });
      continue;
    }
    firstLine.set(sample.image, line);
    samples.push(sample);
  }
  if (records.length === 0 && problems.length === 0)
    problems.push({ line: header.line, message: `manifest has a header but no rows` });
  return { samples, extraColumns, problems };
}

/**
 * Strict CSV parse keeping line numbers. A record with broken quoting is reported at the line where
 * it starts (an unclosed quote may swallow many lines before the parser notices), and parsing
 * resumes on the next line, so the rows after it are still checked.
 */
function parseCsv(text: string, problems: Problem[]): RawRecord[] {
  const out: RawRecord[] = [];
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const blank = (line: number) => text.slice(lineStarts[line - 1], lineStarts[line] ?? text.length).trim() === '';
  let from = 1;
  for (let attempts = 0; from <= lineStarts.length; attempts++) {
    let lastEnd = from - 1;
    try {
      parse(text.slice(lineStarts[from - 1]), {
        bom: from === 1,
        raw: true,
        relax_column_count: true,
        skip_empty_lines: true,
        on_record: (rec: { record: string[]; raw: string }, ctx: { lines: number }) => {
          // ctx.lines is the record's last line (quoted fields may span lines); raw includes skipped blank lines before it
          const spanned =
            rec.raw
              .replace(/^(\r?\n)+/, '')
              .replace(/\r?\n$/, '')
              .split('\n').length - 1;
          lastEnd = from - 1 + ctx.lines;
          out.push({ record: rec.record, line: lastEnd - spanned });
          return null;
        },
      } as unknown as CsvOptions);
      return out;
    } catch (e) {
      if (!(e instanceof CsvError)) throw e;
      let start = lastEnd + 1;
      while (start < lineStarts.length && blank(start)) start++;
      const end = from - 1 + ((e as { lines?: number }).lines ?? 1);
      const reached = end > start ? `, record runs on to line ${end}` : '';
      // the parser's own line numbers count from where we resumed, so drop them from its message
      const what = /QUOTE/.test(e.code) ? 'malformed CSV quoting' : 'malformed CSV';
      problems.push({
        line: start,
        message: `line ${start}: ${what}${reached} (${e.message.replace(/ at line \d+/g, '')})`,
      });
      if (attempts >= 1000) {
        problems.push({ line: start, message: `line ${start}: too many quoting errors, rest of the file not checked` });
        return out;
      }
      from = start + 1;
    }
  }
  return out;
}

function toSample(
  cells: Record<string, string>,
  extraColumns: string[],
  dir: string,
  line: number,
  problems: Problem[],
  confine: boolean,
): Sample | undefined {
  const before = problems.length;
  const image = normaliseImagePath(cells.image, line, problems, confine);
  const location = cells.location.trim();
  const group = cells.group.trim();
  if (location === '') problems.push({ line, message: `line ${line}: empty location` });
  else if (location.includes(LESION_SEPARATOR))
    problems.push({ line, message: `line ${line}: location must be exactly one label, got "${location}"` });
  if (group === '') problems.push({ line, message: `line ${line}: empty group` });
  if (problems.length > before || image === undefined) return undefined;
  const extra = Object.fromEntries(extraColumns.map((c) => [c, cells[c]]));
  return {
    image,
    path: resolve(dir, ...image.split('/')),
    lesions: splitLesions(cells.lesions),
    location,
    group,
    line,
    extra,
  };
}

/**
 * Image paths are relative to the manifest's folder. Refused as path traversal: absolute paths, and
 * `..` that climbs back out after descending (`images/../../x`), which no writer of ours produces.
 * A plain leading `../` is how a manifest written elsewhere (`import --out /tmp/m.csv`) reaches its
 * dataset, so it is allowed unless `confine` is set.
 */
function normaliseImagePath(raw: string, line: number, problems: Problem[], confine: boolean): string | undefined {
  const image = raw.trim();
  if (image === '') {
    problems.push({ line, message: `line ${line}: empty image path` });
    return undefined;
  }
  if (isAbsolute(image) || win32.isAbsolute(image) || posix.isAbsolute(image)) {
    problems.push({
      line,
      message: `line ${line}: image path "${image}" is absolute; it must be relative to the manifest's folder`,
    });
    return undefined;
  }
  const slashed = image.replaceAll('\\', '/');
  const norm = posix.normalize(slashed);
  const escapes = norm === '..' || norm.startsWith('../');
  if (escapes && (confine || !leadingParentsOnly(slashed))) {
    problems.push({
      line,
      message: `line ${line}: image path "${image}" leaves the manifest's folder (path traversal refused)`,
    });
    return undefined;
  }
  return norm;
}

/** True when every `..` segment comes before the first ordinary one: `../../data/a.jpg`. */
function leadingParentsOnly(path: string): boolean {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const firstNormal = parts.findIndex((p) => p !== '..');
  return firstNormal === -1 ? true : !parts.slice(firstNormal).includes('..');
}

/** `a; b;;a` -> [a, b]: trimmed, empty pieces dropped, duplicates removed (first kept). */
export function splitLesions(cell: string): string[] {
  const pieces = cell
    .split(LESION_SEPARATOR)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return [...new Set(pieces)];
}

async function missingImages(samples: Sample[]): Promise<Problem[]> {
  const problems: Problem[] = [];
  const batch = 64; // bounded concurrency: thousands of stats at once exhaust file handles
  for (let i = 0; i < samples.length; i += batch) {
    const chunk = samples.slice(i, i + batch);
    const ok = await Promise.all(
      chunk.map((s) =>
        stat(s.path).then(
          (st) => st.isFile(),
          () => false,
        ),
      ),
    );
    chunk.forEach((s, k) => {
      if (!ok[k])
        problems.push({ line: s.line, message: `line ${s.line}: image file not found: ${s.image} (${s.path})` });
    });
  }
  return problems;
}

/**
 * Writes a manifest atomically. Columns: image,lesions,location,group then `extraColumns`
 * (default: every key of the rows' `extra`, in first-seen order).
 */
export async function writeManifest(file: string, rows: ManifestRow[], extraColumns?: string[]): Promise<void> {
  const core: readonly string[] = MANIFEST_COLUMNS;
  const extras =
    extraColumns ?? [...new Set(rows.flatMap((r) => Object.keys(r.extra ?? {})))].filter((c) => !core.includes(c));
  const problems: string[] = [];
  const clash = extras.filter((c, i) => core.includes(c) || extras.indexOf(c) !== i);
  if (clash.length)
    problems.push(`extra column name(s) clash with the manifest columns or repeat: ${[...new Set(clash)].join(', ')}`);
  rows.forEach((r, i) => {
    const bad = r.lesions.filter((l) => l.includes(LESION_SEPARATOR));
    if (bad.length)
      problems.push(`row ${i + 1} (${r.image}): lesion label(s) contain "${LESION_SEPARATOR}": ${bad.join(', ')}`);
    if (r.location.includes(LESION_SEPARATOR))
      problems.push(`row ${i + 1} (${r.image}): location contains "${LESION_SEPARATOR}"`);
  });
  if (problems.length) throw errorList(`cannot write manifest ${file}`, problems);
  const header = [...MANIFEST_COLUMNS, ...extras];
  const body = rows.map((r) => [
    r.image,
    r.lesions.join(LESION_SEPARATOR),
    r.location,
    r.group,
    ...extras.map((c) => r.extra?.[c] ?? ''),
  ]);
  await writeFileAtomic(file, stringify([header, ...body]));
}

/**
 * sha256 over the normalised rows (image, sorted lesions, location, group), independent of row
 * order and of extra columns: fold files record it to detect a changed manifest.
 */
export function manifestHash(m: Pick<Manifest, 'samples'>): string {
  const rows = m.samples.map((s) => JSON.stringify([s.image, [...s.lesions].sort(), s.location, s.group])).sort();
  return createHash('sha256').update(rows.join('\n')).digest('hex');
}

/** Image path of `absImage` as written in a manifest at `manifestFile`: relative, with `/` separators. */
export function imagePathFor(manifestFile: string, absImage: string): string {
  return relative(dirname(resolve(manifestFile)), absImage)
    .split(sep)
    .join('/');
}

/** A sample as a row to write again (e.g. after refinement), with its image re-based on `newManifestFile`. */
export function sampleToRow(s: Sample, newManifestFile?: string): ManifestRow {
  return {
    image: newManifestFile ? imagePathFor(newManifestFile, s.path) : s.image,
    lesions: s.lesions,
    location: s.location,
    group: s.group,
    extra: s.extra,
  };
}
