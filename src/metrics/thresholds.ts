/**
 * Operating points of a multi-label head: the decision threshold chosen on validation data (max F1 by default)
 * and sensitivity / specificity at a given threshold. A label is predicted present when its probability is >= the
 * threshold.
 */

export interface ChosenThreshold {
  threshold: number;
  /** F1 on the data it was chosen on. */
  f1: number;
}

/**
 * The threshold that maximises F1 on (relevant, scores). Each distinct score s is a candidate ("present when
 * >= s"); on an F1 tie the highest s wins (fewer positives). The cut returned is the midpoint between the best s and
 * the next lower distinct score, so it does not sit on a validation score (s itself when nothing scores lower).
 * Null without a positive (F1 undefined).
 */
export function maxF1Threshold(relevant: ArrayLike<boolean>, scores: ArrayLike<number>): ChosenThreshold | null {
  const n = scores.length;
  if (relevant.length !== n) throw new Error(`maxF1Threshold: ${relevant.length} labels but ${n} scores`);
  let positives = 0;
  for (let i = 0; i < n; i++) if (relevant[i]) positives++;
  if (positives === 0) return null;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || 0);
  let tp = 0;
  let fp = 0;
  let best: { f1: number; at: number } | null = null;
  for (let i = 0; i < n; ) {
    let j = i;
    for (; j < n && scores[order[j]] === scores[order[i]]; j++) relevant[order[j]] ? tp++ : fp++;
    const f1 = (2 * tp) / (2 * tp + fp + (positives - tp));
    if (!best || f1 > best.f1) best = { f1, at: i };
    i = j;
  }
  const s = scores[order[best!.at]];
  let below: number | undefined;
  for (let k = best!.at; k < n; k++) {
    if (scores[order[k]] < s) {
      below = scores[order[k]];
      break;
    }
  }
  return { threshold: below === undefined ? s : (s + below) / 2, f1: best!.f1 };
}

export interface OperatingPoint {
  threshold: number;
  /** TP / positives; null without a positive. */
  sensitivity: number | null;
  /** TN / negatives; null without a negative. */
  specificity: number | null;
}

/** Sensitivity and specificity of "present when score >= threshold". */
export function operatingPoint(
  relevant: ArrayLike<boolean>,
  scores: ArrayLike<number>,
  threshold: number,
): OperatingPoint {
  let tp = 0;
  let pos = 0;
  let tn = 0;
  let neg = 0;
  for (let i = 0; i < scores.length; i++) {
    const yes = scores[i] >= threshold;
    if (relevant[i]) {
      pos++;
      if (yes) tp++;
    } else {
      neg++;
      if (!yes) tn++;
    }
  }
  return { threshold, sensitivity: pos ? tp / pos : null, specificity: neg ? tn / neg : null };
}

/**
 * Sensitivity and specificity over several parts, each decided at its own threshold (e.g. the folds of a study,
 * each model with the threshold chosen on its own validation part): the counts are summed, then divided.
 */
export function pooledOperatingPoint(
  parts: readonly { relevant: ArrayLike<boolean>; scores: ArrayLike<number>; threshold: number }[],
): Omit<OperatingPoint, 'threshold'> {
  let tp = 0;
  let pos = 0;
  let tn = 0;
  let neg = 0;
  for (const { relevant, scores, threshold } of parts) {
    for (let i = 0; i < scores.length; i++) {
      const yes = scores[i] >= threshold;
      if (relevant[i]) {
        pos++;
        if (yes) tp++;
      } else {
        neg++;
        if (!yes) tn++;
      }
    }
  }
  return { sensitivity: pos ? tp / pos : null, specificity: neg ? tn / neg : null };
}
