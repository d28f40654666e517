import { errorList } from '../util/errors.ts';
import { scoreColumn, type ScoreKind, type ScoreTable } from '../metrics/scores.ts';

/**
 * The paper's two-model combination: per image and label, the MAX of the two models' scores
 * ("best evaluation scores of the two models"). Both tables must cover the same images and the
 * same labels (in any order); the result follows `a`'s order.
 *
 * The two models' scores must be on one scale (both probabilities, or both logits of comparable
 * calibration): the max of a probability and a logit means nothing. For the location head the
 * element-wise max of two softmax distributions no longer sums to 1; that is fine, because top-k
 * accuracy only ranks the classes within a row, and a ranking of any real numbers is well defined
 * (ties count against the true class, see metrics.ts).
 */
export function ensembleMax(a: ScoreTable, b: ScoreTable, names: [string, string] = ['first', 'second']): ScoreTable {
  const problems = [
    ...setDifference('image', a.images, b.images, names),
    ...setDifference('column', columns(a), columns(b), names),
  ];
  if (problems.length)
    throw errorList(
      `cannot ensemble ${names[0]} and ${names[1]}: they must score the same images and labels`,
      problems,
    );
  const rowOfB = new Map(b.images.map((image, i) => [image, i]));
  const combine = (kind: ScoreKind) => {
    const aLabels = kind === 'lesion' ? a.lesionLabels : a.locationLabels;
    const bLabels = kind === 'lesion' ? b.lesionLabels : b.locationLabels;
    const colOfB = aLabels.map((l) => bLabels.indexOf(l));
    const aRows = kind === 'lesion' ? a.lesion : a.location;
    const bRows = kind === 'lesion' ? b.lesion : b.location;
    return a.images.map((image, i) => {
      const bRow = bRows[rowOfB.get(image)!];
      return Float64Array.from(aRows[i], (x, c) => Math.max(x, bRow[colOfB[c]]));
    });
  };
  return {
    images: [...a.images],
    lesionLabels: [...a.lesionLabels],
    locationLabels: [...a.locationLabels],
    lesion: a.lesionLabels.length ? combine('lesion') : a.images.map(() => new Float64Array(0)),
    location: a.locationLabels.length ? combine('location') : a.images.map(() => new Float64Array(0)),
  };
}

function columns(t: ScoreTable): string[] {
  return [
    ...t.lesionLabels.map((l) => scoreColumn('lesion', l)),
    ...t.locationLabels.map((l) => scoreColumn('location', l)),
  ];
}

function setDifference(what: string, a: string[], b: string[], names: [string, string]): string[] {
  const inB = new Set(b);
  const inA = new Set(a);
  const onlyA = a.filter((x) => !inB.has(x));
  const onlyB = b.filter((x) => !inA.has(x));
  const list = (xs: string[]) => xs.slice(0, 10).join(', ') + (xs.length > 10 ? `, ... (${xs.length} in all)` : '');
  return [
    ...(onlyA.length ? [`${what}(s) only in ${names[0]}: ${list(onlyA)}`] : []),
    ...(onlyB.length ? [`${what}(s) only in ${names[1]}: ${list(onlyB)}`] : []),
  ];
}
