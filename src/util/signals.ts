/**
 * Runs `work` with the first SIGINT/SIGTERM turned into a clean stop (the AbortSignal it gets is aborted and
 * `message(sig)` is printed) and a second one into an immediate exit (130), so a user is never stuck.
 */
export async function withStopSignals<T>(
  message: (sig: string) => string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const onSignal = (sig: string) => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`\ndermtl: ${sig}: ${message(sig)}\n`);
    ac.abort();
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await work(ac.signal);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
