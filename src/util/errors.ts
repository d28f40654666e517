/**
 * An error caused by the user's input (a file, a line, a flag), as opposed to a bug.
 * The CLI prints its message alone, without a stack, and exits non-zero.
 */
export class DermtlError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'DermtlError';
  }
}

/** Several input problems reported together, e.g. every bad line of a manifest. */
export function errorList(title: string, problems: string[], max = 50): DermtlError {
  const shown = problems.slice(0, max).map((p) => `  - ${p}`);
  if (problems.length > max) shown.push(`  ... and ${problems.length - max} more`);
  return new DermtlError(
    `${title} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${shown.join('\n')}`,
  );
}
