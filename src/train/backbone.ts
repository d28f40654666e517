// The frozen trunk ("backbone") as an inference graph image -> pooled features: the ImageNet ResNet-50 (folded
// Keras weights, fetched once into the dermtl cache) or the tiny random ResNet (seeded; for tests and demos).
// Its id names exactly which weights produced a cached feature, so a cache entry is never reused across trunks.
import { createHash } from 'node:crypto';
import { Graph, GraphSession } from '../graph/index.ts';
import { loadFoldedResNet50, type FoldedResNet50 } from '../models/foldBatchNorm.ts';
import { serializeInference } from '../models/modelFile.ts';
import { ensurePretrainedResNet50, RESNET50_KERAS } from '../models/pretrained.ts';
import { buildResNet, trunkLayout } from '../models/resnet.ts';

export interface BackboneSpec {
  trunk: 'resnet50' | 'tiny';
  /** Input side. */
  imageSize: number;
  /** Seed of the random init (tiny trunk only; the pretrained trunk ignores it). */
  seed: number;
}

export interface Backbone {
  spec: BackboneSpec;
  id: string;
  featureDim: number;
  /** Trunk params by name (conv1/weight, ...): with trained heads they make the full model. */
  params: Map<string, Float32Array>;
  /** Runs n views [n, 3, size, size] -> features [n, featureDim] (the batch dimension is free). */
  run(views: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** Bump when the features of the same trunk and views would change (e.g. a different trunk graph). */
const FEATURE_VERSION = 1;

/**
 * A stable name for the weights of a trunk: resnet50 -> the pinned npm tarball's integrity (the folding is
 * deterministic); tiny -> its seed.
 */
export function backboneId(spec: BackboneSpec): string {
  if (spec.trunk === 'resnet50') return `resnet50-keras-${sha12(`${FEATURE_VERSION}|${RESNET50_KERAS.integrity}`)}`;
  return `tiny-seed${spec.seed}-v${FEATURE_VERSION}`;
}

export const TRUNK_DEPTH = { resnet50: 50, tiny: 'tiny' } as const;

/** Length of the pooled feature vector (2048 for ResNet-50). */
export function featureDimOf(trunk: BackboneSpec['trunk']): number {
  return trunkLayout(TRUNK_DEPTH[trunk]).featureDim;
}

export type TrunkWeights = FoldedResNet50 | 'random';

/** The trunk's initial weights: the folded ImageNet ResNet-50 (fetched into the dermtl cache once), or a seeded random tiny net. */
export async function loadTrunkWeights(trunk: BackboneSpec['trunk']): Promise<TrunkWeights> {
  return trunk === 'resnet50' ? loadFoldedResNet50(await ensurePretrainedResNet50()) : 'random';
}

/** The trunk alone as an inference graph: input 'image' [1, 3, size, size] -> output 'features' [1, d]. */
export function buildBackboneGraph(
  spec: BackboneSpec,
  weights: TrunkWeights,
): { graph: Graph; features: string; featureDim: number; params: Map<string, Float32Array> } {
  const g = new Graph();
  const image = g.input('image', [1, 3, spec.imageSize, spec.imageSize]);
  const trunk = buildResNet(g, image, { depth: TRUNK_DEPTH[spec.trunk], weights, seed: spec.seed, trainable: 'none' });
  g.output(trunk.features);
  return {
    graph: g,
    features: trunk.features.name,
    featureDim: trunk.layout.featureDim,
    params: new Map(g.params().map((p) => [p.name, p.data])),
  };
}

/** Builds and opens the backbone (ResNet-50: reads and folds the cached weights, a few seconds, unless given). */
export async function openBackbone(
  spec: BackboneSpec,
  opts: { threads?: number; weights?: TrunkWeights } = {},
): Promise<Backbone> {
  const b = buildBackboneGraph(spec, opts.weights ?? (await loadTrunkWeights(spec.trunk)));
  const session = await GraphSession.fromBytes(serializeInference(b.graph, { dynamicBatch: true }), {
    threads: opts.threads,
  });
  const size = spec.imageSize;
  return {
    spec,
    id: backboneId(spec),
    featureDim: b.featureDim,
    params: b.params,
    async run(views, n) {
      const out = await session.run({ image: { data: views, dims: [n, 3, size, size] } }, [b.features]);
      return out[b.features].data as Float32Array;
    },
    release: () => session.release(),
  };
}

export function sha12(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
