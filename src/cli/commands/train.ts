import { Command, InvalidArgumentError, Option } from 'commander';
import { DermtlError } from '../../util/errors.ts';
import { MODES, TASKS, type Task, type TrainMode } from '../../train/choices.ts';

/** `dermtl train --manifest M --task mtl|lesion|location --out RUN [...]`: train one model into a run folder. */
export function register(program: Command): void {
  program
    .command('train')
    .description(
      'Train a model (multi-task or single-task) into a run folder: frozen ImageNet trunk with cached features (default), or fine-tuning the whole network (the paper)',
    )
    .requiredOption(
      '--manifest <m.csv>',
      "training manifest (after dermtl refine); its label lists become the model's outputs",
    )
    .addOption(
      new Option('--task <task>', 'mtl: lesion + location heads; lesion / location: one head')
        .choices([...TASKS])
        .makeOptionMandatory(),
    )
    .requiredOption('--out <run>', 'run folder to create (or to continue with --resume)')
    .option('--folds <folds.json>', 'fold file from dermtl split (with --fold: train on the other folds)')
    .option('--fold <k>', 'the fold held out for testing (0-based)', intArg)
    .option('--config <c.json>', 'training config overrides (JSON); unknown keys are an error')
    .addOption(
      new Option(
        '--mode <mode>',
        'frozen: trunk fixed, features cached; finetune: the whole network (slow on CPU)',
      ).choices([...MODES]),
    )
    .option(
      '--seed <n>',
      'seed of the validation split, data order, views, dropout and init (overrides the config)',
      intArg,
    )
    .option('--resume', 'continue the run in --out from its latest checkpoint (same arguments as the first time)')
    .option('--no-progress', 'no progress bars on stderr')
    .addHelpText(
      'after',
      [
        '',
        'Defaults (every one can be set in --config): SGD momentum 0.9, weight decay 1e-4, batch 20, lr 1e-3 with x10 / x20 on',
        "the new layers' weights / biases, lr x0.1 when the validation loss (10% of the training groups) stops improving;",
        'frozen mode: lr 1e-4, weight decay 1e-2, standardised features. The epoch with the best validation score is kept.',
        'Frozen mode caches 10 scaleJitter views per training image and the 10 test crops per image under the dermtl cache',
        '(DERMTL_CACHE, or config cacheDir); later runs, folds and tasks reuse them. Ctrl-C saves a checkpoint; --resume continues',
        'to the same final weights as an uninterrupted run. The run folder gets run.json, config.json, history.json, split.json,',
        "checkpoints/ (deleted when the run finishes) and model/ (a model folder for dermtl eval and serving; a frozen run's",
        'holds its heads only and names the ImageNet trunk: dermtl export RUN --out DIR writes a self-contained model.onnx).',
      ].join('\n'),
    )
    .action(
      async (o: {
        manifest: string;
        task: Task;
        out: string;
        folds?: string;
        fold?: number;
        config?: string;
        mode?: TrainMode;
        seed?: number;
        resume?: boolean;
        progress: boolean;
      }) => {
        const { trainWithStopSignals } = await import('../../train/trainTask.ts');
        const r = await trainWithStopSignals({
          manifest: o.manifest,
          task: o.task,
          out: o.out,
          folds: o.folds,
          fold: o.fold,
          configFile: o.config,
          mode: o.mode,
          seed: o.seed,
          resume: o.resume ?? false,
          progress: o.progress,
        });
        if (r.stepMs !== null)
          console.log(
            `mean update time ${r.stepMs.toFixed(1)} ms (batch ${(r.info.config as { batchSize: number }).batchSize}, data included)`,
          );
        if (r.status === 'stopped')
          throw new DermtlError(`training stopped early (checkpoint at update ${r.step} saved)`, 130);
      },
    );
}

function intArg(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected a whole number, got '${value}'`);
  return Number(value);
}
