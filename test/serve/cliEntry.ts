// The dermtl CLI as a child process for tests that need one (signals, working directory): src/cli/main.ts's
// program, plus the predict and serve commands when main.ts does not register them (yet).
import { CommanderError } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import * as predict from '../../src/cli/commands/predict.ts';
import * as serve from '../../src/cli/commands/serve.ts';
import { DermtlError } from '../../src/util/errors.ts';

const program = buildProgram();
for (const cmd of [predict, serve]) {
  const probe = buildProgram();
  const before = probe.commands.length;
  cmd.register(probe);
  const name = probe.commands[before].name();
  if (!program.commands.some((c) => c.name() === name)) cmd.register(program);
}
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : 2;
  else if (e instanceof DermtlError) {
    process.stderr.write(`dermtl: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else throw e;
}
