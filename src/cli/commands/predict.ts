import { Command, InvalidArgumentError, Option } from 'commander';
import { IMAGE_EXTENSIONS } from '../../serve/batch.ts';
import { TTA_MODES, type Tta } from '../../serve/defaults.ts';
import { DEFAULT_MODEL_PATH, resolveModelPath } from '../../serve/defaultModel.ts';
import { DermtlError } from '../../util/errors.ts';
import { intArg } from './demo-data.ts';

/** `dermtl predict [--model DIR] IMAGE... [--tta center|10crop] [--top 5]`: one JSON line per image on stdout. */
export function register(program: Command): void {
  program
    .command('predict')
    .description(
      'Predict lesion labels and body location of images: one JSON object per line per image, in argument order',
    )
    .argument(
      '<image...>',
      `image files, or folders (every ${IMAGE_EXTENSIONS.join(' ')} file inside, recursively, sorted by path)`,
    )
    .option(
      '--model <dir>',
      `model folder (or its model.onnx); default: ./${DEFAULT_MODEL_PATH}, the multi-task model of fold 0 written by npm start`,
    )
    .addOption(
      new Option('--tta <mode>', 'test-time augmentation: the centre crop, or the mean over 10 crops')
        .choices([...TTA_MODES])
        .default('center'),
    )
    .option('--top <k>', 'labels per list, most probable first', positiveInt, 5)
    .option(
      '--location <site>',
      "the photos' known body site, one of the model's locations: a fusion model's lesion head uses it (default: unknown, the model's own predicted location); other models ignore it, with a note",
    )
    .option('--threads <n>', 'onnxruntime threads (default: every core)', positiveInt)
    .addHelpText(
      'after',
      [
        '',
        'Output (stdout), one line per image:',
        '  {"image":"a.jpg","lesions":[{"label":"papule","p":0.91},...],"location":[{"label":"face","p":0.62},...]}',
        'An image that cannot be read gives {"image":"b.jpg","error":"..."}; the others are still predicted, and the',
        'exit status is 1 at the end. Lesion p are independent (multi-label); location p sum to 1 over all locations.',
        'A model that takes a body site (trained with fusion) adds "site":{"given":"arm"|null,"used":true|false}; so does',
        'any model given --location (a model without site inputs: used false, and a note on stderr). A --location the',
        "model does not know stops before any image, listing the model's body sites (exit status 1).",
      ].join('\n'),
    )
    .action(
      async (
        images: string[],
        opts: { model?: string; tta: Tta; top: number; threads?: number; location?: string },
      ) => {
        const modelPath = await resolveModelPath(opts.model);
        const [{ loadModel }, { expandImageArgs, predictBatch }, { stderrProgress }, { siteOf }] = await Promise.all([
          import('../../serve/api.ts'),
          import('../../serve/batch.ts'),
          import('../../util/progress.ts'),
          import('../../serve/predictor.ts'),
        ]);
        const model = await loadModel(modelPath, { threads: opts.threads });
        const progress = stderrProgress('predicting');
        try {
          // an unknown site is the whole command's mistake: refused before any image
          const site = siteOf(model, opts.location).use;
          if (site && opts.location !== undefined && !site.used)
            console.error(`note: --location ${opts.location}: ${site.note}`);
          const items = await expandImageArgs(images);
          const failed = await predictBatch(model, items, {
            tta: opts.tta,
            top: opts.top,
            location: opts.location,
            onLine: (line) => console.log(JSON.stringify(line)),
            onProgress: progress,
          });
          progress.stop();
          if (failed) throw new DermtlError(`${failed} of ${items.length} images failed (see their "error" lines)`);
        } finally {
          progress.stop();
          await model.dispose();
        }
      },
    );
}

export function positiveInt(value: string): number {
  const n = intArg(value);
  if (n < 1) throw new InvalidArgumentError(`expected a whole number >= 1, got '${value}'`);
  return n;
}
