#!/usr/bin/env node
// The dermtl command: the CLI compiled to dist/ by `npm run build` (run by `npm install` in the repository).
// scripts/dermtl-dev.js runs the same CLI from the TypeScript sources instead.

// `dermtl stats x.csv | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !String(e.message).includes('dist/cli/main.js')) throw e;
  process.stderr.write('dermtl: the CLI is not built (no dist/cli/main.js): run npm run build in the dermtl folder\n');
  process.exit(1);
}
process.exitCode = await cli.main(process.argv);
