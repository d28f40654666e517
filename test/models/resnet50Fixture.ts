// Test helper (not a test): the real pretrained ResNet-50 built by this engine with fc1000 re-attached, exported
// as the dynamic-batch inference ONNX and opened once per test file.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Graph, GraphSession } from '../../src/graph/index.ts';
import { ensurePretrainedResNet50, RegistryUnreachableError } from '../../src/models/pretrained.ts';
import { loadFoldedResNet50 } from '../../src/models/foldBatchNorm.ts';
import { buildResNet } from '../../src/models/resnet.ts';
import { serializeInference } from '../../src/models/modelFile.ts';

export interface ImageNetResNet50 {
  folder: string;
  labels: Record<string, string>;
  /** Inputs 'image' [N,3,224,224] (Caffe BGR); outputs 'imagenet_probs' [N,1000] and 'features' [N,2048]. */
  session: GraphSession;
  /** Seconds: reading + folding the weights, building + serialising the graph, opening the ORT session. */
  timings: { loadFold: number; build: number; session: number };
}

/** { skip: reason } only when the registry is unreachable and nothing is cached. */
export async function openImageNetResNet50(): Promise<ImageNetResNet50 | { skip: string }> {
  let folder: string;
  try {
    folder = await ensurePretrainedResNet50({ progress: false });
  } catch (e) {
    if (e instanceof RegistryUnreachableError) return { skip: e.message };
    throw e;
  }
  const t0 = performance.now();
  const folded = await loadFoldedResNet50(folder);
  const t1 = performance.now();
  const g = new Graph();
  const trunk = buildResNet(g, g.input('image', [1, 3, 224, 224]), {
    depth: 50,
    weights: folded,
    trainable: 'none',
    fc1000: true,
  });
  g.output(trunk.imagenetProbs!);
  g.output(trunk.features);
  const bytes = serializeInference(g);
  const t2 = performance.now();
  const session = await GraphSession.fromBytes(bytes);
  const t3 = performance.now();
  const labels = JSON.parse(await readFile(join(folder, 'imagenet_labels.json'), 'utf8'));
  return {
    folder,
    labels,
    session,
    timings: { loadFold: (t1 - t0) / 1000, build: (t2 - t1) / 1000, session: (t3 - t2) / 1000 },
  };
}

/** [n, h, w, c] to [n, c, h, w]. */
export function nhwcToNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < h * w; p++)
      for (let ch = 0; ch < c; ch++) out[(b * c + ch) * h * w + p] = x[(b * h * w + p) * c + ch];
  return out;
}
