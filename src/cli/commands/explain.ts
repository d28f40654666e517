import type { Command } from 'commander';
import { DEFAULT_MODEL_PATH, resolveModelPath } from '../../serve/defaultModel.ts';
import { positiveInt } from './predict.ts';

/** `dermtl explain IMAGE... [--model DIR] [--label L ...] --out DIR`: Grad-CAM overlays (PNG) and the raw maps (JSON). */
export function register(program: Command): void {
  program
    .command('explain')
    .description(
      'Show where the model looked: Grad-CAM maps of lesion labels and body locations over the photo (PNG overlays + raw maps as JSON)',
    )
    .argument('<image...>', 'photos (JPEG, PNG, WebP, ...)')
    .requiredOption('--out <dir>', 'folder for the overlays and maps (created if missing)')
    .option(
      '--model <dir>',
      `model folder; default: ./${DEFAULT_MODEL_PATH}, the multi-task model of fold 0 written by npm start`,
    )
    .option(
      '--label <name...>',
      'labels to draw (lesion labels or body locations; default: the 3 most probable lesions and the most probable location)',
    )
    .option('--threads <n>', 'onnxruntime threads (default: every core)', positiveInt)
    .option(
      '--location <site>',
      "the photos' known body site, for a model trained with fusion (its lesion scores and maps then use it; default: unknown)",
    )
    .addHelpText(
      'after',
      [
        '',
        'Per image IMG: IMG-<head>-<label>.png for each drawn label, and IMG.json with the prediction and the raw maps of',
        'every label (grid h x w, on the centre 224 view; "region" is where that view sits in the photo, as fractions).',
        'Grad-CAM (Selvaraju et al. 2017) on the conv5_x activation: channel weights = spatial mean of d score / d activation,',
        "map = ReLU(sum of weighted channels); the score is the label's logit.",
      ].join('\n'),
    )
    .action(
      async (
        images: string[],
        opts: { out: string; model?: string; label?: string[]; threads?: number; location?: string },
      ) => {
        const modelPath = await resolveModelPath(opts.model);
        const { explainImages } = await import('../../explain/run.ts');
        const { errors } = await explainImages(modelPath, images, {
          out: opts.out,
          labels: opts.label,
          threads: opts.threads,
          location: opts.location,
          log: (s) => console.log(s),
        });
        if (errors.length) {
          const { DermtlError } = await import('../../util/errors.ts');
          throw new DermtlError(`${errors.length} of ${images.length} images failed:\n  ${errors.join('\n  ')}`);
        }
      },
    );
}
