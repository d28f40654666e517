// Reading a JSON file the user gave or a folder holds, and checking it with a zod schema: every failure is a
// DermtlError that names the file, and a schema failure lists each problem with its key path.
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { DermtlError, errorList } from './errors.ts';

/** What the errors say; each defaults to a line that starts with the file's path. */
export interface JsonFileMessages {
  /** The file does not exist. */
  missing?: string;
  /** The text is not JSON (given the parser's reason). */
  notJson?: (reason: string) => string;
  /** Title of the list of schema problems. */
  invalid?: string;
}

/** One line per zod issue: `key.path: message` (`(top level)` for the whole value). */
export function issueLines(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
}

/** `value` checked by `schema`; a DermtlError listing every problem with its key (title: `invalid`, or `file: unexpected content`). */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, file: string, invalid?: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw errorList(invalid ?? `${file}: unexpected content`, issueLines(r.error.issues));
  return r.data;
}

/** The parsed JSON of `file` (not validated). */
export async function readJson(file: string, messages: JsonFileMessages = {}): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DermtlError(messages.missing ?? `${file}: no such file`);
    throw new DermtlError(`${file}: cannot read it (${code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    const reason = (e as Error).message;
    throw new DermtlError(messages.notJson ? messages.notJson(reason) : `${file}: not valid JSON (${reason})`);
  }
}

/** Reads `file`, parses it as JSON and checks it with `schema` (see readJson and parseWith). */
export async function readJsonWith<T>(schema: z.ZodType<T>, file: string, messages: JsonFileMessages = {}): Promise<T> {
  return parseWith(schema, await readJson(file, messages), file, messages.invalid);
}
