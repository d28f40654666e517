// Test helper (not a test): runs the ORIGINAL Keras ResNet50 with TensorFlow.js, so the ONNX network built
// from the folded weights can be checked against it. Uses the wasm backend when it loads (about 0.5 s per
// 224x224 image on 2 cores), else the pure-JS cpu backend (about 14 s per image).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';

export interface TfjsReference {
  backend: string;
  /** Seconds spent loading the model. */
  loadSeconds: number;
  /**
   * Runs n NHWC float32 images ([n, 224, 224, 3], already caffe-preprocessed). Returns the fc1000 softmax
   * probabilities [n, 1000] and the avg_pool features [n, 2048] (the backbone output new heads sit on).
   */
  predict(nhwc: Float32Array, n: number): { probs: Float32Array; features: Float32Array };
  dispose(): void;
}

/** Prefers wasm (fast, inference only); falls back to cpu when the wasm package is absent or fails. */
async function pickBackend(want: 'wasm' | 'cpu' | undefined): Promise<string> {
  if (want !== 'cpu') {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      if (await tf.setBackend('wasm')) return 'wasm';
    } catch (e) {
      if (want === 'wasm') throw e;
    }
  }
  await tf.setBackend('cpu');
  return 'cpu';
}

/** Loads the TF.js layers model in `folder` (model.json + shards) with an in-memory IO handler, no tfjs-node. */
export async function loadTfjsReference(
  folder: string,
  opts: { backend?: 'wasm' | 'cpu' } = {},
): Promise<TfjsReference> {
  const backend = await pickBackend(opts.backend);
  await tf.ready();
  const t0 = performance.now();
  const mj = JSON.parse(await readFile(join(folder, 'model.json'), 'utf8'));
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const bufs: Buffer[] = [];
  for (const g of mj.weightsManifest) {
    weightSpecs.push(...g.weights);
    for (const p of g.paths) bufs.push(await readFile(join(folder, p)));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const model = await tf.loadLayersModel({
    load: async () => ({ modelTopology: mj.modelTopology, weightSpecs, weightData }),
  });
  const both = tf.model({
    inputs: model.inputs,
    outputs: [model.outputs[0], model.getLayer('avg_pool').output as tf.SymbolicTensor],
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  return {
    backend,
    loadSeconds,
    predict(nhwc, n) {
      return tf.tidy(() => {
        const [p, f] = both.predict(tf.tensor4d(nhwc, [n, 224, 224, 3])) as tf.Tensor[];
        return { probs: p.dataSync() as Float32Array, features: f.dataSync() as Float32Array };
      });
    },
    dispose() {
      model.dispose();
    },
  };
}

export const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68] as const;

/**
 * An image file as one caffe-preprocessed NHWC input [224, 224, 3]: plain bilinear resize of the whole image
 * to 224x224 (no crop), RGB -> BGR, minus the ImageNet mean, no scaling (Keras "caffe" mode).
 */
export async function caffeInputNhwc(imagePath: string, size = 224): Promise<Float32Array> {
  const { data, info } = await sharp(imagePath)
    .removeAlpha()
    .resize(size, size, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${imagePath}: expected 3 channels, got ${info.channels}`);
  const out = new Float32Array(size * size * 3);
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = data[p * 3 + (2 - c)] - CAFFE_MEAN_BGR[c];
  }
  return out;
}

/** [n, c, h, w] to [n, h, w, c], for feeding the ONNX pipeline's NCHW batches to this reference. */
export function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < h * w; p++) out[(b * h * w + p) * c + ch] = x[(b * c + ch) * h * w + p];
  return out;
}

/** The k most probable classes of one probability row, best first. */
export function topK(probs: Float32Array, k: number, row = 0, classes = 1000): { index: number; p: number }[] {
  const r = Array.from(probs.subarray(row * classes, (row + 1) * classes), (p, index) => ({ index, p }));
  return r.sort((a, b) => b.p - a.p).slice(0, k);
}
