/**
 * The cross-validation study report. A study runner (`dermtl cv`) builds a `StudyResults`:
 *
 *   const lesion = modelResult(evaluationJson(pooledEval), foldEvals.map((e) => e && evaluationJson(e)));
 *   ... likewise location, mtl, ensemble and the baselines prior and linear (a fold the model was skipped in is
 *   null, and listed in `skipped`; linear also has `choices`, its lambdas per fold)
 *   const models = { lesion, location, mtl, ensemble, prior, linear };
 *   const results: StudyResults = { version: RESULTS_VERSION, command, config, dataset, lesionLabels, locationLabels,
 *     folds: k, models, paired: pairedResults(mtl, lesion), comparisons: comparisonResults(models), timing, skipped };
 *   await writeStudyReport(studyDir, results);
 *
 * and gets results.json, table1.md, figure1/figure3 (.svg, .png) and a self-contained report.html.
 */
export {
  BASELINE_NAMES,
  COMPARISONS,
  MODEL_NAMES,
  RESULTS_VERSION,
  VARIANT_NAMES,
  comparisonResults,
  modelResult,
  pairedMetric,
  pairedResults,
  readResults,
  validateResults,
  versusLesionResults,
} from '../../eval/studyResults.ts';
export type {
  CalibrationPair,
  Comparison,
  Eval,
  LesionEval,
  LocationEval,
  ModelName,
  MtlEval,
  Selection,
  StudyResults,
} from '../../eval/studyResults.ts';
export { formatTable1, table1, table1Markdown } from './table1.ts';
export { figure3Spec } from './figure3.ts';
export { reportHtml } from './html.ts';
export { REPORT_FILES, rewriteStudyReport, writeStudyReport } from './writeReport.ts';
