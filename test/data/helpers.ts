// Shared by the data and CLI tests: temp folders, tiny real images, fake datasets, in-process CLI runs.
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import sharp from 'sharp';
import { Command, CommanderError } from 'commander';
import { DermtlError } from '../../src/util/errors.ts';

export const DERM7PT = join(import.meta.dirname, '../../../shared/datasets/derm7pt');
export const HAVE_DERM7PT = existsSync(join(DERM7PT, 'meta/meta.csv'));
/** Reason for skipping the tests that read the real derm7pt copy in place; printed by the runner. */
export const NO_DERM7PT = HAVE_DERM7PT ? false : `derm7pt not found at ${DERM7PT}: real-data test skipped`;

export function tempDir(prefix = 'dermtl-data-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A real 4x4 image (png or jpeg by extension), a different colour per `seed`. */
export async function tinyImage(path: string, seed = 0): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const img = sharp({ create: { width: 4, height: 4, channels: 3, background: { r: seed % 256, g: 80, b: 160 } } });
  await writeFile(path, await (path.endsWith('.png') ? img.png() : img.jpeg()).toBuffer());
}

export async function writeText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one sub-command in-process the way src/cli/main.ts does (DermtlError -> 1, usage error -> 2). */
export async function runCommand(register: (p: Command) => void, argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const program = new Command('dermtl').exitOverride().configureOutput({
    writeOut: (s) => void (stdout += s),
    writeErr: (s) => void (stderr += s),
  });
  register(program);
  const log = console.log;
  console.log = (...args: unknown[]) => void (stdout += args.join(' ') + '\n');
  try {
    await program.parseAsync(['node', 'dermtl', ...argv]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode === 0 ? 0 : 2, stdout, stderr };
    if (e instanceof DermtlError) return { code: 1, stdout, stderr: stderr + `dermtl: ${e.message}\n` };
    throw e;
  } finally {
    console.log = log;
  }
}
