// A small synthetic two-head problem for training tests: 8x8 RGB "images" that are a sum of one
// pattern per present lesion label (multi-label) plus one pattern for the body location (single label)
// plus noise; some samples have no lesion labels (weight 0), some no location (label -1, weight 0).
// The net: conv 3x3 -> relu -> maxpool 2 -> flatten -> two linear heads.
import { Graph } from '../../src/graph/index.ts';
import { Trainer, type Feeds, type TrainerOptions } from '../../src/train/step.ts';
import { Rng } from '../../src/util/rng.ts';

export const BATCH = 20;
export const SAMPLES = 200;
export const STEPS_PER_EPOCH = SAMPLES / BATCH;
const C = 3,
  H = 8,
  W = 8,
  PIX = C * H * W;
export const LESIONS = 4;
export const LOCATIONS = 3;
const FILTERS = 8;

export interface Dataset {
  images: Float32Array; // SAMPLES x PIX
  lesion: Float32Array; // SAMPLES x LESIONS
  lesionWeight: Float32Array;
  location: number[];
  locationWeight: Float32Array;
}

export function makeDataset(seed: number, n = SAMPLES): Dataset {
  const rng = Rng.derive(seed, 'patterns');
  const pattern = () => Float32Array.from({ length: PIX }, () => rng.uniform(-1, 1));
  const lesionP = Array.from({ length: LESIONS }, pattern);
  const locationP = Array.from({ length: LOCATIONS }, pattern);
  const r = Rng.derive(seed, 'samples');
  const d: Dataset = {
    images: new Float32Array(n * PIX),
    lesion: new Float32Array(n * LESIONS),
    lesionWeight: new Float32Array(n),
    location: [],
    locationWeight: new Float32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const img = d.images.subarray(i * PIX, (i + 1) * PIX);
    for (let p = 0; p < PIX; p++) img[p] = r.normal(0, 0.3);
    for (let j = 0; j < LESIONS; j++) {
      if (!r.bool(0.4)) continue;
      d.lesion[i * LESIONS + j] = 1;
      for (let p = 0; p < PIX; p++) img[p] += lesionP[j][p];
    }
    const loc = r.int(0, LOCATIONS - 1);
    for (let p = 0; p < PIX; p++) img[p] += locationP[loc][p];
    d.lesionWeight[i] = r.bool(0.15) ? 0 : 1;
    const known = !r.bool(0.15);
    d.location.push(known ? loc : -1);
    d.locationWeight[i] = known ? 1 : 0;
  }
  return d;
}

/** Feeds for samples `idx` (BATCH of them). */
export function feedsFor(d: Dataset, idx: readonly number[]): Feeds {
  const take = (src: Float32Array, k: number) => {
    const out = new Float32Array(idx.length * k);
    idx.forEach((s, b) => out.set(src.subarray(s * k, (s + 1) * k), b * k));
    return out;
  };
  return {
    image: take(d.images, PIX),
    lesion: take(d.lesion, LESIONS),
    lesionWeight: take(d.lesionWeight, 1),
    location: BigInt64Array.from(idx, (s) => BigInt(d.location[s])),
    locationWeight: take(d.locationWeight, 1),
  };
}

/** The batch of update `index`: a fresh seeded shuffle per epoch, so it depends on index alone. */
export function batchAt(d: Dataset, seed: number, index: number): Feeds {
  const epoch = Math.floor(index / STEPS_PER_EPOCH);
  const order = Rng.derive(seed, 'order', epoch).shuffle([...Array(SAMPLES).keys()]);
  const pos = (index % STEPS_PER_EPOCH) * BATCH;
  return feedsFor(d, order.slice(pos, pos + BATCH));
}

export function buildNet(seed: number): Graph {
  const rng = Rng.derive(seed, 'init');
  const uniform = (n: number, fanIn: number) =>
    Float32Array.from({ length: n }, () => rng.uniform(-1, 1) * Math.sqrt(3 / fanIn));
  const g = new Graph();
  const x = g.input('image', [BATCH, C, H, W]);
  const cw = g.param('conv/w', [FILTERS, C, 3, 3], uniform(FILTERS * C * 9, C * 9), { trainable: true });
  const cb = g.param('conv/b', [FILTERS], new Float32Array(FILTERS), { trainable: true });
  const feat = g.flatten(g.maxPool(g.relu(g.conv(x, cw, cb, { pads: 1 })), { kernel: 2, strides: 2 }));
  const k = feat.shape[1];
  const head = (name: string, out: number) =>
    g.gemm(
      feat,
      g.param(`${name}/w`, [out, k], uniform(out * k, k), { trainable: true }),
      g.param(`${name}/b`, [out], new Float32Array(out), { trainable: true }),
      { transB: true, name: `${name}Logits` },
    );
  const lesion = head('lesion', LESIONS);
  const location = head('location', LOCATIONS);
  g.sigmoidCrossEntropy(lesion, g.input('lesion', [BATCH, LESIONS]), g.input('lesionWeight', [BATCH]), {
    name: 'lesionLoss',
  });
  g.softmaxCrossEntropy(location, g.input('location', [BATCH], 'int64'), g.input('locationWeight', [BATCH]), {
    name: 'locationLoss',
  });
  return g;
}

/** The paper's recipe at a test-sized learning rate: new heads x10 (weights) / x20 (biases). */
export const HEAD_MULTIPLIERS = {
  'lesion/w': { lrMult: 10 },
  'lesion/b': { lrMult: 20 },
  'location/w': { lrMult: 10 },
  'location/b': { lrMult: 20 },
};

export async function makeTrainer(seed: number, extra: Partial<TrainerOptions> = {}): Promise<Trainer> {
  return Trainer.create({
    forward: buildNet(seed),
    losses: ['lesionLoss', { name: 'locationLoss', weight: 1 }],
    sgd: { lr: 1e-3, momentum: 0.9, weightDecay: 1e-4 },
    multipliers: HEAD_MULTIPLIERS,
    threads: 1,
    ...extra,
  });
}

/** Mean losses over the whole dataset in BATCH-sized chunks (no update). */
export async function datasetLoss(t: Trainer, d: Dataset): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  for (let s = 0; s < SAMPLES; s += BATCH) {
    const l = await t.evalLoss(
      feedsFor(
        d,
        Array.from({ length: BATCH }, (_, i) => s + i),
      ),
    );
    for (const [k, v] of Object.entries(l)) sums[k] = (sums[k] ?? 0) + v / STEPS_PER_EPOCH;
  }
  return sums;
}

export function snapshot(params: ReadonlyMap<string, Float32Array>): Map<string, Buffer> {
  return new Map([...params].map(([k, v]) => [k, Buffer.from(v.slice().buffer)]));
}
