import { join } from 'node:path';
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

const META = 'HAM10000_metadata.csv';
const REQUIRED = ['lesion_id', 'image_id', 'dx', 'dx_type', 'localization'];

/**
 * HAM10000: `HAM10000_metadata.csv` (one row per image) with images `<image_id>.jpg` anywhere under
 * the root (HAM10000_images_part_1/2). lesion = dx, location = localization, group = lesion_id.
 */
export const ham10000: Importer = {
  reads: `${META} and <image_id>.jpg under the root or any sub-folder`,
  async run(root, out): Promise<ImportResult> {
    const dir = await requireRoot(root, 'ham10000');
    const meta = await readMetadata(join(dir, META), REQUIRED, 'ham10000');
    const { byName, duplicates } = await indexFiles(dir, ['.jpg']);
    const problems: string[] = [];
    const rows: ManifestRow[] = [];
    let unknown = 0;
    for (const { line, values: v } of meta) {
      const location = v.localization.trim();
      // 'unknown' is HAM10000's own marker for a missing site: such images cannot train the location head
      if (location === 'unknown') {
        unknown++;
        continue;
      }
      const where = `${META} line ${line}`;
      if (location === '') problems.push(`${where}: empty localization`);
      if (v.lesion_id.trim() === '') problems.push(`${where}: empty lesion_id`);
      if (v.dx.trim() === '') problems.push(`${where}: empty dx`);
      const file = `${v.image_id.trim()}.jpg`;
      const abs = byName.get(file.toLowerCase());
      if (!abs) {
        problems.push(`${where}: image not found under ${root}: ${file}`);
        continue;
      }
      rows.push({
        image: imagePathFor(out, abs),
        lesions: [v.dx.trim()],
        location,
        group: v.lesion_id.trim(),
        extra: { image_id: v.image_id, dx_type: v.dx_type, age: v.age ?? '', sex: v.sex ?? '' },
      });
    }
    throwIfProblems(`cannot import ham10000 from ${root}`, problems);
    const summary = [`ham10000: read ${plural(meta.length, 'row')} from ${META}`];
    summary.push(`dropped ${plural(unknown, 'image')} with localization "unknown"`);
    if (duplicates)
      summary.push(`${plural(duplicates, 'image file')} found in several folders: used the first path in sorted order`);
    summary.push(`wrote ${plural(rows.length, 'image')}`);
    return { rows, extraColumns: ['image_id', 'dx_type', 'age', 'sex'], summary };
  },
};
