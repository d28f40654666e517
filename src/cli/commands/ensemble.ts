import { Command } from 'commander';

/** `dermtl ensemble RUN_A RUN_B --out RUN_E`: the paper's max-of-two-models ensemble as a run folder. */
export function register(program: Command): void {
  program
    .command('ensemble')
    .description(
      'Combine two trained runs: per image and label, the max of their scores (evaluate it with dermtl eval RUN_E)',
    )
    .argument('<runA>', 'first run folder')
    .argument('<runB>', 'second run folder (same labels, same manifest and fold)')
    .requiredOption('--out <run>', 'new run folder for the ensemble (it stores only the two member paths)')
    .action(async (a: string, b: string, o: { out: string }) => {
      const { createEnsemble } = await import('../../eval/ensembleRun.ts');
      const info = await createEnsemble(a, b, o.out);
      console.log(`wrote ensemble run ${o.out}: max of ${info.members!.join(' and ')}`);
      console.log(
        `evaluate it with: dermtl eval ${o.out} --manifest M${info.folds ? ` --folds ${info.folds.file} --fold ${info.folds.fold}` : ''}`,
      );
    });
}
