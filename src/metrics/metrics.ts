import { DermtlError } from '../util/errors.ts';
import type { Sample } from '../data/types.ts';
import type { ScoreTable } from './scores.ts';
import { lesionCalibration, locationCalibration, type Calibration } from './calibration.ts';
import { confusion } from './confusion.ts';
import { oneVsRestAuc, rocAuc } from './roc.ts';
import { operatingPoint, type OperatingPoint } from './thresholds.ts';

/**
 * The evaluation measures of Liao & Luo (AAAI-17): lesion morphology as AP per class, mAP-class and
 * mAP-image; body location as top-1 and top-3 accuracy.
 *
 * Tie conventions (both independent of label or image order, so shuffling a score file's rows or
 * columns never changes a number):
 * - AP: items with equal scores form ONE threshold, as in scikit-learn's average_precision_score.
 * - top-k: a class whose score equals the true class's score is ranked ABOVE it (pessimistic), so
 *   a model (or an ensemble) cannot gain from ties; a constant score vector is never a top-1 hit
 *   unless there is a single class.
 */

/**
 * Non-interpolated average precision of one ranking: AP = sum_n (R_n - R_{n-1}) P_n over the
 * distinct score thresholds, highest first. Returns null when no item is relevant (AP undefined).
 * Scores may be any ordered numbers (probabilities, logits, +-Infinity); NaN is an error.
 */
export function averagePrecision(relevant: ArrayLike<boolean>, scores: ArrayLike<number>): number | null {
  const n = scores.length;
  if (relevant.length !== n) throw new Error(`averagePrecision: ${relevant.length} labels but ${n} scores`);
  checkScores(scores, 'average precision');
  let positives = 0;
  for (let i = 0; i < n; i++) if (relevant[i]) positives++;
  if (positives === 0) return null;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    scores[a] > scores[b] ? -1 : scores[a] < scores[b] ? 1 : 0,
  );
  let ap = 0;
  let hits = 0;
  for (let i = 0; i < n; ) {
    // one threshold: every item scoring exactly this much is retrieved together
    const s = scores[order[i]];
    let groupHits = 0;
    let j = i;
    for (; j < n && scores[order[j]] === s; j++) if (relevant[order[j]]) groupHits++;
    hits += groupHits;
    if (groupHits > 0) ap += groupHits * (hits / j);
    i = j;
  }
  // Divide once at the end: every term is <= its groupHits and rounding is monotonic, so the sum is <= positives
  // and AP <= 1 exactly (dividing each term first can give 1 + 1 ulp for a perfect ranking).
  return ap / positives;
}

/**
 * 1-based rank of the true class among `scores`, counting every other class with a score >= the
 * true one as ranked above it (ties count against the prediction).
 */
export function rankOfTrue(scores: ArrayLike<number>, trueIndex: number): number {
  if (!Number.isInteger(trueIndex) || trueIndex < 0 || trueIndex >= scores.length) {
    throw new Error(`rankOfTrue: true index ${trueIndex} outside 0..${scores.length - 1}`);
  }
  checkScores(scores, 'top-k');
  const t = scores[trueIndex];
  let rank = 1;
  for (let j = 0; j < scores.length; j++) if (j !== trueIndex && scores[j] >= t) rank++;
  return rank;
}

function checkScores(scores: ArrayLike<number>, what: string): void {
  for (let i = 0; i < scores.length; i++) {
    if (Number.isNaN(scores[i])) throw new DermtlError(`${what}: score ${i} is NaN; every score must be a number`);
  }
}

export interface LesionMetrics {
  /** The lesion labels scored (the score columns), in column order. */
  labels: string[];
  /** Test images carrying each label (every scored label, zero included). */
  positives: Record<string, number>;
  /** AP of each label that has at least one positive test image. */
  ap: Record<string, number>;
  /** Scored labels without a positive test image: their AP is undefined and they are not averaged. */
  skipped: string[];
  /** Mean AP over the labels in `ap`; null when there are none. */
  mapClass: number | null;
  /**
   * Mean over test images with at least one scored lesion label of the AP of ranking that image's
   * scored labels by score; null when no image has one.
   */
  mapImage: number | null;
  /** Images averaged in mapImage. */
  mapImageCount: number;
  /** ROC AUC of each label with at least one positive and one negative test image (scikit-learn roc_auc_score). */
  auc: Record<string, number>;
  /** Mean AUC over the labels in `auc`; null when there are none. */
  meanAuc: number | null;
  /** Sensitivity and specificity of each label at its threshold (when thresholds are given). */
  operatingPoints?: Record<string, OperatingPoint>;
  /** Pooled calibration of the (image, label) probabilities; null when the scores are not probabilities. */
  calibration: Calibration | null;
  /** Test images evaluated. */
  n: number;
}

/**
 * Lesion metrics. `truth[i]` lists image i's lesion labels (labels that are not scored are
 * ignored, see LesionMetrics.mapImage); `scores[i][c]` is its score for `labels[c]`.
 */
export function lesionMetrics(
  labels: readonly string[],
  truth: readonly (readonly string[])[],
  scores: readonly ArrayLike<number>[],
  thresholds?: Readonly<Record<string, number>>,
): LesionMetrics {
  checkShape('lesion', labels, truth.length, scores);
  const has = truth.map((t) => new Set(t));
  const positives: Record<string, number> = {};
  const ap: Record<string, number> = {};
  const auc: Record<string, number> = {};
  const operatingPoints: Record<string, OperatingPoint> = {};
  const skipped: string[] = [];
  labels.forEach((label, c) => {
    const relevant = has.map((s) => s.has(label));
    const column = scores.map((row) => row[c]);
    positives[label] = relevant.filter(Boolean).length;
    const value = averagePrecision(relevant, column);
    if (value === null) skipped.push(label);
    else ap[label] = value;
    const area = rocAuc(relevant, column);
    if (area !== null) auc[label] = area;
    if (thresholds && label in thresholds) operatingPoints[label] = operatingPoint(relevant, column, thresholds[label]);
  });
  const perImage: number[] = [];
  scores.forEach((row, i) => {
    const value = averagePrecision(
      labels.map((l) => has[i].has(l)),
      row,
    );
    if (value !== null) perImage.push(value);
  });
  return {
    labels: [...labels],
    positives,
    ap,
    skipped,
    mapClass: meanOrNull(Object.values(ap)),
    mapImage: meanOrNull(perImage),
    mapImageCount: perImage.length,
    auc,
    meanAuc: meanOrNull(Object.values(auc)),
    ...(thresholds ? { operatingPoints } : {}),
    calibration: lesionCalibration(labels, truth, scores),
    n: truth.length,
  };
}

export interface LocationMetrics {
  /** The location labels scored, in column order. */
  labels: string[];
  /** Test images of each location (every scored label, zero included). */
  positives: Record<string, number>;
  /** Fraction of images whose true location strictly outscores every other one. */
  top1: number;
  /** Fraction of images whose true location is among the 3 highest scores (ties count against). */
  top3: number;
  /** Mean recall over the locations with a test image (predicted = top score, ties against; confusion.ts). */
  balancedAccuracy: number | null;
  /** One-vs-rest ROC AUC per location (null without a test image of it) and their macro mean. */
  auc: Record<string, number | null>;
  macroAuc: number | null;
  /** matrix[true][predicted] over `labels`. */
  confusion: number[][];
  /** Top-label calibration; null when the scores are not probabilities. */
  calibration: Calibration | null;
  n: number;
}

/** Location metrics; every true location must be one of `labels`. */
export function locationMetrics(
  labels: readonly string[],
  truth: readonly string[],
  scores: readonly ArrayLike<number>[],
): LocationMetrics {
  checkShape('location', labels, truth.length, scores);
  if (truth.length === 0) throw new DermtlError('location metrics: no test images');
  const index = new Map(labels.map((l, c) => [l, c]));
  const positives: Record<string, number> = Object.fromEntries(labels.map((l) => [l, 0]));
  let top1 = 0;
  let top3 = 0;
  truth.forEach((location, i) => {
    const c = index.get(location);
    if (c === undefined)
      throw new DermtlError(`location metrics: true location "${location}" of image ${i} has no score column`);
    positives[location]++;
    const rank = rankOfTrue(scores[i], c);
    if (rank <= 1) top1++;
    if (rank <= 3) top3++;
  });
  const truthIndex = truth.map((l) => index.get(l)!);
  const cm = confusion(labels, truthIndex, scores);
  const ovr = oneVsRestAuc(labels, truthIndex, scores);
  return {
    labels: [...labels],
    positives,
    top1: top1 / truth.length,
    top3: top3 / truth.length,
    balancedAccuracy: cm.balancedAccuracy,
    auc: ovr.auc,
    macroAuc: ovr.macro,
    confusion: cm.matrix,
    calibration: locationCalibration(truthIndex, scores),
    n: truth.length,
  };
}

function checkShape(what: string, labels: readonly string[], n: number, scores: readonly ArrayLike<number>[]): void {
  if (scores.length !== n) throw new Error(`${what} metrics: ${n} images but ${scores.length} score rows`);
  scores.forEach((row, i) => {
    if (row.length !== labels.length)
      throw new Error(`${what} metrics: row ${i} has ${row.length} scores for ${labels.length} labels`);
  });
}

function meanOrNull(xs: number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Everything `dermtl metrics` computes for one score table; a head without score columns is absent. */
export interface Evaluation {
  /** Images evaluated. */
  n: number;
  lesion?: LesionMetrics;
  location?: LocationMetrics;
}

export interface EvaluateOptions {
  /** Lesion decision thresholds by label ("present when >= threshold"): sensitivity and specificity at them. */
  thresholds?: Readonly<Record<string, number>>;
}

/** Metrics of `scores` (rows aligned with `samples`, e.g. from matchManifest) against the manifest labels. */
export function evaluate(samples: readonly Sample[], scores: ScoreTable, opts: EvaluateOptions = {}): Evaluation {
  if (samples.length !== scores.images.length)
    throw new Error(`evaluate: ${samples.length} samples but ${scores.images.length} score rows`);
  samples.forEach((s, i) => {
    if (s.image !== scores.images[i]) throw new Error(`evaluate: row ${i} scores ${scores.images[i]}, not ${s.image}`);
  });
  const out: Evaluation = { n: samples.length };
  if (scores.lesionLabels.length)
    out.lesion = lesionMetrics(
      scores.lesionLabels,
      samples.map((s) => s.lesions),
      scores.lesion,
      opts.thresholds,
    );
  if (scores.locationLabels.length)
    out.location = locationMetrics(
      scores.locationLabels,
      samples.map((s) => s.location),
      scores.location,
    );
  return out;
}

export interface SkippedLabel {
  label: string;
  reason: 'no positive test image' | 'no score column';
}

/**
 * The JSON document of `dermtl metrics`: `ap` (lesion label -> AP), `mapClass`, `mapImage`, `auc` (lesion label ->
 * ROC AUC), `meanAuc`, `operatingPoints` (with thresholds), `top1`, `top3`, `balancedAccuracy`, `locationAuc`,
 * `macroAuc`, `confusion` ({labels, matrix[true][predicted]}), `calibration` per head (ECE, MCE, Brier, bins; null
 * when the scores are not probabilities) (only the keys the score columns allow), `skipped`, `n`, and per-label
 * `positives` split by head.
 */
export function evaluationJson(ev: Evaluation, unscoredLesions: readonly string[] = []): Record<string, unknown> {
  const doc: Record<string, unknown> = { n: ev.n };
  const skipped: SkippedLabel[] = [];
  const calibration: Record<string, Calibration | null> = {};
  if (ev.lesion) {
    const l = ev.lesion;
    Object.assign(doc, {
      ap: l.ap,
      mapClass: l.mapClass,
      mapImage: l.mapImage,
      mapImageImages: l.mapImageCount,
      auc: l.auc,
      meanAuc: l.meanAuc,
    });
    if (l.operatingPoints) doc.operatingPoints = l.operatingPoints;
    calibration.lesion = l.calibration;
    skipped.push(...l.skipped.map((label): SkippedLabel => ({ label, reason: 'no positive test image' })));
  }
  skipped.push(...unscoredLesions.map((label): SkippedLabel => ({ label, reason: 'no score column' })));
  if (ev.location) {
    const c = ev.location;
    Object.assign(doc, {
      top1: c.top1,
      top3: c.top3,
      balancedAccuracy: c.balancedAccuracy,
      locationAuc: c.auc,
      macroAuc: c.macroAuc,
      confusion: { labels: c.labels, matrix: c.confusion },
    });
    calibration.location = c.calibration;
  }
  doc.calibration = calibration;
  doc.skipped = skipped;
  doc.positives = {
    ...(ev.lesion ? { lesion: ev.lesion.positives } : {}),
    ...(ev.location ? { location: ev.location.positives } : {}),
  };
  return doc;
}

/** A readable table of an evaluation, one line per string. */
export function formatEvaluation(ev: Evaluation, unscoredLesions: readonly string[] = []): string[] {
  const lines: string[] = [];
  const num = (x: number | null | undefined) => (x === null || x === undefined ? '   n/a' : x.toFixed(4));
  if (ev.lesion) {
    const l = ev.lesion;
    const width = Math.max(12, ...l.labels.map((x) => x.length));
    const ops = l.operatingPoints;
    lines.push(`${'lesion label'.padEnd(width)}  positives      AP     AUC${ops ? '  thresh    sens    spec' : ''}`);
    for (const label of l.labels) {
      const op = ops?.[label];
      const at = ops
        ? `  ${op ? `${num(op.threshold)}  ${num(op.sensitivity)}  ${num(op.specificity)}` : '   n/a     n/a     n/a'}`
        : '';
      lines.push(
        `${label.padEnd(width)}  ${String(l.positives[label]).padStart(9)}  ${label in l.ap ? num(l.ap[label]) : '   n/a'}  ${num(l.auc[label])}${at}`,
      );
    }
    lines.push(`mAP-class ${num(l.mapClass)} over ${Object.keys(l.ap).length} class(es)`);
    lines.push(`mAP-image ${num(l.mapImage)} over ${l.mapImageCount} image(s) with a lesion label`);
    lines.push(
      `mean AUC ${num(l.meanAuc)} over ${Object.keys(l.auc).length} label(s) with positive and negative test images`,
    );
    if (l.calibration)
      lines.push(
        `lesion calibration: ECE ${num(l.calibration.ece)}  Brier ${num(l.calibration.brier)}  (${l.calibration.n} image-label pairs, 15 bins)`,
      );
  }
  if (ev.location) {
    const c = ev.location;
    lines.push(
      `location top-1 ${num(c.top1)}  top-3 ${num(c.top3)}  (${c.n} images, ${c.labels.length} locations; ties count against)`,
    );
    lines.push(`location balanced accuracy ${num(c.balancedAccuracy)}  macro AUC ${num(c.macroAuc)} (one-vs-rest)`);
    if (c.calibration)
      lines.push(
        `location calibration: ECE ${num(c.calibration.ece)}  Brier ${num(c.calibration.brier)}  (top-label, 15 bins)`,
      );
  }
  const skipped = [
    ...(ev.lesion?.skipped.map((x) => `${x} (no positive test image)`) ?? []),
    ...unscoredLesions.map((x) => `${x} (no score column)`),
  ];
  if (skipped.length) lines.push(`skipped, not averaged: ${skipped.join(', ')}`);
  return lines;
}
