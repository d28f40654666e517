// The frozen part of a partially fine-tuned trunk: image -> stem -> the stages below the cut -> the activation that
// enters the first trainable stage, as an inference session (weights baked in as initializers, which ORT pre-packs).
// It runs once per image and view when the activation cache is filled, never during training.
import { Graph, GraphSession } from '../graph/index.ts';
import { serializeInference } from '../models/modelFile.ts';
import { buildResNetBelow, stageInputShape, trunkLayout, type TrunkStage } from '../models/resnet.ts';
import { TRUNK_DEPTH, type BackboneSpec, type TrunkWeights } from './backbone.ts';

export interface LowerTrunk {
  stage: TrunkStage;
  /** [C, H, W] of one view's activation. */
  shape: [number, number, number];
  /** Runs n views [n, 3, size, size] -> activations [n, C, H, W] (the batch dimension is free). */
  run(views: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** The trunk below `stage` as an inference graph: input 'image' [1, 3, size, size] -> its activation output. */
export function buildLowerTrunkGraph(
  spec: BackboneSpec,
  stage: TrunkStage,
  weights: TrunkWeights,
): { graph: Graph; output: string; params: Map<string, Float32Array> } {
  const g = new Graph();
  const image = g.input('image', [1, 3, spec.imageSize, spec.imageSize]);
  const below = buildResNetBelow(
    g,
    image,
    { depth: TRUNK_DEPTH[spec.trunk], weights, seed: spec.seed, trainable: 'none' },
    stage,
  );
  g.output(below.activation);
  return { graph: g, output: below.activation.name, params: new Map(g.params().map((p) => [p.name, p.data])) };
}

export function lowerTrunkShape(spec: BackboneSpec, stage: TrunkStage): [number, number, number] {
  return stageInputShape(trunkLayout(TRUNK_DEPTH[spec.trunk]), stage, spec.imageSize);
}

export async function openLowerTrunk(
  spec: BackboneSpec,
  stage: TrunkStage,
  weights: TrunkWeights,
  threads?: number,
): Promise<LowerTrunk> {
  const b = buildLowerTrunkGraph(spec, stage, weights);
  const session = await GraphSession.fromBytes(serializeInference(b.graph, { dynamicBatch: true }), { threads });
  const size = spec.imageSize;
  return {
    stage,
    shape: lowerTrunkShape(spec, stage),
    async run(views, n) {
      const out = await session.run({ image: { data: views, dims: [n, 3, size, size] } }, [b.output]);
      return out[b.output].data as Float32Array;
    },
    release: () => session.release(),
  };
}
