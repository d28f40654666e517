import { Command } from 'commander';

/** `dermtl export RUN|MODEL --out DIR`: a model folder whose model.onnx holds the whole network. */
export function register(program: Command): void {
  program
    .command('export')
    .description(
      "Write a finished run's model (or a model folder) as a self-contained model folder: model.onnx with the whole network",
    )
    .argument('<source>', 'run folder from dermtl train / dermtl cv (its model/), or a model folder')
    .requiredOption(
      '--out <dir>',
      'the model folder to write (replaced when it is a dermtl model folder; otherwise it must be new or empty)',
    )
    .addHelpText(
      'after',
      [
        '',
        'A frozen-trunk run stores only its trained heads (heads.onnx) and names the ImageNet trunk it sits on, so a study',
        'keeps the 94 MB trunk once (in the dermtl cache) instead of once per model. dermtl eval, predict, serve and the',
        'library read such a folder as it is; export it to get one model.onnx that runs anywhere on its own.',
      ].join('\n'),
    )
    .action(async (source: string, o: { out: string }) => {
      const { exportModel } = await import('../exportModel.ts');
      const r = await exportModel(source, o.out);
      console.log(`wrote ${r.out} (model.onnx ${(r.bytes / 1e6).toFixed(1)} MB, from ${r.from})`);
    });
}
