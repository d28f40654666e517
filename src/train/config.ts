// Every default of `dermtl train` in ONE typed config (zod). A `--config C.json` file overrides any part of it;
// unknown keys are an error naming the key and the file, so a typo never silently falls back to a default.
// The resolved config (defaults + file + flags) is written into the run folder and is what a resume must match.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DermtlError, errorList } from '../util/errors.ts';
import { TASKS, MODES, TTAS, type Task, type TrainMode } from './choices.ts';

export { TASKS, MODES, TTAS, type Task, type TrainMode, type Tta } from './choices.ts';

/** finetune.trainable: the whole network, or the trunk from a residual stage on (conv5_x, conv4_x + conv5_x, ...). */
export const FINETUNE_TRAINABLE = ['all', 'stage5', 'stage4', 'stage3'] as const;
export type FinetuneTrainable = (typeof FINETUNE_TRAINABLE)[number];

const int = (min: number) => z.number().int().min(min);
const fraction = z.number().min(0).lt(1);

/** The shared hidden layer FC(d -> hidden) + ReLU + dropout that both heads sit on; null: heads on the features. */
const SharedSchema = z.strictObject({ hidden: int(1), dropout: fraction }).nullable();

export const TrainConfigSchema = z
  .strictObject({
    /** frozen: ImageNet trunk fixed, its features cached once per image and view; finetune: the whole network (the paper). */
    mode: z.enum(MODES).default('frozen'),
    /** mtl: both heads (the paper's model); lesion / location: one head (the single-task baselines). */
    task: z.enum(TASKS).default('mtl'),
    /** Seed of the validation split, data order, view choice, dropout masks and head init (tiny trunk: trunk init too). */
    seed: z.number().int().default(0),
    /** resnet50: folded Keras ImageNet weights (downloaded once); tiny: a small random ResNet for tests and demos. */
    trunk: z.enum(['resnet50', 'tiny']).default('resnet50'),
    image: z
      .strictObject({
        /** Network input side; 224 for ResNet-50. */
        size: int(32).default(224),
        /** Test views: shorter side resized to this before the centre / ten crops. */
        resizeShorter: int(32).default(256),
        /** scaleJitter: training shorter side uniform in [min, max] (He et al.). */
        jitter: z.strictObject({ min: int(32).default(256), max: int(32).default(480) }).prefault({}),
      })
      .prefault({}),
    batchSize: int(1).default(20),
    /** Caffe SGD: v = momentum v + lr lrMult (g + weightDecay decayMult w); w -= v. */
    optimizer: z
      .strictObject({
        lr: z.number().positive().default(1e-3),
        momentum: fraction.default(0.9),
        weightDecay: z.number().min(0).default(1e-4),
        /** Learning-rate multipliers: pretrained trunk x1, new head (and shared-layer) weights x10, their biases x20. */
        lrMult: z
          .strictObject({
            trunk: z.number().min(0).default(1),
            headWeight: z.number().min(0).default(10),
            headBias: z.number().min(0).default(20),
          })
          .prefault({}),
      })
      .prefault({}),
    /** lr x factor when the validation loss has not improved for more than `patience` epochs. */
    plateau: z
      .strictObject({
        factor: z.number().gt(0).lt(1).default(0.1),
        patience: int(0).default(2),
        threshold: fraction.default(1e-4),
        cooldown: int(0).default(0),
        minLr: z.number().min(0).default(0),
      })
      .prefault({}),
    /** Held-out validation part of the training images: this fraction of their GROUPS (seeded); 0 = none (no plateau drops). */
    validation: z.strictObject({ fraction: fraction.default(0.1) }).prefault({}),
    /**
     * Model selection on the validation part (both modes): 'best' keeps the params of the epoch with the best
     * validation score, 'last' those of the last epoch. metric 'auto': lesion -> validation mAP-class, location ->
     * validation loss (top-1 on a small part ties too often to choose by), mtl -> validation lesion mAP-class: the
     * location head is the auxiliary task, and the study compares MTL with lesion-only on lesion mAP, so both are
     * kept by it ('mean', of mAP-class and top-1, kept epochs 5-8 of 30 on derm7pt and cost MTL 0.009 mAP-class).
     */
    selection: z
      .strictObject({
        epoch: z.enum(['best', 'last']).default('best'),
        metric: z.enum(['auto', 'loss', 'mapClass', 'top1', 'mean']).default('auto'),
      })
      .prefault({}),
    /** Weights of the two losses in the MTL objective (taskWeighting 'fixed'). */
    taskWeights: z
      .strictObject({ lesion: z.number().min(0).default(1), location: z.number().min(0).default(1) })
      .prefault({}),
    /**
     * How an MTL model weighs its two losses. 'fixed': taskWeights. 'uncertainty': one learned log-variance per task
     * (Kendall et al. 2018; models/heads.ts). 'tuned': the location weight (lesion 1) chosen from `grid` on the
     * validation part by the best validation lesion mAP-class: one training per value, the winner is the model.
     */
    taskWeighting: z
      .strictObject({
        kind: z.enum(['fixed', 'uncertainty', 'tuned']).default('fixed'),
        grid: z.array(z.number().min(0)).min(2).default([0.1, 0.3, 1]),
      })
      .prefault({}),
    /**
     * Late fusion (models/fusion.ts): the lesion head also takes the body location, as a one-hot when it is known and
     * else the model's own predicted distribution. In training each image's known site is hidden with probability
     * siteDropout (seeded), so both paths are learned. Task mtl only.
     */
    // init 'cooccurrence': U starts at each label's log-odds shift per site in the training part (siteLogOdds), the
    // Figure 1 prior the layer would otherwise have to learn from zero; 'zero': the fused model starts as plain MTL
    fusion: z
      .strictObject({
        enabled: z.boolean().default(false),
        siteDropout: fraction.default(0.5),
        init: z.enum(['cooccurrence', 'zero']).default('cooccurrence'),
      })
      .prefault({}),
    frozen: z
      .strictObject({
        epochs: int(1).default(30),
        /** scaleJitter views cached per training image; each epoch uses one of them per image (seeded choice). */
        views: int(1).default(10),
        /**
         * Seed of the cached training views. Separate from `seed` on purpose: runs with different seeds (and
         * different folds and tasks) then share one cache entry per image.
         */
        viewSeed: z.number().int().default(0),
        shared: SharedSchema.default({ hidden: 512, dropout: 0.5 }),
        featureDropout: fraction.default(0),
        /**
         * Head ensemble: this many sets of heads (own init and dropout) train side by side on the same batches, each on
         * its own loss; validation and the saved model use their mean logits, which is exactly one set of heads with a
         * shared layer `members` times as wide (models/members.ts). 1: the plain heads.
         */
        members: int(1).default(5),
        /**
         * Standardise the features with the training part's per-dimension mean and std before the heads (folded into
         * the first head layer of the saved model, which still takes raw features).
         */
        standardize: z.boolean().default(true),
        /**
         * Also train on the ten test crops of each training image (cached for testing anyway): the heads then see the
         * views they are tested on besides the scale-jittered ones (derm7pt: pooled lesion mAP-class 0.353 -> 0.357).
         */
        trainCrops: z.boolean().default(true),
        /**
         * Base lr and weight decay of frozen mode (the x10 / x20 head multipliers still apply); null: optimizer.lr /
         * optimizer.weightDecay. The paper's 1e-3 / 1e-4 are for fine-tuning a trunk: heads alone on standardised
         * features overfit within a few epochs at that rate and need far stronger decay (measured on derm7pt: see README).
         */
        lr: z.number().positive().nullable().default(1e-4),
        weightDecay: z.number().min(0).nullable().default(1e-2),
        /** Views per trunk run when caching features. */
        featureBatch: int(1).default(10),
      })
      .prefault({}),
    finetune: z
      .strictObject({
        epochs: int(1).default(20),
        shared: SharedSchema.default(null),
        featureDropout: fraction.default(0),
        /** Train on a seeded subset of this many training images (timing runs); null: all. */
        subset: int(1).nullable().default(null),
        /**
         * 'original': SGD behaves as on the un-folded conv weights with frozen BatchNorm (Caffe fine-tuning; per-channel
         * lr scale (gamma/sigma)^2 on each folded ResNet-50 weight). 'folded': plain SGD on the folded weights, which
         * diverges at the paper's lr (conv1 would train ~2600x faster than in Caffe).
         */
        bnParameterization: z.enum(['original', 'folded']).default('original'),
        /**
         * 'all': the whole network (the paper). 'stageK': only stages K..5 and the heads train; the activation entering
         * stage K is computed once per image and view by the frozen trunk below it and cached on disk (fp16), so an
         * update runs the upper stages only (stage5: about a fifth of the network's FLOPs).
         */
        trainable: z.enum(FINETUNE_TRAINABLE).default('all'),
        /** Partial fine-tuning: scaleJitter views cached per training image; each epoch uses one of them (seeded choice). */
        views: int(1).default(10),
        /** Seed of those cached views (apart from `seed`, so runs of other seeds, folds and tasks share the cache). */
        viewSeed: z.number().int().default(0),
      })
      .prefault({}),
    /** Feature cache folder; null: <dermtl cache root>/features (see cacheRoot()). */
    cacheDir: z.string().min(1).nullable().default(null),
    checkpoint: z
      .strictObject({
        /** Checkpoint after every this many epochs (and always on SIGINT/SIGTERM and at the end). */
        everyEpochs: int(1).default(1),
        keep: int(1).default(2),
      })
      .prefault({}),
    runtime: z
      .strictObject({
        /** ORT intra-op threads; null: every available core. Results are bit-reproducible for a fixed count. */
        threads: int(1).nullable().default(null),
        /** Image decoding worker threads (finetune, full-model eval); null: every available core. */
        loaderWorkers: int(0).nullable().default(null),
      })
      .prefault({}),
    /** Test-time augmentation of `dermtl eval` when --tta is not given. */
    eval: z.strictObject({ tta: z.enum(TTAS).default('10crop') }).prefault({}),
  })
  .superRefine((c, ctx) => {
    const img = c.image;
    if (img.resizeShorter < img.size)
      ctx.addIssue({
        code: 'custom',
        path: ['image', 'resizeShorter'],
        message: `must be >= image.size (${img.size})`,
      });
    if (img.jitter.min < img.size)
      ctx.addIssue({
        code: 'custom',
        path: ['image', 'jitter', 'min'],
        message: `must be >= image.size (${img.size})`,
      });
    if (img.jitter.max < img.jitter.min)
      ctx.addIssue({
        code: 'custom',
        path: ['image', 'jitter', 'max'],
        message: `must be >= image.jitter.min (${img.jitter.min})`,
      });
    if (c.fusion.enabled && c.task !== 'mtl')
      ctx.addIssue({
        code: 'custom',
        path: ['fusion', 'enabled'],
        message: `a fusion model needs both heads: task mtl, not ${c.task}`,
      });
    if (c.taskWeighting.kind !== 'fixed' && c.task !== 'mtl')
      ctx.addIssue({
        code: 'custom',
        path: ['taskWeighting', 'kind'],
        message: `weighs the two tasks of an MTL model: task mtl, not ${c.task}`,
      });
    if (c.trunk === 'resnet50' && img.size !== 224)
      ctx.addIssue({ code: 'custom', path: ['image', 'size'], message: 'the ImageNet ResNet-50 takes 224x224 inputs' });
  });

export type TrainConfig = z.output<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;

/** Flags that override the file (undefined: not given). */
export interface ConfigOverrides {
  mode?: TrainMode;
  task?: Task;
  seed?: number;
}

/** Defaults, then `input` (a parsed file or a test's object), then the flags. `source` names the input in errors. */
export function resolveConfig(
  input: unknown = {},
  overrides: ConfigOverrides = {},
  source = 'the config',
): TrainConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new DermtlError(`${source}: must be a JSON object`);
  const merged: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  const r = TrainConfigSchema.safeParse(merged);
  if (r.success) return r.data;
  throw errorList(
    `invalid training config in ${source}`,
    r.error.issues.flatMap((i) => describeIssue(i)),
  );
}

/** Reads `--config C.json` and resolves it. */
export async function loadConfig(file: string | undefined, overrides: ConfigOverrides = {}): Promise<TrainConfig> {
  if (!file) return resolveConfig({}, overrides, 'the defaults');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DermtlError(
      code === 'ENOENT' ? `config file not found: ${file}` : `cannot read config file ${file} (${code})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DermtlError(`config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return resolveConfig(json, overrides, file);
}

function describeIssue(i: z.core.$ZodIssue): string[] {
  const at = i.path.map(String).join('.');
  if (i.code === 'unrecognized_keys') return i.keys.map((k) => `unknown key "${at ? `${at}.` : ''}${k}"`);
  return [`${at || '(top level)'}: ${i.message}`];
}

/** The heads' shared layer and feature dropout of the config's mode. */
export function headsOptions(c: TrainConfig): {
  shared: { hidden: number; dropout: number } | null;
  featureDropout: number;
} {
  const m = c.mode === 'frozen' ? c.frozen : c.finetune;
  return { shared: m.shared, featureDropout: m.featureDropout };
}

/** The validation score that selects the epoch (see `selection`). */
export type SelectionMetric = Exclude<TrainConfig['selection']['metric'], 'auto'>;

export function selectionMetric(c: TrainConfig): SelectionMetric {
  const m = c.selection.metric;
  if (m !== 'auto') return m;
  return c.task === 'location' ? 'loss' : 'mapClass';
}

/** The SGD settings of the config's mode (frozen mode may override the base lr and weight decay). */
export function sgdOf(c: TrainConfig): { lr: number; momentum: number; weightDecay: number } {
  const o = c.optimizer;
  if (c.mode !== 'frozen') return { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay };
  return { lr: c.frozen.lr ?? o.lr, momentum: o.momentum, weightDecay: c.frozen.weightDecay ?? o.weightDecay };
}

export function epochsOf(c: TrainConfig): number {
  return c.mode === 'frozen' ? c.frozen.epochs : c.finetune.epochs;
}
