import { Command, Option } from 'commander';
import { MODES, TTAS, type TrainMode, type Tta } from '../../train/choices.ts';
import { intArg } from './demo-data.ts';

/** `dermtl cv --manifest M --out STUDY [--folds 5] [--mode frozen|finetune] [--seed 0] [--config C] [--tta 10crop|center]`. */
export function register(program: Command): void {
  program
    .command('cv')
    .description(
      "The paper's cross-validation study: grouped stratified folds; on each fold the lesion-only, location-only and MTL models " +
        'trained with identical settings and seeds, plus their ensemble (max of the lesion-only and MTL scores), evaluated on the ' +
        'held-out part; writes results.json, table1.md, Figure 1 and 3 and report.html into the study folder',
    )
    .requiredOption('--manifest <m.csv>', 'dataset manifest (after dermtl refine)')
    .requiredOption('--out <study>', 'study folder (created; an interrupted study in it is continued)')
    .option('--folds <k>', 'number of folds', intArg, 5)
    .addOption(
      new Option(
        '--mode <mode>',
        "frozen: ImageNet trunk fixed, features cached once per image; finetune: the whole network (slow on CPU). Default: the config's (frozen)",
      ).choices([...MODES]),
    )
    .option('--seed <n>', "seed of the folds and of every training (default: the config's, 0)", intArg)
    .option('--config <c.json>', 'training config overrides (JSON, as for dermtl train); unknown keys are an error')
    .addOption(
      new Option(
        '--tta <tta>',
        "test-time augmentation: 10crop (the paper) or center. Default: the config's (10crop)",
      ).choices([...TTAS]),
    )
    .option(
      '--only-folds <list>',
      'run only these folds, e.g. 0 or 0,2 (a PARTIAL study, labelled as such in every output and never mixed with a full one)',
    )
    .option(
      '--models <list>',
      "the models to train, e.g. lesion,mtl,mtl-uw,fusion: the paper's lesion, location, mtl (default: these three; those left out are reported as skipped) and beyond it mtl-uw (uncertainty task weighting), mtl-tuned (location weight chosen on validation from taskWeighting.grid), fusion (body location fed to the lesion head; also scored as fusion-nosite with the site unknown, and next to it lesion-site: the lesion-only model's scores shifted by the training part's site log-odds, nothing trained). The baselines are always fitted",
    )
    .option('--force', 'discard a study of other settings in --out instead of refusing')
    .option('--verbose', "also print every training's epochs and every evaluation's metrics")
    .option('--no-progress', 'no progress bars on stderr')
    .addHelpText(
      'after',
      [
        '',
        'The study folder holds study.json (its settings), folds.json, models/<lesion|location|mtl|ensemble>/fold-<f>/ (a run',
        'folder per model and fold, with scores.csv, metrics.json and unit.json once finished) and the report. Re-running the',
        'same command reuses every finished model/fold and resumes an interrupted training (Ctrl-C stops cleanly); other',
        'settings in the same folder are refused. A model that cannot be trained in a fold (e.g. its training part has no',
        'lesion label) is reported as skipped. Metrics: AP per lesion label, mAP-class, mAP-image, location top-1/top-3, per',
        'fold and pooled out-of-fold, with fold means, stds and the paired MTL - lesion-only difference (95% t interval).',
      ].join('\n'),
    )
    .action(
      async (
        o: {
          manifest: string;
          out: string;
          folds: number;
          mode?: TrainMode;
          seed?: number;
          config?: string;
          tta?: Tta;
          onlyFolds?: string;
          models?: string;
          force?: boolean;
          verbose?: boolean;
          progress: boolean;
        },
        cmd: Command,
      ) => {
        const [{ runStudyWithStopSignals }, { shellQuote }, { formatTable1, writeStudyReport }] = await Promise.all([
          import('../../eval/study.ts'),
          import('../../eval/studyPlan.ts'),
          import('../../report/study/index.ts'),
        ]);
        const r = await runStudyWithStopSignals({
          manifest: o.manifest,
          out: o.out,
          folds: o.folds,
          mode: o.mode,
          seed: o.seed,
          configFile: o.config,
          tta: o.tta,
          onlyFolds: o.onlyFolds,
          models: o.models,
          force: o.force ?? false,
          verbose: o.verbose ?? false,
          progress: o.progress,
          command: commandLine(cmd, shellQuote),
          writeReport: writeStudyReport,
        });
        console.log('');
        for (const line of formatTable1(r.results)) console.log(line);
      },
    );
}

/** The command as given (the options set on the command line, in declaration order), for results.json. */
function commandLine(cmd: Command, shellQuote: (s: string) => string): string {
  const parts = ['dermtl', cmd.name()];
  for (const option of cmd.options) {
    const key = option.attributeName();
    if (cmd.getOptionValueSource(key) !== 'cli') continue;
    const value: unknown = cmd.getOptionValue(key);
    if (typeof value === 'boolean') parts.push(option.long!);
    else parts.push(option.long!, shellQuote(String(value)));
  }
  return parts.join(' ');
}
