// The whole dermtl network (trunk + heads) from one JSON-serialisable spec, as a training graph's forward part
// or as an inference graph. Model files store the spec, so a saved model can be rebuilt exactly.
import { Graph, type Loss, type Tensor } from '../graph/index.ts';
import { DermtlError } from '../util/errors.ts';
import type { FoldedResNet50 } from './foldBatchNorm.ts';
import {
  addHeadLosses,
  buildHeads,
  checkHeadsConfig,
  type Heads,
  type HeadsConfig,
  type TaskWeighting,
} from './heads.ts';
import {
  buildResNet,
  buildResNetFrom,
  stageInputShape,
  trunkLayout,
  type ResNetDepth,
  type ResNetTrunk,
  type Trainable,
  type TrunkStage,
} from './resnet.ts';

/** Everything that fixes the network's shape and init (stored in a model folder's dermtl.json). */
export interface NetworkSpec {
  trunk: { depth: ResNetDepth };
  /** Side of the square input (224 for the pretrained ResNet-50). */
  imageSize: number;
  heads: HeadsConfig;
  /** Seed of every random init and dropout mask. */
  seed: number;
}

export const IMAGE_INPUT = 'image';

export interface BuildNetworkOptions {
  batch: number;
  /** 'train': dropout active, label inputs and losses added. 'inference': every param baked in, dropout off. */
  mode: 'train' | 'inference';
  /** Train mode only (inference freezes everything); default 'all'. */
  trainable?: Trainable;
  /** Trunk init: folded ImageNet weights (ResNet-50) or 'random'. */
  weights?: FoldedResNet50 | 'random';
  /** Param values by name (trained / saved), replacing the init. */
  values?: ReadonlyMap<string, Float32Array>;
  /** Every param must come from `values` (rebuilding a saved model). */
  requireValues?: boolean;
  /** Task weights of the losses (train mode). */
  taskWeights?: { lesion?: number; location?: number };
  /** Fixed task weights or learned ones (uncertainty weighting); train mode. */
  taskWeighting?: TaskWeighting;
  /** Train mode: dropout masks as graph inputs (see HeadsOptions.dropoutMasks). */
  dropoutMasks?: boolean;
}

export interface Network {
  graph: Graph;
  image: Tensor;
  trunk: ResNetTrunk;
  heads: Heads;
  /** Train mode: the losses for buildTrainingGraph (with task weights). Empty in inference mode. */
  losses: Loss[];
}

export function checkSpec(spec: NetworkSpec): void {
  if (spec.trunk.depth !== 50 && spec.trunk.depth !== 'tiny')
    throw new DermtlError(`unknown trunk depth ${JSON.stringify(spec.trunk.depth)} (expected 50 or "tiny")`);
  // 32 is the smallest side whose res5 map is still >= 1x1 (five halvings).
  if (!Number.isInteger(spec.imageSize) || spec.imageSize < 32)
    throw new DermtlError(`image size must be a whole number >= 32, got ${spec.imageSize}`);
  if (!Number.isInteger(spec.seed)) throw new DermtlError(`seed must be an integer, got ${spec.seed}`);
  checkHeadsConfig(spec.heads);
}

/**
 * Builds image input 'image' [batch, 3, size, size] -> trunk -> heads. Outputs: lesion_probs and/or
 * location_probs (and in train mode the losses, added by buildTrainingGraph).
 */
export function buildNetwork(spec: NetworkSpec, opts: BuildNetworkOptions): Network {
  const { g, trainable, common } = startGraph(spec, opts);
  const image = g.input(IMAGE_INPUT, [opts.batch, 3, spec.imageSize, spec.imageSize]);
  const trunk = buildResNet(g, image, {
    depth: spec.trunk.depth,
    weights: opts.weights,
    seed: spec.seed,
    trainable,
    ...common,
  });
  return { image, ...withHeads(g, spec, opts, trunk, trainable) };
}

/** The input of a network cut at a stage: the activation entering that stage, [batch, C, H, W]. */
export const ACTIVATIONS_INPUT = 'activations';

/**
 * The network from `stage` on (partial fine-tuning): input 'activations' [batch, C, H, W] (what the trunk below
 * `stage` makes of an image, see buildResNetBelow) -> the stages from `stage` -> heads. Same layers, names and
 * init as buildNetwork, so its params drop into the full network.
 */
export function buildNetworkFrom(
  spec: NetworkSpec,
  stage: TrunkStage,
  opts: BuildNetworkOptions,
): Omit<Network, 'image'> & { activations: Tensor } {
  const { g, trainable, common } = startGraph(spec, opts);
  const activations = g.input(ACTIVATIONS_INPUT, [
    opts.batch,
    ...stageInputShape(trunkLayout(spec.trunk.depth), stage, spec.imageSize),
  ]);
  const trunk = buildResNetFrom(
    g,
    activations,
    { depth: spec.trunk.depth, weights: opts.weights, seed: spec.seed, trainable, ...common },
    stage,
  );
  return { activations, ...withHeads(g, spec, opts, trunk, trainable) };
}

function startGraph(spec: NetworkSpec, opts: BuildNetworkOptions) {
  checkSpec(spec);
  if (!Number.isInteger(opts.batch) || opts.batch < 1)
    throw new DermtlError(`batch size must be a whole number >= 1, got ${opts.batch}`);
  const trainable: Trainable = opts.mode === 'train' ? (opts.trainable ?? 'all') : 'none';
  return { g: new Graph(), trainable, common: { values: opts.values, requireValues: opts.requireValues } };
}

function withHeads(
  g: Graph,
  spec: NetworkSpec,
  opts: BuildNetworkOptions,
  trunk: ResNetTrunk,
  trainable: Trainable,
): Omit<Network, 'image'> {
  const train = opts.mode === 'train';
  // The heads are new layers: trainable whenever anything is ('heads', 'all' and predicates alike).
  const headsTrainable = trainable !== 'none';
  const common = { values: opts.values, requireValues: opts.requireValues };
  const heads = buildHeads(g, trunk.features, {
    ...spec.heads,
    seed: spec.seed,
    training: train,
    trainable: headsTrainable,
    dropoutMasks: opts.dropoutMasks,
    ...common,
  });
  if (heads.lesionProbs) g.output(heads.lesionProbs);
  if (heads.locationProbs) g.output(heads.locationProbs);
  const losses = train ? addHeadLosses(g, heads, opts.taskWeights, opts.taskWeighting).losses : [];
  return { graph: g, trunk, heads, losses };
}

/** Every param of a built graph by name: its declared data, replaced by `trained` where given (for saving). */
export function collectParams(g: Graph, trained?: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map(g.params().map((p) => [p.name, trained?.get(p.name) ?? p.data]));
}
