import cliProgress from 'cli-progress';

/** A progress callback plus a stop() that ends the bar's line. */
export type ProgressBar = ((done: number, total: number) => void) & { stop: () => void };

/**
 * A progress bar with ETA on stderr (stdout stays clean for results); on a non-terminal (CI logs)
 * cli-progress prints a line every few seconds instead of redrawing.
 */
export function stderrProgress(label: string): ProgressBar {
  const bar = new cliProgress.SingleBar(
    {
      format: `dermtl: ${label} [{bar}] {percentage}% {value}/{total} | ETA {eta_formatted}`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 3000,
      hideCursor: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const fn = ((done: number, total: number) => {
    if (!started) {
      bar.start(total, 0);
      started = true;
    }
    bar.update(Math.min(done, total));
  }) as ProgressBar;
  fn.stop = () => {
    if (started) bar.stop();
    started = false;
  };
  return fn;
}
