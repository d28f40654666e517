// A tiny random dermtl model folder for the page tests: the tiny ResNet trunk at the real 224x224 input with the
// real Caffe preprocessing and the demo data's label names, so the page sees what a trained model would give it.
import { LESIONS, SITES } from '../../../src/data/demo/table.ts';
import { CAFFE_PREPROCESSING } from '../../../src/image/index.ts';
import { saveModel } from '../../../src/models/modelFile.ts';
import { buildNetwork, collectParams, type NetworkSpec } from '../../../src/models/network.ts';
import { Rng } from '../../../src/util/rng.ts';

export const TINY_SPEC: NetworkSpec = {
  trunk: { depth: 'tiny' },
  imageSize: 224,
  seed: 11,
  heads: { lesion: LESIONS.length, location: SITES.length },
};

export const TINY_LABELS = { lesion: [...LESIONS], location: [...SITES] };

/**
 * Saves the model to `dir`. The heads' biases get a seeded random offset so that the labels' probabilities
 * spread over 0..1 (on dog.jpg: 0.15 .. 0.95) rather than bunching: the bars and the cross-check mean more.
 */
export async function saveTinyModel(dir: string): Promise<void> {
  const net = buildNetwork(TINY_SPEC, { batch: 1, mode: 'inference', weights: 'random' });
  const r = Rng.seeded(5);
  const params = collectParams(net.graph);
  for (const [name, v] of params) {
    if (/lesion|location/.test(name) && /bias/.test(name))
      params.set(
        name,
        v.map((x) => x + 0.5 * r.normal()),
      );
  }
  await saveModel(dir, { network: TINY_SPEC, params, labels: TINY_LABELS, preprocessing: { ...CAFFE_PREPROCESSING } });
}
