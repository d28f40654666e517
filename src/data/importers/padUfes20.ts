import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { DermtlError } from '../../util/errors.ts';
import { imagePathFor } from '../manifest.ts';
import type { ManifestRow } from '../types.ts';
import {
  indexFiles,
  plural,
  readMetadata,
  requireRoot,
  throwIfProblems,
  type ImportResult,
  type Importer,
} from './common.ts';

const META = 'metadata.csv';
/** Yes/no/UNK clinical signs; each one that is True becomes a lesion label of the same name. */
export const PAD_SIGNS = ['itch', 'grew', 'hurt', 'changed', 'bleed', 'elevation'] as const;
const REQUIRED = ['patient_id', 'lesion_id', 'region', 'diagnostic', ...PAD_SIGNS, 'img_id'];

/**
 * PAD-UFES-20: `metadata.csv` (one row per image) and images under `images/` (possibly in
 * imgs_part_1..3). lesions = diagnostic + true signs, location = region, group = patient_id.
 */
export const padUfes20: Importer = {
  reads: `${META} and images/ (any sub-folder)`,
  async run(root, out): Promise<ImportResult> {
    const dir = await requireRoot(root, 'pad-ufes-20');
    const meta = await readMetadata(join(dir, META), REQUIRED, 'pad-ufes-20');
    const imagesDir = join(dir, 'images');
    if (
      !(await stat(imagesDir).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    ) {
      throw new DermtlError(`pad-ufes-20: expected image folder not found: ${imagesDir}`);
    }
    const { byName, duplicates } = await indexFiles(imagesDir, ['.png', '.jpg', '.jpeg']);
    const problems: string[] = [];
    const rows: ManifestRow[] = [];
    for (const { line, values: v } of meta) {
      const where = `${META} line ${line}`;
      for (const col of ['region', 'patient_id', 'diagnostic', 'img_id'] as const) {
        if (v[col].trim() === '') problems.push(`${where}: empty ${col}`);
      }
      const abs = byName.get(v.img_id.trim().toLowerCase());
      if (v.img_id.trim() !== '' && !abs) problems.push(`${where}: image not found under images/: ${v.img_id.trim()}`);
      if (!abs) continue;
      const signs = PAD_SIGNS.filter((s) => v[s].trim().toLowerCase() === 'true');
      rows.push({
        image: imagePathFor(out, abs),
        lesions: [v.diagnostic.trim(), ...signs],
        location: v.region.trim(),
        group: v.patient_id.trim(),
        extra: { img_id: v.img_id, lesion_id: v.lesion_id, diagnostic: v.diagnostic, biopsed: v.biopsed ?? '' },
      });
    }
    throwIfProblems(`cannot import pad-ufes-20 from ${root}`, problems);
    const summary = [`pad-ufes-20: read ${plural(meta.length, 'row')} from ${META}`];
    if (duplicates)
      summary.push(`${plural(duplicates, 'image file')} found in several folders: used the first path in sorted order`);
    summary.push(`wrote ${plural(rows.length, 'image')}`);
    return { rows, extraColumns: ['img_id', 'lesion_id', 'diagnostic', 'biopsed'], summary };
  },
};
