import { Command, InvalidArgumentError, Option } from 'commander';
import { TTAS, type Tta } from '../../train/choices.ts';

/** `dermtl eval RUN --manifest M [--folds F --fold k] [--tta 10crop|center] [--out DIR]`. */
export function register(program: Command): void {
  program
    .command('eval')
    .description(
      "Score the test images with a trained run (or an ensemble run): scores.csv + metrics.json, and the paper's metrics",
    )
    .argument('<run>', 'run folder from dermtl train or dermtl ensemble')
    .requiredOption('--manifest <m.csv>', "manifest with the true labels; its label lists must equal the model's")
    .option(
      '--folds <folds.json>',
      "fold file (with --fold: evaluate that fold's test images; default: every manifest image)",
    )
    .option('--fold <k>', 'fold whose test part is evaluated', intArg)
    .addOption(
      new Option(
        '--tta <mode>',
        '10crop: mean probability of the ten crops (default); center: the centre crop only',
      ).choices([...TTAS]),
    )
    .option('--out <dir>', 'write scores.csv and metrics.json here instead of the run folder')
    .option(
      '--full-model',
      'run the whole network (trunk + heads) on the images even for a frozen-trunk run (slower; same scores up to fp32 rounding)',
    )
    .addOption(
      new Option(
        '--site <how>',
        "a fusion model's lesion head: given (each image's body site from the manifest) or unknown (its own predicted location)",
      )
        .choices(['given', 'unknown'])
        .default('given'),
    )
    .option('--no-progress', 'no progress bars on stderr')
    .addHelpText(
      'after',
      [
        '',
        'Images the run was trained or validated on are refused as test images. A frozen-trunk run scores from the feature cache.',
        'A model calibrated after training (its calibration.json) is evaluated as it outputs (calibrated) and also before',
        'calibration (scores-uncalibrated.csv; metrics.json beforeCalibration): ECE and Brier per head before -> after.',
        "Sensitivity/specificity use the model's lesion thresholds (max F1 on its validation part; 0.5 without).",
      ].join('\n'),
    )
    .action(
      async (
        run: string,
        o: {
          manifest: string;
          folds?: string;
          fold?: number;
          tta?: Tta;
          out?: string;
          fullModel?: boolean;
          progress: boolean;
          site: 'given' | 'unknown';
        },
      ) => {
        const { evaluateRun } = await import('../../eval/evaluateRun.ts');
        await evaluateRun(run, {
          manifest: o.manifest,
          folds: o.folds,
          fold: o.fold,
          tta: o.tta,
          out: o.out,
          fullModel: o.fullModel,
          progress: o.progress,
          site: o.site,
        });
      },
    );
}

function intArg(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number, got '${value}'`);
  return Number(value);
}
