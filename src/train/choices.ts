// The values of the train / eval / cv flags that choose a task, a mode or a test-time augmentation, apart from
// config.ts (zod) so that the CLI can build its --help without loading the config schema.
export const TASKS = ['mtl', 'lesion', 'location'] as const;
export type Task = (typeof TASKS)[number];
export const MODES = ['frozen', 'finetune'] as const;
export type TrainMode = (typeof MODES)[number];
export { TTAS, type Tta } from '../image/tta.ts';
