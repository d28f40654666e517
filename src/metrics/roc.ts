import { DermtlError } from '../util/errors.ts';

/**
 * ROC AUC as scikit-learn's roc_auc_score: the area under the ROC curve with tied scores as ONE threshold (the
 * curve crosses a tie group diagonally), which equals the Mann-Whitney statistic with midranks: the probability
 * that a random positive outscores a random negative, a tie counting 1/2. Returns null when the items are all
 * positive or all negative (AUC undefined; scikit-learn raises). Scores are any ordered numbers; NaN is an error.
 */
export function rocAuc(relevant: ArrayLike<boolean>, scores: ArrayLike<number>): number | null {
  const n = scores.length;
  if (relevant.length !== n) throw new Error(`rocAuc: ${relevant.length} labels but ${n} scores`);
  let positives = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) throw new DermtlError(`ROC AUC: score ${i} is NaN; every score must be a number`);
    if (relevant[i]) positives++;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b] || 0);
  // sum of the positives' (mid)ranks, 1-based, ascending
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    let groupPositives = 0;
    for (; j < n && scores[order[j]] === scores[order[i]]; j++) if (relevant[order[j]]) groupPositives++;
    rankSum += groupPositives * ((i + 1 + j) / 2);
    i = j;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * One-vs-rest AUC of each class of a single-label head (scikit-learn roc_auc_score(multi_class='ovr')): class c's
 * score column against "is class c". Classes without a test image (or with every one) are null and not averaged;
 * `macro` is the unweighted mean of the rest (scikit-learn's average='macro'), null when none is defined.
 */
export function oneVsRestAuc(
  labels: readonly string[],
  truth: readonly number[],
  scores: readonly ArrayLike<number>[],
): { auc: Record<string, number | null>; macro: number | null } {
  const auc: Record<string, number | null> = {};
  labels.forEach((label, c) => {
    auc[label] = rocAuc(
      truth.map((t) => t === c),
      scores.map((row) => row[c]),
    );
  });
  const defined = Object.values(auc).filter((x): x is number => x !== null);
  return { auc, macro: defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : null };
}
