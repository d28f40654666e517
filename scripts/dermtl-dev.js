#!/usr/bin/env node
// The dermtl command run from the TypeScript sources through tsx's loader, with no build step: what the tests that
// spawn the CLI run, so they test the working tree. bin/dermtl.js (the published command) runs the built dist/.
import { register } from 'tsx/esm/api';

// `dermtl stats x.csv | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
