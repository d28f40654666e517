import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { DermtlError } from '../util/errors.ts';
import * as importCmd from './commands/import.ts';
import * as refine from './commands/refine.ts';
import * as stats from './commands/stats.ts';
import * as split from './commands/split.ts';
import * as demoData from './commands/demo-data.ts';
import * as correlation from './commands/correlation.ts';
import * as start from './commands/start.ts';
import * as metrics from './commands/metrics.ts';
import * as train from './commands/train.ts';
import * as evalCmd from './commands/eval.ts';
import * as ensemble from './commands/ensemble.ts';
import * as cv from './commands/cv.ts';
import * as predict from './commands/predict.ts';
import * as explain from './commands/explain.ts';
import * as serve from './commands/serve.ts';
import * as exportCmd from './commands/export.ts';

/** The package's version, from its package.json (src/cli and dist/cli are both two folders below it). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Sub-commands in pipeline order (data -> report); each file adds one command. A command file imports only commander
 * and small modules of constants at its top: the heavy modules (onnxruntime, sharp, vega, fastify, zod, ...) are
 * imported inside the command's action, so --help and --version start fast (test/cli/main.test.ts checks it).
 */
const COMMANDS = [
  start,
  importCmd,
  refine,
  stats,
  correlation,
  split,
  train,
  evalCmd,
  ensemble,
  cv,
  metrics,
  exportCmd,
  predict,
  explain,
  serve,
  demoData,
];

/** Builds the `dermtl` program; each sub-command lives in its own file under src/cli/commands. */
export function buildProgram(): Command {
  const program = new Command('dermtl')
    .description('Multi-task skin-lesion classification: lesion morphology + body location (Liao & Luo, AAAI-17).')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const c of COMMANDS) c.register(program);
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it in-process. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander already printed the message
    if (e instanceof DermtlError) {
      process.stderr.write(`dermtl: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}
