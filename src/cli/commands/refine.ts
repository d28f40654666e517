import { Command } from 'commander';
import { DermtlError } from '../../util/errors.ts';

/** `dermtl refine <manifest> --out refined.csv`: merge label synonyms, drop rare labels. */
export function register(program: Command): void {
  program
    .command('refine')
    .description(
      'Merge label synonyms/sub-types, then drop lesion and location labels with too few images (counted after merging)',
    )
    .argument('<manifest>', 'manifest CSV to refine')
    .requiredOption('-o, --out <refined.csv>', 'refined manifest to write (image paths re-based on its folder)')
    .option('--min-count <n>', 'drop labels with fewer images than this (after merging)', '10')
    .option('--merge <merge.json>', 'label merges: {"lesion": {"from": "to"}, "location": {"from": "to"}}')
    .addHelpText(
      'after',
      '\nAn image whose location is dropped is dropped; one that loses all lesion labels keeps its location.',
    )
    .action(async (manifest: string, opts: { out: string; minCount: string; merge?: string }) => {
      const minCount = Number(opts.minCount);
      if (!/^\d+$/.test(opts.minCount.trim()))
        throw new DermtlError(`--min-count must be a whole number >= 0, got "${opts.minCount}"`);
      const { formatRefineReport, refineManifest } = await import('../../data/taxonomy.ts');
      const report = await refineManifest(manifest, opts.out, minCount, opts.merge);
      for (const line of formatRefineReport(report, minCount)) console.log(line);
      console.log(`wrote ${opts.out}`);
    });
}
