import { DermtlError } from '../../util/errors.ts';
import { writeManifest } from '../manifest.ts';
import type { ImportOptions, ImportResult, Importer } from './common.ts';
import { derm7pt } from './derm7pt.ts';
import { ham10000 } from './ham10000.ts';
import { padUfes20 } from './padUfes20.ts';

export type { ImportOptions, ImportResult } from './common.ts';

/** Known dataset formats, by the name the CLI takes. */
export const IMPORTERS: Record<string, Importer> = {
  derm7pt,
  ham10000,
  'pad-ufes-20': padUfes20,
};

/** Reads dataset `format` at `root` and writes its manifest to `out` (image paths relative to `out`). */
export async function importDataset(
  format: string,
  root: string,
  out: string,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const importer = IMPORTERS[format];
  if (!importer)
    throw new DermtlError(`unknown dataset format "${format}"; known formats: ${Object.keys(IMPORTERS).join(', ')}`);
  if (opts.view !== undefined && format !== 'derm7pt')
    throw new DermtlError(`--view applies to derm7pt only, not ${format}`);
  const result = await importer.run(root, out, opts);
  await writeManifest(out, result.rows, result.extraColumns);
  result.summary.push(`manifest: ${out}`);
  return result;
}
