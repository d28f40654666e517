// Shared by the serve and predict tests: a TINY random model folder (tiny trunk, 32x32 input) and real images.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { CAFFE_PREPROCESSING } from '../../src/image/index.ts';
import { saveModel } from '../../src/models/modelFile.ts';
import { buildNetwork, collectParams, type NetworkSpec } from '../../src/models/network.ts';

export const TINY_SPEC: NetworkSpec = {
  trunk: { depth: 'tiny' },
  imageSize: 32,
  seed: 3,
  heads: { lesion: 3, location: 4, shared: { hidden: 12, dropout: 0.3 }, featureDropout: 0.1 },
};
export const TINY_LABELS = { lesion: ['macule', 'papule', 'plaque'], location: ['face', 'trunk', 'arm', 'leg'] };
export const TINY_PREP = { ...CAFFE_PREPROCESSING, size: 32, resizeShorter: 37 };

/**
 * Writes a tiny model folder (the seeded random init: its probabilities are far from 0 and 1 and differ between
 * images, unlike a perturbed one, which saturates on 0-255 pixels) and returns its path.
 */
export async function tinyModelDir(root?: string): Promise<string> {
  const base = root ?? (await mkdtemp(join(tmpdir(), 'dermtl-serve-')));
  const net = buildNetwork(TINY_SPEC, { batch: 1, mode: 'train' });
  const dir = join(base, 'model');
  await saveModel(dir, {
    network: TINY_SPEC,
    params: collectParams(net.graph),
    labels: TINY_LABELS,
    preprocessing: TINY_PREP,
    config: { epochs: 1 },
    metrics: { mapClass: 0.42, top1: 0.5 },
  });
  return dir;
}

/** A w x h image with a diagonal colour ramp (different crops see different pixels), as jpeg / png / webp. */
export async function rampImage(format: 'jpeg' | 'png' | 'webp', w = 64, h = 48, seed = 0): Promise<Buffer> {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = (x * 4 + seed * 40) % 256;
      data[i + 1] = (y * 5 + seed * 17) % 256;
      data[i + 2] = ((x + y) * 3) % 256;
    }
  }
  const img = sharp(data, { raw: { width: w, height: h, channels: 3 } });
  return (
    format === 'jpeg' ? img.jpeg({ quality: 90 }) : format === 'png' ? img.png() : img.webp({ lossless: true })
  ).toBuffer();
}

// A valid PNG header claiming w x h pixels with a tiny body: the image tests' decompression bomb.
export { pngBomb as hugePngHeader } from '../image/helpers.ts';
