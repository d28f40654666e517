/**
 * Grad-CAM maps for a prediction: model.onnx's conv5_x output of the centre view goes through the model folder's
 * explain.onnx (models/cam.ts), which gives every label's score and map in one run. The maps are on the centre 224
 * view (the 10-crop mean has no single view); `view` says where that view sits in the photo.
 */
import { GraphSession, readModelInputs } from '../graph/index.ts';
import type { ViewParams } from '../image/index.ts';
import { CAM_INPUT, CAM_OUTPUTS } from '../models/cam.ts';
import { SITE_TENSORS } from '../models/fusion.ts';
import { modelSiteFeeds, type LoadedModel } from '../models/modelFile.ts';
import { mapMax, viewRegion, type ViewPlacement } from '../image/heatmap.ts';

/** One label's Grad-CAM map. */
export interface LabelMap {
  label: string;
  /** The head's score for this label on the explained view: its logit, the quantity Grad-CAM differentiates. */
  score: number;
  /** The label's probability on the explained view. */
  p: number;
  /** Largest map value (0: no position raises the score; the map is empty). */
  max: number;
  /** The raw map, grid.h x grid.w row-major (ReLU of the weighted channels; not normalised). */
  map: number[];
}

export interface Explanation {
  method: 'grad-cam';
  /** The map grid: the conv5_x activation's height and width (7 x 7 for a 224 view). */
  grid: { h: number; w: number };
  /** The explained view: a crop of the photo resized to width x height (the centre crop). */
  view: ViewPlacement;
  /** The view's region of the photo as fractions of its width and height. */
  region: { x0: number; y0: number; x1: number; y1: number };
  /** Every label of each head, in the head's order ([] for a head the model lacks). */
  lesions: LabelMap[];
  location: LabelMap[];
  /** explain.onnx's run (ms). */
  explainMs: number;
}

/** Runs explain.onnx for one image's conv5_x activation; opened on first use, released with the model. */
export class CamRunner {
  private constructor(
    private readonly session: GraphSession,
    private readonly siteRows: number | null,
  ) {}

  static async open(loaded: LoadedModel, threads?: number): Promise<CamRunner> {
    const bytes = await loaded.explainOnnx();
    // a fusion model's site inputs hold one row per label (the graph runs the heads on one copy of the features per
    // label: models/cam.ts); other inputs are refused rather than fed zeros blindly
    const others = readModelInputs(bytes).filter((i) => i.name !== CAM_INPUT);
    const given = others.find((i) => i.name === SITE_TENSORS.locationGiven);
    const unknown = others.filter(
      (i) => i.name !== SITE_TENSORS.locationGiven && i.name !== SITE_TENSORS.locationKnown,
    );
    if (unknown.length) throw new Error(`explain.onnx: unexpected input(s) ${unknown.map((i) => i.name).join(', ')}`);
    return new CamRunner(await GraphSession.fromBytes(bytes, { threads }), given ? given.shape[0] : null);
  }

  /**
   * The maps of one view's conv5_x activation. `site`: a fusion model's known location index (< 0 or absent:
   * unknown, the model's predicted location), as given to the prediction, so the lesion scores and maps explain
   * the prediction that was made.
   */
  async run(loaded: LoadedModel, conv5: Float32Array, view: ViewParams, site = -1): Promise<Explanation> {
    const t0 = performance.now();
    const sites = this.siteRows === null ? {} : modelSiteFeeds(loaded.network, this.siteRows, site);
    const out = await this.session.run({ [CAM_INPUT]: conv5, ...sites });
    const explainMs = performance.now() - t0;
    const dims = (out[CAM_OUTPUTS.lesionCam] ?? out[CAM_OUTPUTS.locationCam]).dims;
    const [h, w] = dims.slice(2);
    const head = (labels: readonly string[], scores: string, probs: string, cams: string): LabelMap[] => {
      if (!labels.length || !out[cams]) return [];
      const s = out[scores].data as Float32Array,
        p = out[probs].data as Float32Array,
        m = out[cams].data as Float32Array;
      return labels.map((label, k) => {
        const map = Array.from(m.subarray(k * h * w, (k + 1) * h * w), sig);
        return { label, score: sig(s[k]), p: sig(p[k]), max: mapMax(map), map };
      });
    };
    const placement: ViewPlacement = {
      x: view.x,
      y: view.y,
      size: view.size,
      flip: view.flip,
      width: view.width,
      height: view.height,
    };
    const r = viewRegion(placement, 1, 1);
    return {
      method: 'grad-cam',
      grid: { h, w },
      view: placement,
      region: { x0: sig(r.x0), y0: sig(r.y0), x1: sig(r.x1), y1: sig(r.y1) },
      lesions: head(loaded.labels.lesion, CAM_OUTPUTS.lesionScores, CAM_OUTPUTS.lesionProbs, CAM_OUTPUTS.lesionCam),
      location: head(
        loaded.labels.location,
        CAM_OUTPUTS.locationScores,
        CAM_OUTPUTS.locationProbs,
        CAM_OUTPUTS.locationCam,
      ),
      explainMs: Math.round(explainMs * 100) / 100,
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** 6 significant digits (JSON size). */
const sig = (v: number) => Number(v.toPrecision(6));
