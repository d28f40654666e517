// A model's calibration record (calibration.json in the model folder, and the `dermtl.calibration` metadata of its
// ONNX file): the temperatures fitted on the training part's validation groups after training
// (train/calibrate.ts), and the lesion decision thresholds chosen there.
//
// The temperatures are FOLDED into the heads' last layers (logits z = W h + b become z / T = (W / T) h + b / T,
// row by row for per-label lesion temperatures), so model.onnx itself outputs calibrated probabilities: the
// library, the CLI, the server, the browser and any other ONNX runtime use them with no code of their own, and a
// model without this record (older folders) is simply uncalibrated, temperature 1. The record says what was folded
// (and lets `dermtl eval` recover the uncalibrated logits, z = T * z', to report both).
import { z } from 'zod';
import { HEAD_PREFIX } from './heads.ts';

export const CALIBRATION_FILE = 'calibration.json';
export const CALIBRATION_VERSION = 1;

const fit = z.object({ temperature: z.number().positive(), nllBefore: z.number(), nllAfter: z.number() });

export const CalibrationSchema = z.object({
  version: z.literal(CALIBRATION_VERSION),
  /** What it was fitted on: the validation groups of the training part, scored with `tta`. */
  fittedOn: z.object({ images: z.number().int().nonnegative(), tta: z.enum(['10crop', 'center']), note: z.string() }),
  /** One temperature for the location softmax (absent: no location head). */
  location: fit.extend({ images: z.number().int().nonnegative() }).optional(),
  /** Lesion temperatures (absent: no lesion head). */
  lesion: z
    .object({
      /** How a label got its temperature (see train/calibrate.ts). */
      rule: z.string(),
      /** 'per-label': every label its own; 'shared': one for all; 'mixed': per label where supported, else shared. */
      mode: z.enum(['per-label', 'shared', 'mixed']),
      shared: fit,
      labels: z.record(
        z.string(),
        z.object({
          temperature: z.number().positive(),
          source: z.enum(['label', 'shared']),
          positives: z.number().int().nonnegative(),
          negatives: z.number().int().nonnegative(),
        }),
      ),
    })
    .optional(),
  /** Lesion decision thresholds on the calibrated probabilities: present when p >= threshold. */
  thresholds: z
    .object({
      rule: z.string(),
      labels: z.record(
        z.string(),
        z.object({ threshold: z.number(), f1: z.number().nullable(), source: z.enum(['validation', 'default']) }),
      ),
    })
    .optional(),
});
export type ModelCalibration = z.infer<typeof CalibrationSchema>;

/** The threshold of a lesion label when none was chosen (no calibration record, or no validation positive). */
export const DEFAULT_THRESHOLD = 0.5;

/** Lesion temperatures in label order (1 where the record has none). */
export function lesionTemperatures(cal: ModelCalibration | null | undefined, labels: readonly string[]): number[] {
  return labels.map((l) => cal?.lesion?.labels[l]?.temperature ?? 1);
}

export function locationTemperature(cal: ModelCalibration | null | undefined): number {
  return cal?.location?.temperature ?? 1;
}

/** Lesion thresholds by label (DEFAULT_THRESHOLD where the record has none). */
export function lesionThresholds(
  cal: ModelCalibration | null | undefined,
  labels: readonly string[],
): Record<string, number> {
  return Object.fromEntries(labels.map((l) => [l, cal?.thresholds?.labels[l]?.threshold ?? DEFAULT_THRESHOLD]));
}

/**
 * The head params with the temperatures folded in: every head layer that writes the lesion logits
 * (heads/lesion.../weight|bias, rows = lesion labels) has row c divided by lesionT[c]; every one that writes the
 * location logits is divided by locationT. Other params are shared, not copied.
 */
export function foldTemperatures(
  params: ReadonlyMap<string, Float32Array>,
  temps: { lesion?: readonly number[]; location?: number },
): Map<string, Float32Array> {
  const out = new Map(params);
  const scaleRows = (pattern: RegExp, rowScale: (r: number) => number, rows: number) => {
    for (const [name, v] of params) {
      if (!pattern.test(name)) continue;
      if (v.length % rows !== 0)
        throw new Error(`foldTemperatures: ${name} has ${v.length} values, not a multiple of ${rows} rows`);
      const cols = v.length / rows;
      out.set(
        name,
        v.map((x, i) => x / rowScale(Math.floor(i / cols))),
      );
    }
  };
  if (temps.lesion)
    scaleRows(
      new RegExp(`^${HEAD_PREFIX}lesion(_[^/]*)?/(weight|bias)$`),
      (r) => temps.lesion![r],
      temps.lesion.length,
    );
  if (temps.location !== undefined)
    scaleRows(new RegExp(`^${HEAD_PREFIX}location(_[^/]*)?/(weight|bias)$`), () => temps.location!, 1);
  return out;
}
