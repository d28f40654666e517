// Where `dermtl metrics --thresholds` takes the lesion decision thresholds from: one number for every label, a
// model folder (its calibration.json, chosen on its validation part), or a JSON file (a calibration.json, or
// {"label": threshold, ...}). Every scored lesion label needs one; problems name the flag and the file.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CALIBRATION_FILE, CalibrationSchema } from '../models/calibration.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { parseWith, readJson } from '../util/jsonFile.ts';

export interface Thresholds {
  byLabel: Record<string, number>;
  /** Said in the output: where they came from. */
  source: string;
}

const plainSchema = z.record(z.string(), z.number());

export async function loadThresholds(arg: string, labels: readonly string[]): Promise<Thresholds> {
  const value = arg.trim();
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(value)) {
    const t = Number(value);
    if (!(t >= 0 && t <= 1)) throw new DermtlError(`--thresholds ${arg}: a single threshold must be in [0, 1]`);
    return { byLabel: Object.fromEntries(labels.map((l) => [l, t])), source: `${t} for every label (--thresholds)` };
  }
  const kind = await stat(value).then(
    (s) => (s.isDirectory() ? 'dir' : 'file'),
    () => null,
  );
  if (!kind)
    throw new DermtlError(`--thresholds ${arg}: neither a number in [0, 1] nor an existing model folder or JSON file`);
  const file = kind === 'dir' ? join(value, CALIBRATION_FILE) : value;
  const raw = await readJson(file, {
    missing: `--thresholds ${arg}: the model folder has no ${CALIBRATION_FILE} (it was trained without calibration)`,
  });
  const fromModel = typeof raw === 'object' && raw !== null && 'version' in raw;
  const byLabel = fromModel
    ? Object.fromEntries(
        Object.entries(parseWith(CalibrationSchema, raw, file).thresholds?.labels ?? {}).map(([l, t]) => [
          l,
          t.threshold,
        ]),
      )
    : parseWith(
        plainSchema,
        raw,
        file,
        `${file}: expected {"<lesion label>": <threshold>, ...} or a model's ${CALIBRATION_FILE}`,
      );
  const missing = labels.filter((l) => !(l in byLabel));
  if (missing.length)
    throw errorList(`--thresholds ${file}: no threshold for ${missing.length} scored lesion label(s)`, missing);
  const bad = Object.entries(byLabel)
    .filter(([, t]) => !(t >= 0 && t <= 1))
    .map(([l, t]) => `${l}: ${t} is not in [0, 1]`);
  if (bad.length) throw errorList(`--thresholds ${file}`, bad);
  return { byLabel, source: fromModel ? `${file} (chosen on the model's validation part)` : file };
}
