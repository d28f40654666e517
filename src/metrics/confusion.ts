/**
 * The confusion matrix and balanced accuracy of a single-label head. The predicted class of an image is its
 * highest score; when the true class ties for the top, another tied class is taken (ties count against the model,
 * as in top-1), so the diagonal of the matrix is exactly the top-1 hits.
 */

export interface Confusion {
  labels: string[];
  /** matrix[t][p]: images of true class t predicted as p. */
  matrix: number[][];
  /** Mean over the classes with a test image of their recall (matrix[c][c] / row sum); null without images. */
  balancedAccuracy: number | null;
  /** Recall per class; null for a class without a test image. */
  recall: Record<string, number | null>;
}

/** `truth[i]` is image i's true class index into `labels`; `scores[i][c]` its score for class c. */
export function confusion(
  labels: readonly string[],
  truth: readonly number[],
  scores: readonly ArrayLike<number>[],
): Confusion {
  const q = labels.length;
  const matrix = Array.from({ length: q }, () => new Array<number>(q).fill(0));
  scores.forEach((row, i) => {
    matrix[truth[i]][predictedClass(row, truth[i])]++;
  });
  const recall: Record<string, number | null> = {};
  const defined: number[] = [];
  labels.forEach((label, c) => {
    const total = matrix[c].reduce((a, b) => a + b, 0);
    recall[label] = total ? matrix[c][c] / total : null;
    if (total) defined.push(matrix[c][c] / total);
  });
  return {
    labels: [...labels],
    matrix,
    recall,
    balancedAccuracy: defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : null,
  };
}

/** argmax of `row`; if `truth` is among several tied maxima, the first tied class that is not `truth`. */
export function predictedClass(row: ArrayLike<number>, truth: number): number {
  let max = -Infinity;
  for (let c = 0; c < row.length; c++) max = Math.max(max, row[c]);
  let first = -1;
  for (let c = 0; c < row.length; c++) {
    if (row[c] !== max) continue;
    if (c !== truth) return c;
    if (first < 0) first = c;
  }
  return first;
}
