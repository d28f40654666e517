import { Command } from 'commander';
import { basename } from 'node:path';
import type { MatchedScores } from '../../metrics/scores.ts';

/** `dermtl metrics --manifest M --scores S.csv [--out m.json]`: the paper's metrics for any tool's scores. */
export function register(program: Command): void {
  program
    .command('metrics')
    .description(
      'Evaluate a score table against a manifest: lesion AP, ROC AUC, sensitivity/specificity, mAP; location top-1/top-3, balanced accuracy, AUC, confusion matrix; ECE/Brier per head',
    )
    .requiredOption('--manifest <m.csv>', 'manifest CSV with the true labels (image files need not exist)')
    .requiredOption(
      '--scores <s.csv...>',
      "score CSV: column image, then lesion:<label> / location:<label> columns; two or more files are combined by their per-label MAX (the paper's two-model ensemble)",
    )
    .option('--out <m.json>', 'also write the metrics as JSON')
    .option(
      '--thresholds <t>',
      'lesion decision thresholds for sensitivity/specificity: a number in [0, 1], a model folder (its calibration.json) or a JSON file {"<label>": t} (default: 0.5 when the scores are probabilities)',
    )
    .addHelpText(
      'after',
      [
        '',
        "Evaluates the images present in the score file, which may be a subset of the manifest (e.g. one fold's test part).",
        'AP treats tied scores as one threshold (scikit-learn average_precision_score); in top-k a location tied with the',
        'true one ranks above it. Lesion labels without a positive test image, or without a score column, are listed as',
        'skipped and not averaged; every manifest location needs a column when any location column is present.',
        'ROC AUC treats ties as scikit-learn roc_auc_score does (a tied pair counts 1/2); the location AUC is one-vs-rest,',
        'macro-averaged over locations with a test image. ECE uses 15 equal-width bins (lesions: every image-label pair;',
        'location: the top probability) and, like the Brier score, is only computed when every score is in [0, 1].',
      ].join('\n'),
    )
    .action(async (opts: { manifest: string; scores: string[]; out?: string; thresholds?: string }) => {
      const [
        { loadManifest, manifestHash },
        { loadScores },
        { ensembleMax },
        { evaluate, evaluationJson, formatEvaluation },
        { writeFileAtomic },
      ] = await Promise.all([
        import('../../data/manifest.ts'),
        import('../../metrics/scores.ts'),
        import('../../eval/ensemble.ts'),
        import('../../metrics/metrics.ts'),
        import('../../util/atomic.ts'),
      ]);
      const manifest = await loadManifest(opts.manifest, { checkImages: false });
      const matched: MatchedScores[] = [];
      for (const file of opts.scores) matched.push(await loadScores(file, manifest, 'present'));
      const table = matched
        .slice(1)
        .reduce(
          (t, m, i) => ensembleMax(t, m.table, [opts.scores.slice(0, i + 1).join(' + '), opts.scores[i + 1]]),
          matched[0].table,
        );
      const { samples, unscoredLesions, notes } = matched[0];
      const { loadThresholds } = await import('../../eval/thresholdSource.ts');
      const { areProbabilities } = await import('../../metrics/calibration.ts');
      const thresholds =
        opts.thresholds !== undefined
          ? await loadThresholds(opts.thresholds, table.lesionLabels)
          : table.lesionLabels.length && areProbabilities(table.lesion)
            ? {
                byLabel: Object.fromEntries(table.lesionLabels.map((l) => [l, 0.5])),
                source: '0.5 for every label (default)',
              }
            : null;
      const ev = evaluate(samples, table, { thresholds: thresholds?.byLabel });
      const what = opts.scores.length > 1 ? `the max-ensemble of ${opts.scores.join(', ')}` : opts.scores[0];
      console.log(`evaluated ${ev.n} of ${manifest.samples.length} manifest images (those in ${what})`);
      for (const note of notes) console.log(`note: ${note}`);
      if (thresholds && table.lesionLabels.length) console.log(`lesion thresholds: ${thresholds.source}`);
      for (const line of formatEvaluation(ev, unscoredLesions)) console.log(line);
      if (opts.out) {
        const doc = {
          manifest: basename(manifest.file),
          manifestHash: manifestHash(manifest),
          scores: opts.scores.map((f) => basename(f)),
          manifestImages: manifest.samples.length,
          ...evaluationJson(ev, unscoredLesions),
          thresholdSource: thresholds?.source ?? null,
          notes,
        };
        await writeFileAtomic(opts.out, JSON.stringify(doc, null, 2) + '\n');
        console.log(`wrote ${opts.out}`);
      }
    });
}
