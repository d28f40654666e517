import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { imagePathFor } from '../manifest.ts';
import type { ManifestRow } from '../types.ts';
import {
  plural,
  readMetadata,
  requireRoot,
  throwIfProblems,
  type ImportOptions,
  type ImportResult,
  type Importer,
  type MetadataRow,
} from './common.ts';

/** The seven-point checklist criteria; each becomes `criterion:value` labels unless `absent`. */
export const SEVEN_POINT_CRITERIA = [
  'pigment_network',
  'streaks',
  'pigmentation',
  'regression_structures',
  'dots_and_globules',
  'blue_whitish_veil',
  'vascular_structures',
] as const;

const REQUIRED = ['case_num', 'diagnosis', ...SEVEN_POINT_CRITERIA, 'elevation', 'location', 'clinic', 'derm', 'notes'];
const META = 'meta/meta.csv';

/** derm7pt release_v0: `meta/meta.csv` (one row per case) and `images/<clinic|derm path>`. */
export const derm7pt: Importer = {
  reads: `${META} and images/ (release_v0 layout)`,
  async run(root, out, opts: ImportOptions): Promise<ImportResult> {
    const dir = await requireRoot(root, 'derm7pt');
    const view = opts.view ?? 'clinic';
    const cases = await readMetadata(join(dir, META), REQUIRED, 'derm7pt');
    const problems: string[] = [];
    const rows: ManifestRow[] = [];
    const replaced: string[] = [];
    for (const c of cases) {
      const labels = caseLabels(c, problems);
      const v = c.values;
      if (v.location.trim() === '') problems.push(`${META} line ${c.line}: empty location`);
      if (v.case_num.trim() === '') problems.push(`${META} line ${c.line}: empty case_num`);
      const clinicIsDerm = isClinicReplaced(c);
      if (clinicIsDerm) replaced.push(v.case_num);
      for (const which of imagesOfCase(view, clinicIsDerm)) {
        const abs = join(dir, 'images', v[which].trim());
        if (v[which].trim() === '') problems.push(`${META} line ${c.line}: empty ${which} path`);
        else if (!(await isFile(abs)))
          problems.push(`${META} line ${c.line}: ${which} image not found: images/${v[which]}`);
        rows.push({
          image: imagePathFor(out, abs),
          lesions: labels,
          location: v.location.trim(),
          group: v.case_num.trim(),
          extra: { diagnosis: v.diagnosis, case_num: v.case_num, view: which },
        });
      }
    }
    throwIfProblems(`cannot import derm7pt from ${root}`, problems);
    return {
      rows,
      extraColumns: ['diagnosis', 'case_num', 'view'],
      summary: summarise(cases.length, view, replaced, rows.length),
    };
  },
};

/** Every present criterion as `criterion:value` (value text as in the file), plus `elevation:<value>`. */
function caseLabels(c: MetadataRow, problems: string[]): string[] {
  const labels: string[] = [];
  for (const k of SEVEN_POINT_CRITERIA) {
    const value = c.values[k].trim();
    if (value === '') problems.push(`${META} line ${c.line}: empty ${k}`);
    else if (value !== 'absent') labels.push(`${k}:${value}`);
  }
  const elevation = c.values.elevation.trim();
  if (elevation === '') problems.push(`${META} line ${c.line}: empty elevation`);
  else labels.push(`elevation:${elevation}`);
  return labels;
}

/**
 * In 9 cases of release_v0 the clinical photo is missing and `clinic` points at the dermoscopic
 * image; `notes` says so ("Clinical missing and replaced with derm", "Replaced clinic X with derm Y").
 */
function isClinicReplaced(c: MetadataRow): boolean {
  const v = c.values;
  return v.clinic === v.derm || /clinical missing|replaced clinic .* with derm/i.test(v.notes);
}

/** With view both, a case whose "clinical" image is the dermoscopic one contributes it once. */
function imagesOfCase(view: 'clinic' | 'derm' | 'both', clinicIsDerm: boolean): ('clinic' | 'derm')[] {
  if (view === 'derm') return ['derm'];
  if (view === 'clinic') return clinicIsDerm ? [] : ['clinic'];
  return clinicIsDerm ? ['derm'] : ['clinic', 'derm'];
}

function summarise(cases: number, view: string, replaced: string[], images: number): string[] {
  const lines = [`derm7pt: read ${plural(cases, 'case')} from ${META}`];
  if (replaced.length && view === 'clinic') {
    lines.push(
      `excluded ${plural(replaced.length, 'case')} whose clinical image is the dermoscopic one (case_num ${replaced.join(', ')})`,
    );
  } else if (replaced.length && view === 'both') {
    lines.push(
      `${plural(replaced.length, 'case')} have no separate clinical image (case_num ${replaced.join(', ')}): their dermoscopic image is listed once`,
    );
  }
  lines.push(`wrote ${plural(images, 'image')} (view ${view})`);
  return lines;
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
