import { Command } from 'commander';
import { basename } from 'node:path';

/** `dermtl stats <manifest> [--json out.json]`: label counts and lesions-per-image histogram. */
export function register(program: Command): void {
  program
    .command('stats')
    .description('Count images, groups, lesion and location labels of a manifest (sorted by count)')
    .argument('<manifest>', 'manifest CSV')
    .option('--json <out.json>', 'also write the statistics as JSON')
    .action(async (file: string, opts: { json?: string }) => {
      const [{ loadManifest, manifestHash }, { formatStats, manifestStats }, { writeFileAtomic }] = await Promise.all([
        import('../../data/manifest.ts'),
        import('../../data/statistics.ts'),
        import('../../util/atomic.ts'),
      ]);
      const manifest = await loadManifest(file);
      const stats = manifestStats(manifest);
      for (const line of formatStats(stats)) console.log(line);
      if (opts.json) {
        const doc = { manifest: basename(manifest.file), manifestHash: manifestHash(manifest), ...stats };
        await writeFileAtomic(opts.json, JSON.stringify(doc, null, 2) + '\n');
        console.log(`wrote ${opts.json}`);
      }
    });
}
