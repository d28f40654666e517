import { Command } from 'commander';
import { basename } from 'node:path';
import type { MatchedScores } from '../../eval/scores.ts';

/** `dermtl metrics --manifest M --scores S.csv [--out m.json]`: the paper's metrics for any tool's scores. */
export function register(program: Command): void {
  program
    .command('metrics')
    .description('Evaluate a score table against a manifest: lesion AP per class, mAP-class, mAP-image; location top-1/top-3')
    .requiredOption('--manifest <m.csv>', 'manifest CSV with the true labels (image files need not exist)')
    .requiredOption('--scores <s.csv...>', 'score CSV: column image, then lesion:<label> / location:<label> columns; two or more files are combined by their per-label MAX (the paper\'s two-model ensemble)')
    .option('--out <m.json>', 'also write the metrics as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Evaluates the images present in the score file, which may be a subset of the manifest (e.g. one fold\'s test part).',
        'AP treats tied scores as one threshold (scikit-learn average_precision_score); in top-k a location tied with the',
        'true one ranks above it. Lesion labels without a positive test image, or without a score column, are listed as',
        'skipped and not averaged; every manifest location needs a column when any location column is present.',
      ].join('\n'),
    )
    .action(async (opts: { manifest: string; scores: string[]; out?: string }) => {
      const [{ loadManifest, manifestHash }, { loadScores }, { ensembleMax }, { evaluate, evaluationJson, formatEvaluation }, { writeFileAtomic }] =
        await Promise.all([
          import('../../data/manifest.ts'), import('../../eval/scores.ts'), import('../../eval/ensemble.ts'), import('../../eval/metrics.ts'),
          import('../../util/atomic.ts'),
        ]);
      const manifest = await loadManifest(opts.manifest, { checkImages: false });
      const matched: MatchedScores[] = [];
      for (const file of opts.scores) matched.push(await loadScores(file, manifest, 'present'));
      const table = matched.slice(1).reduce((t, m, i) => ensembleMax(t, m.table, [opts.scores.slice(0, i + 1).join(' + '), opts.scores[i + 1]]), matched[0].table);
      const { samples, unscoredLesions, notes } = matched[0];
      const ev = evaluate(samples, table);
      const what = opts.scores.length > 1 ? `the max-ensemble of ${opts.scores.join(', ')}` : opts.scores[0];
      console.log(`evaluated ${ev.n} of ${manifest.samples.length} manifest images (those in ${what})`);
      for (const note of notes) console.log(`note: ${note}`);
      for (const line of formatEvaluation(ev, unscoredLesions)) console.log(line);
      if (opts.out) {
        const doc = {
          manifest: basename(manifest.file),
          manifestHash: manifestHash(manifest),
          scores: opts.scores.map((f) => basename(f)),
          manifestImages: manifest.samples.length,
          ...evaluationJson(ev, unscoredLesions),
          notes,
        };
        await writeFileAtomic(opts.out, JSON.stringify(doc, null, 2) + '\n');
        console.log(`wrote ${opts.out}`);
      }
    });
}
