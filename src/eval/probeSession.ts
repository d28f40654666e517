// The linear baseline's data plumbing: from the cached ten-crop features of a study's images to the probe's
// matrices (one row per crop, standardised with the training rows' statistics) and back to per-image scores (the
// mean of the test views' probabilities, like 10-crop testing; the centre crop alone with --tta center).
import type { Sample } from '../data/types.ts';
import type { Tta } from '../train/config.ts';
import { CENTER_VIEW, TEN_CROP_VIEWS, type ViewFeatures } from '../train/features.ts';
import {
  fitLinearHeads,
  fitStandardiser,
  predictLinearHeads,
  standardise,
  type LinearHeads,
  type ProbeFit,
  type ProbeTargets,
} from '../train/linearProbe.ts';
import { Preconditioner } from '../train/preconditioner.ts';
import { OrtRowMatrix } from '../train/rowMatrix.ts';
import type { RunLabels } from '../train/run.ts';
import { encodeTargets } from '../train/targets.ts';

/** The ten-crop features of every image a baseline may use: image `index.get(image)` of `views`. */
export interface CropFeatures {
  index: ReadonlyMap<string, number>;
  views: ViewFeatures;
}

/** Score rows of images, label columns in RunLabels order. */
export interface ImageScores {
  lesion: Float64Array[];
  location: Float64Array[];
}

const ALL_CROPS = Array.from({ length: TEN_CROP_VIEWS }, (_, k) => k);

/**
 * A training set (all ten crops of each image) and a set of images to score, ready for fits at any lambda: the
 * standardised matrices and the training features' preconditioner are made once and shared by every fit.
 */
export class ProbeSession {
  private constructor(
    private readonly trainX: OrtRowMatrix,
    private readonly scoreX: OrtRowMatrix,
    private readonly targets: ProbeTargets,
    private readonly preconditioner: Preconditioner,
    private readonly images: number,
    private readonly views: number,
    private readonly labels: RunLabels,
  ) {}

  static async open(
    f: CropFeatures,
    train: readonly Sample[],
    score: readonly Sample[],
    labels: RunLabels,
    tta: Tta,
    threads?: number,
  ): Promise<ProbeSession> {
    const dim = f.views.dim;
    const raw = cropRows(f, train, ALL_CROPS);
    const std = fitStandardiser(raw, raw.length / dim, dim);
    const trainX = new OrtRowMatrix(standardise(raw, std), raw.length / dim, dim, threads, 'training features');
    const views = tta === 'center' ? [CENTER_VIEW] : ALL_CROPS;
    const scoreX = new OrtRowMatrix(
      standardise(cropRows(f, score, views), std),
      score.length * views.length,
      dim,
      threads,
      'features to score',
    );
    const preconditioner = await Preconditioner.create(trainX, { threads });
    return new ProbeSession(
      trainX,
      scoreX,
      rowTargets(train, labels, ALL_CROPS.length),
      preconditioner,
      score.length,
      views.length,
      labels,
    );
  }

  /** Fits the heads at these lambdas (warm-started from `init`) and scores the images. */
  async fit(
    lambdas: { lesion: number; location: number },
    init?: LinearHeads,
  ): Promise<{ fit: ProbeFit; scores: ImageScores }> {
    const fit = await fitLinearHeads(this.trainX, this.targets, lambdas, { init, preconditioner: this.preconditioner });
    const p = await predictLinearHeads(this.scoreX, fit.heads);
    return {
      fit,
      scores: {
        lesion: this.meanOverViews(p.lesion, this.labels.lesion.length),
        location: this.meanOverViews(p.location, this.labels.location.length),
      },
    };
  }

  get trainingRows(): number {
    return this.trainX.rows;
  }

  async release(): Promise<void> {
    await this.preconditioner.release();
    await this.trainX.release();
    await this.scoreX.release();
  }

  /** Per image, the mean of its views' probabilities. */
  private meanOverViews(probs: Float64Array, cols: number): Float64Array[] {
    const v = this.views;
    return Array.from({ length: this.images }, (_, i) => {
      const row = new Float64Array(cols);
      for (let k = 0; k < v; k++) for (let c = 0; c < cols; c++) row[c] += probs[(i * v + k) * cols + c];
      for (let c = 0; c < cols; c++) row[c] /= v;
      return row;
    });
  }
}

/** The rows of `views` of each sample's ten crops, sample-major: [samples x views, dim]. */
function cropRows(f: CropFeatures, samples: readonly Sample[], views: readonly number[]): Float32Array {
  const { dim, views: per, data } = f.views;
  const out = new Float32Array(samples.length * views.length * dim);
  samples.forEach((s, i) => {
    const at = f.index.get(s.image);
    if (at === undefined) throw new Error(`linear baseline: no ten-crop features for ${s.image}`);
    views.forEach((v, k) =>
      out.set(data.subarray((at * per + v) * dim, (at * per + v + 1) * dim), (i * views.length + k) * dim),
    );
  });
  return out;
}

/** Each sample's targets repeated for its `views` rows. */
function rowTargets(samples: readonly Sample[], labels: RunLabels, views: number): ProbeTargets {
  const t = encodeTargets(samples, labels);
  const P = labels.lesion.length;
  const rows = samples.length * views;
  const out: ProbeTargets = {
    rows,
    lesionLabels: P,
    lesion: new Float32Array(rows * P),
    lesionKnown: new Uint8Array(rows),
    locationClasses: labels.location.length,
    location: new Int32Array(rows),
  };
  for (let i = 0; i < samples.length; i++) {
    for (let k = 0; k < views; k++) {
      const r = i * views + k;
      out.lesion.set(t.lesion.subarray(i * P, (i + 1) * P), r * P);
      out.lesionKnown[r] = t.lesionKnown[i];
      out.location[r] = t.location[i];
    }
  }
  return out;
}
