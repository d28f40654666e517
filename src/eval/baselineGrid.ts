// The linear baseline's regularisation settings, on their own so the report can describe them without loading the
// solver (baselines.ts uses them).

/**
 * The regularisation path, strongest first (each fit warm-starts the next): 10 down to 1e-4 in steps of about
 * sqrt(10). The path stops early once neither head has improved its validation score for PATIENCE lambdas: the
 * weak end is the slow end, and on derm7pt the choice lies near 0.1-1.
 */
export const LAMBDA_GRID: readonly number[] = [10, 3, 1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4];
export const PATIENCE = 2;
/** Used when the training part has no validation part to choose on (validation.fraction 0, or a single group). */
export const DEFAULT_LAMBDA = 0.1;
