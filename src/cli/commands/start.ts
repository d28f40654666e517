import { Command } from 'commander';
import { join } from 'node:path';
import { stderrProgress } from '../../report/progress.ts';
import { runStart } from '../../report/start.ts';
import { intArg } from './demo-data.ts';

/** `dermtl start` (what `npm start` runs): demo dataset if needed, its statistics, and Figure 1. */
export function register(program: Command): void {
  program
    .command('start')
    .description(
      'Demo run: generate SYNTHETIC demo data if the data folder has no manifest.csv, print its statistics, ' +
        'and write Figure 1 (lesion x location heatmap) as SVG, PNG and JSON',
    )
    .option('--out <dir>', 'output folder for the figures', 'demo')
    .option('--data <dir>', 'dataset folder with manifest.csv (default: <out>/data; generated when absent)')
    .option('--n <images>', 'number of demo images, when generating', intArg, 600)
    .option('--seed <int>', 'demo-data seed, when generating', intArg, 0)
    .option('--size <px>', 'demo image width, when generating', intArg, 320)
    .action(async (opts: { out: string; data?: string; n: number; seed: number; size: number }) => {
      const progress = stderrProgress('drawing demo images');
      try {
        await runStart({
          data: opts.data ?? join(opts.out, 'data'), out: opts.out, n: opts.n, seed: opts.seed, size: opts.size,
          onProgress: (done, total) => {
            progress(done, total);
            if (done === total) progress.stop(); // end the bar's line before the statistics are printed
          },
        });
      } finally {
        progress.stop();
      }
    });
}
