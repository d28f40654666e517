import { Command, Option } from 'commander';
import { IMPORTERS, importDataset } from '../../data/importers/index.ts';

/** `dermtl import <format> <root> --out manifest.csv`: a public dataset's metadata -> a dermtl manifest. */
export function register(program: Command): void {
  const formats = Object.entries(IMPORTERS)
    .map(([name, imp]) => `  ${name}: reads ${imp.reads}`)
    .join('\n');
  program
    .command('import')
    .description('Write a dermtl manifest (image,lesions,location,group) from a dataset as distributed')
    .argument('<format>', `dataset format: ${Object.keys(IMPORTERS).join(', ')}`)
    .argument('<root>', 'the dataset folder')
    .requiredOption('-o, --out <manifest.csv>', 'manifest to write; image paths are written relative to its folder')
    .addOption(
      new Option('--view <view>', 'derm7pt: which image of each case (default clinic)').choices([
        'clinic',
        'derm',
        'both',
      ]),
    )
    .addHelpText('after', `\nFormats:\n${formats}`)
    .action(async (format: string, root: string, opts: { out: string; view?: 'clinic' | 'derm' | 'both' }) => {
      const result = await importDataset(format, root, opts.out, { view: opts.view });
      for (const line of result.summary) console.log(line);
    });
}
