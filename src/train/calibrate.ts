// Calibration after training, on the training part's VALIDATION groups only (never a test image): temperature
// scaling (metrics/temperature.ts) of each head, scored as the model is tested (config eval.tta), then the lesion
// decision thresholds (max F1) on the calibrated probabilities. The temperatures are folded into the heads
// (models/calibration.ts), so the saved model outputs calibrated probabilities everywhere.
//
// Lesion temperatures: a label gets its own temperature only when the validation part holds at least
// MIN_LABEL_EXAMPLES positives AND negatives of it (a one-parameter fit on fewer is mostly noise: with 5 positives
// the NLL is flat over a wide range of T); every other label takes one temperature shared by all labels, fitted on
// all (image, label) pairs. The record says which (mode per-label / shared / mixed, and per label its source).
import type { Sample } from '../data/types.ts';
import {
  binaryNll,
  fitTemperature,
  softmaxNll,
  viewAveragedProbs,
  type TemperatureFit,
  type ViewLogits,
} from '../metrics/temperature.ts';
import { maxF1Threshold } from '../metrics/thresholds.ts';
import { ttaViews } from './tta.ts';
import {
  CALIBRATION_VERSION,
  DEFAULT_THRESHOLD,
  foldTemperatures,
  type ModelCalibration,
} from '../models/calibration.ts';
import { HEAD_PREFIX } from '../models/heads.ts';
import type { NetworkSpec } from '../models/network.ts';
import type { RunLabels } from './run.ts';
import { viewLogits, type ViewLogitsOptions } from './viewLogits.ts';

/** Validation positives and negatives a lesion label needs for a temperature of its own. */
export const MIN_LABEL_EXAMPLES = 20;

export interface CalibrateInput {
  spec: NetworkSpec;
  params: ReadonlyMap<string, Float32Array>;
  labels: RunLabels;
  validation: readonly Sample[];
}

export interface CalibrateResult {
  /** The params with the temperatures folded in (the input params when nothing was fitted). */
  params: ReadonlyMap<string, Float32Array>;
  /** null: no validation part, nothing fitted (temperature 1, default thresholds). */
  calibration: ModelCalibration | null;
  lines: string[];
}

export async function calibrate(input: CalibrateInput, opts: ViewLogitsOptions): Promise<CalibrateResult> {
  const { spec, labels, validation } = input;
  if (validation.length === 0)
    return {
      params: input.params,
      calibration: null,
      lines: ['calibration: no validation part, so the model is left uncalibrated (temperature 1, thresholds 0.5)'],
    };
  const tta = opts.config.eval.tta;
  const pick = ttaViews(tta);
  const first = await viewLogits(spec, input.params, validation, opts);
  const cal: ModelCalibration = {
    version: CALIBRATION_VERSION,
    fittedOn: {
      images: validation.length,
      tta,
      note: 'the validation groups of the training part (never the test part)',
    },
  };
  const lines: string[] = [];
  let params = input.params;
  if (first.location) {
    const index = new Map(labels.location.map((l, c) => [l, c]));
    const fit = fitTemperature(
      softmaxNll(
        first.location,
        pick,
        validation.map((s) => index.get(s.location)!),
      ),
    );
    cal.location = { ...fit, images: validation.length };
    params = foldTemperatures(params, { location: fit.temperature });
    lines.push(
      `calibration: location temperature ${fit.temperature.toFixed(3)} (validation NLL ${fit.nllBefore.toFixed(4)} -> ${fit.nllAfter.toFixed(4)})`,
    );
  }
  if (first.lesion) {
    // a layer besides heads/lesion that writes the lesion logits (a fusion model's site term) may read the location
    // probabilities: score the lesion head again with the location temperature in place
    const coupled = first.location && [...params.keys()].some((k) => k.startsWith(`${HEAD_PREFIX}lesion_`));
    const z = coupled ? (await viewLogits(spec, params, validation, opts)).lesion! : first.lesion;
    const fitted = fitLesions(z, pick, labels.lesion, validation);
    cal.lesion = fitted.record;
    params = foldTemperatures(params, { lesion: fitted.temperatures });
    cal.thresholds = chooseThresholds(z, pick, labels.lesion, validation, fitted.temperatures);
    const own = Object.values(fitted.record.labels).filter((l) => l.source === 'label').length;
    lines.push(
      `calibration: lesion temperatures ${fitted.record.mode} (shared ${fitted.record.shared.temperature.toFixed(3)}, validation NLL ` +
        `${fitted.record.shared.nllBefore.toFixed(4)} -> ${fitted.record.shared.nllAfter.toFixed(4)}; ${own} of ${labels.lesion.length} label(s) with their own)`,
    );
    lines.push(`calibration: lesion thresholds chosen by max F1 on the calibrated validation probabilities`);
  }
  return {
    params,
    calibration: cal,
    lines: lines.map((l) => `${l} on ${validation.length} validation image(s), tta ${tta}`),
  };
}

export function fitLesions(
  z: ViewLogits,
  pick: readonly number[],
  labels: readonly string[],
  validation: readonly Sample[],
): { record: NonNullable<ModelCalibration['lesion']>; temperatures: number[] } {
  const has = validation.map((s) => new Set(s.lesions));
  const relevant = (i: number, c: number) => has[i].has(labels[c]);
  const columns = labels.map((_, c) => c);
  const shared = fitTemperature(binaryNll(z, pick, columns, relevant));
  const record: NonNullable<ModelCalibration['lesion']> = {
    rule: `a label's own temperature when the validation part has >= ${MIN_LABEL_EXAMPLES} positives and negatives of it, else the shared one`,
    mode: 'shared',
    shared,
    labels: {},
  };
  const temperatures = labels.map((label, c) => {
    const positives = has.filter((s) => s.has(label)).length;
    const negatives = validation.length - positives;
    const own: TemperatureFit | null =
      positives >= MIN_LABEL_EXAMPLES && negatives >= MIN_LABEL_EXAMPLES
        ? fitTemperature(binaryNll(z, pick, [c], relevant))
        : null;
    record.labels[label] = {
      temperature: own?.temperature ?? shared.temperature,
      source: own ? 'label' : 'shared',
      positives,
      negatives,
    };
    return record.labels[label].temperature;
  });
  const own = Object.values(record.labels).filter((l) => l.source === 'label').length;
  record.mode = own === 0 ? 'shared' : own === labels.length ? 'per-label' : 'mixed';
  return { record, temperatures };
}

function chooseThresholds(
  z: ViewLogits,
  pick: readonly number[],
  labels: readonly string[],
  validation: readonly Sample[],
  temperatures: readonly number[],
): NonNullable<ModelCalibration['thresholds']> {
  const probs = viewAveragedProbs(z, pick, 'sigmoid', temperatures);
  const out: NonNullable<ModelCalibration['thresholds']> = {
    rule: `max F1 on the validation part (present when p >= threshold); ${DEFAULT_THRESHOLD} for a label without a validation positive`,
    labels: {},
  };
  labels.forEach((label, c) => {
    const chosen = maxF1Threshold(
      validation.map((s) => s.lesions.includes(label)),
      probs.map((row) => row[c]),
    );
    out.labels[label] = chosen
      ? { threshold: chosen.threshold, f1: chosen.f1, source: 'validation' }
      : { threshold: DEFAULT_THRESHOLD, f1: null, source: 'default' };
  });
  return out;
}
