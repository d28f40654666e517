import { Command } from 'commander';
import { join } from 'node:path';
import { DEMO_STUDY } from '../demoStudy.ts';
import { intArg } from './demo-data.ts';

/** `dermtl start` (what `npm start` runs): demo dataset if needed, its statistics, Figure 1, and the cross-validation study. */
export function register(program: Command): void {
  program
    .command('start')
    .description(
      'Demo run: generate SYNTHETIC demo data if the data folder has no manifest.csv, print its statistics, write Figure 1 ' +
        '(lesion x location heatmap), then run the cross-validation study (dermtl cv, frozen ImageNet trunk) into <out>/study ' +
        'and print Table 1 and the path of its report.html',
    )
    .option('--out <dir>', 'output folder for the figures, the study config and the study', 'demo')
    .option('--data <dir>', 'dataset folder with manifest.csv (default: <out>/data; generated when absent)')
    .option('--n <images>', 'number of demo images, when generating', intArg, DEMO_STUDY.images)
    .option('--seed <int>', 'seed of the demo data (when generating) and of the study', intArg, 0)
    .option('--size <px>', 'demo image width, when generating', intArg, 320)
    .option('--folds <k>', 'folds of the study', intArg, DEMO_STUDY.folds)
    .option(
      '--config <c.json>',
      `training config of the study (default: <out>/cv-config.json, written with ${JSON.stringify(DEMO_STUDY.config)})`,
    )
    .option('--force', 'discard an earlier study of other settings in <out>/study instead of refusing')
    .option('--no-study', 'stop after the statistics and Figure 1')
    .option('--no-progress', 'no progress bars on stderr')
    .action(
      async (opts: {
        out: string;
        data?: string;
        n: number;
        seed: number;
        size: number;
        folds: number;
        config?: string;
        force?: boolean;
        study: boolean;
        progress: boolean;
      }) => {
        const [{ stderrProgress }, { runStart }] = await Promise.all([
          import('../../util/progress.ts'),
          import('../start.ts'),
        ]);
        const progress = opts.progress
          ? stderrProgress('drawing demo images')
          : Object.assign(() => {}, { stop: () => {} });
        try {
          await runStart({
            data: opts.data ?? join(opts.out, 'data'),
            out: opts.out,
            n: opts.n,
            seed: opts.seed,
            size: opts.size,
            study: opts.study,
            folds: opts.folds,
            configFile: opts.config,
            force: opts.force ?? false,
            progress: opts.progress,
            onProgress: (done, total) => {
              progress(done, total);
              if (done === total) progress.stop(); // end the bar's line before the statistics are printed
            },
          });
        } finally {
          progress.stop();
        }
      },
    );
}
