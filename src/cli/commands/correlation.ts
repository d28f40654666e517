import { Command } from 'commander';

/** `dermtl correlation <manifest> --out fig1.svg [--png fig1.png] [--json r.json]`: Figure 1 of the paper. */
export function register(program: Command): void {
  program
    .command('correlation')
    .description(
      'Plot the lesion x location co-occurrence matrix (Figure 1): R[i][j] = share of the images with lesion i taken at location j',
    )
    .argument('<manifest>', 'manifest CSV')
    .requiredOption('--out <fig.svg>', 'heatmap as SVG')
    .option('--png <fig.png>', 'also write the heatmap as PNG')
    .option('--json <r.json>', 'also write lesions, locations, counts, lesionTotals and R as JSON')
    .action(async (file: string, opts: { out: string; png?: string; json?: string }) => {
      const [{ loadManifest }, { writeFigure1 }] = await Promise.all([
        import('../../data/manifest.ts'),
        import('../../report/figure1.ts'),
      ]);
      const manifest = await loadManifest(file);
      const m = await writeFigure1(manifest, { svg: opts.out, png: opts.png, json: opts.json });
      console.log(
        `${m.lesions.length} lesion types x ${m.locations.length} locations from ${manifest.samples.length} images`,
      );
      for (const p of [opts.out, opts.png, opts.json]) if (p) console.log(`wrote ${p}`);
    });
}
