#!/usr/bin/env node
// The dermtl command. Sources are TypeScript, run through tsx's loader so there is no build step.
import { register } from 'tsx/esm/api';

// `dermtl stats x.csv | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
