import { Command, InvalidArgumentError } from 'commander';

/** `dermtl demo-data --out DIR [--n 600] [--seed 0] [--size 320]`: write the SYNTHETIC demo dataset. */
export function register(program: Command): void {
  program
    .command('demo-data')
    .description(
      'Generate a SYNTHETIC (drawn, not real) dermatology dataset: DIR/images/*.jpg, DIR/manifest.csv, DIR/README.txt. ' +
        'Skin tone, texture and hair depend on the body site; lesion types are drawn shapes whose frequencies depend on the site.',
    )
    .requiredOption('--out <dir>', 'output folder (new, empty, or an earlier demo-data folder, which is replaced)')
    .option('--n <images>', 'number of images', intArg, 600)
    .option('--seed <int>', 'random seed: the same seed gives byte-identical files', intArg, 0)
    .option('--size <px>', 'image width in pixels (some images are a little less tall)', intArg, 320)
    .action(async (opts: { out: string; n: number; seed: number; size: number }) => {
      const [{ generateDemo }, { stderrProgress }] = await Promise.all([
        import('../../data/demo/generate.ts'),
        import('../../util/progress.ts'),
      ]);
      const progress = stderrProgress('drawing images');
      try {
        const r = await generateDemo(opts.out, { n: opts.n, seed: opts.seed, size: opts.size, onProgress: progress });
        progress.stop();
        console.log(
          `wrote ${r.images} synthetic images in ${r.groups} groups to ${r.dir} (${(r.ms / 1000).toFixed(1)} s)`,
        );
        console.log(`manifest: ${r.manifest}`);
      } finally {
        progress.stop();
      }
    });
}

/** Integer flag values; commander reports the error with the flag name and usage. */
export function intArg(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError(`expected an integer, got '${value}'`);
  return n;
}
