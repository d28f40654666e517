import { Command } from 'commander';
import { DermtlError } from '../../util/errors.ts';

/** `dermtl split <manifest> --folds 5 --seed 0 --out folds.json`: grouped, stratified k-fold CV. */
export function register(program: Command): void {
  program
    .command('split')
    .description('Make grouped k-fold cross-validation folds, stratified on location and lesion labels')
    .argument('<manifest>', 'manifest CSV')
    .requiredOption('-o, --out <folds.json>', 'fold file to write')
    .option('--folds <k>', 'number of folds (at most the number of groups)', '5')
    .option('--seed <n>', 'random seed; the same seed gives the same folds', '0')
    .addHelpText(
      'after',
      '\nA group (lesion/patient id) never spans two folds. The fold file records the manifest hash; loading it with another manifest is an error.',
    )
    .action(async (file: string, opts: { out: string; folds: string; seed: string }) => {
      const k = wholeNumber(opts.folds, '--folds');
      const seed = wholeNumber(opts.seed, '--seed');
      const [{ loadManifest }, { foldBalance, makeFolds, writeFolds }] = await Promise.all([
        import('../../data/manifest.ts'),
        import('../../data/splits.ts'),
      ]);
      const manifest = await loadManifest(file);
      const folds = makeFolds(manifest, k, seed);
      await writeFolds(opts.out, folds);
      const fold = new Map(folds.splits.flatMap((s) => s.test.map((image) => [image, s.fold] as const)));
      const balance = foldBalance(
        manifest.samples,
        manifest.samples.map((s) => fold.get(s.image)!),
        k,
      );
      console.log('fold  images  groups  max |location share - overall|  max |lesion share - overall|');
      for (const b of balance) {
        console.log(
          `${String(b.fold).padStart(4)}  ${String(b.images).padStart(6)}  ${String(b.groups).padStart(6)}  ${b.maxLocationDeviation.toFixed(4).padStart(30)}  ${b.maxLesionDeviation.toFixed(4).padStart(28)}`,
        );
      }
      console.log(`wrote ${opts.out} (${k} folds, seed ${seed})`);
    });
}

function wholeNumber(text: string, flag: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new DermtlError(`${flag} must be a whole number, got "${text}"`);
  return Number(text);
}
