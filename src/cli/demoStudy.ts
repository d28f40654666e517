// The demo study's size, apart from start.ts so that the CLI can build its --help without loading the study.

/**
 * The demo study of `npm start`, sized to finish in minutes on a 2-core CPU. Most of its time is the ResNet-50
 * forward pass of the feature cache: (views + 10 test crops) per image, 30-80 ms a view on 2 shared cores. Measured
 * on this project's shared 2-core machine: 300 images x (2 + 10) views took 4m38s of a 6m28s `npm start`, and
 * the 15 trainings + evaluations 4-9 s each (the full ResNet-50 model folder is saved and read back per run). So the
 * demo keeps 240 images and 2 cached training views; everything else is the config's default (the paper's frozen
 * trunk settings, 30 epochs). A user's own `dermtl cv` keeps the full defaults (10 training views).
 */
export const DEMO_STUDY = {
  /** Demo images (generated when the data folder has none). */
  images: 240,
  folds: 5,
  /** Written to <out>/cv-config.json, so the study's command line in the report can be re-run as is. */
  config: { frozen: { views: 2 } },
} as const;
