/**
 * One image -> ranked labels: decode + test views (src/image), one onnxruntime run over all views, the views'
 * probabilities averaged (the paper's 10-crop testing), then each head's labels sorted by probability.
 */
import { join } from 'node:path';
import { renderViews, type ViewMode } from '../image/index.ts';
import { lesionThresholds } from '../models/calibration.ts';
import { MODEL_FILES, type LoadedModel } from '../models/modelFile.ts';
import { DermtlError } from '../util/errors.ts';
import { CamRunner } from './explain.ts';
import { meanOverViews } from '../image/tta.ts';
import { TTA_MODES, type Tta } from './defaults.ts';
import type { DermtlModel, LabelScore, Prediction, PredictOptions, SiteUse } from './types.ts';

const VIEW_MODE: Record<Tta, ViewMode> = { center: 'center', '10crop': 'tenCrop' };

export interface PredictorOptions {
  maxPixels?: number;
}

/** Wraps a loaded model folder as the public DermtlModel. */
export function createPredictor(loaded: LoadedModel, opts: PredictorOptions = {}): DermtlModel {
  // ORT already uses every core inside one run; two runs at once would only fight over them. Decoding (sharp,
  // libuv pool) of the next image still overlaps the current run.
  const exclusive = serialQueue();
  // the model's lesion decision thresholds (calibration.json; 0.5 each for a model without one)
  const thresholds = lesionThresholds(loaded.calibration, loaded.labels.lesion);
  let disposed = false;
  let cam: Promise<CamRunner> | null = null;

  async function predict(image: string | Uint8Array, p: PredictOptions = {}): Promise<Prediction> {
    const t0 = performance.now();
    const tta = p.tta ?? 'center';
    checkPredictOptions(tta, p.top);
    if (disposed) throw new DermtlError('this model was disposed; load it again to predict');
    const site = siteOf(loaded, p.location);
    const name = typeof image === 'string' ? image : (p.name ?? 'image data');
    const views = await renderViews(image, VIEW_MODE[tta], null, {
      prep: loaded.preprocessing,
      maxPixels: p.maxPixels ?? opts.maxPixels,
      name,
    });
    const t1 = performance.now();
    let inferenceMs = 0;
    const explain = p.explain === true;
    const probs = await exclusive(async () => {
      if (disposed) throw new DermtlError('this model was disposed; load it again to predict');
      const s = performance.now();
      const out = await loaded.predict(views.data, views.params.length, { conv5: explain, site: site.index });
      inferenceMs = performance.now() - s;
      return out;
    });
    const n = views.params.length;
    // the maps are the centre view's: view 0 of 'center', view 4 (unflipped centre) of '10crop'
    const centre = tta === 'center' ? 0 : 4;
    const explanation = explain
      ? await exclusive(async () => {
          if (disposed) throw new DermtlError('this model was disposed; load it again to predict');
          cam ??= CamRunner.open(loaded);
          cam.catch(() => (cam = null));
          const per = probs.conv5!.length / n;
          return (await cam).run(
            loaded,
            probs.conv5!.subarray(centre * per, (centre + 1) * per),
            views.params[centre],
            site.index,
          );
        })
      : undefined;
    const prediction: Prediction = {
      lesions: probs.lesion
        ? withDecisions(rankLabels(loaded.labels.lesion, meanOverViews(probs.lesion, n), p.top), thresholds)
        : [],
      location: probs.location ? rankLabels(loaded.labels.location, meanOverViews(probs.location, n), p.top) : [],
      timing: { decodeMs: round(t1 - t0), inferenceMs: round(inferenceMs), totalMs: 0 },
      tta,
      ...(explanation ? { explanation } : {}),
      ...(site.use ? { site: site.use } : {}),
    };
    prediction.timing.totalMs = round(performance.now() - t0);
    return prediction;
  }

  return {
    dir: loaded.dir,
    onnxPath: loaded.manifest.trunk ? null : join(loaded.dir, MODEL_FILES.onnx),
    onnx: loaded.onnx,
    labels: loaded.labels,
    preprocessing: loaded.preprocessing,
    metrics: loaded.metrics,
    network: loaded.network,
    takesSite: loaded.takesSite,
    calibration: loaded.calibration,
    manifest: loaded.manifest,
    formatVersion: loaded.manifest.version,
    explainOnnx: () => loaded.explainOnnx(),
    predict,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await exclusive(async () => {
        await loaded.release();
        if (cam) await (await cam.catch(() => null))?.release();
      });
    },
  };
}

/** A location name the model does not know (the server answers 400). */
export class UnknownLocationError extends DermtlError {}

/**
 * The location index to feed for `location` (-1: none or unused) and what to report about it. A name must be one of
 * the model's locations (when it has a location head); a model without site inputs ignores it, saying so.
 */
export function siteOf(
  model: { labels: { location: readonly string[] }; takesSite: boolean },
  location: string | undefined,
): { index: number; use?: SiteUse } {
  if (location === undefined) {
    return model.takesSite
      ? {
          index: -1,
          use: {
            given: null,
            used: false,
            note: "no body site given: the lesion head used the model's own predicted location",
          },
        }
      : { index: -1 };
  }
  const known = model.labels.location;
  const index = known.indexOf(location);
  if (index < 0 && (model.takesSite || known.length)) {
    throw new UnknownLocationError(`unknown body site '${location}'; this model's body sites are ${known.join(', ')}`);
  }
  if (!model.takesSite)
    return {
      index: -1,
      use: {
        given: location,
        used: false,
        note: 'this model does not take a body site (it was not trained with fusion): the location was ignored',
      },
    };
  return { index, use: { given: location, used: true } };
}

export function checkPredictOptions(tta: unknown, top: unknown): void {
  if (!TTA_MODES.includes(tta as Tta))
    throw new DermtlError(`unknown tta '${String(tta)}' (expected ${TTA_MODES.join(' or ')})`);
  if (top !== undefined && !(Number.isInteger(top) && (top as number) >= 1))
    throw new DermtlError(`top must be a whole number >= 1, got ${String(top)}`);
}

export { meanOverViews };

/** Each lesion score with its threshold and whether it is predicted present: p (as returned) >= threshold. */
export function withDecisions(scores: LabelScore[], thresholds: Readonly<Record<string, number>>): LabelScore[] {
  return scores.map((s) => ({ ...s, present: s.p >= thresholds[s.label], threshold: thresholds[s.label] }));
}

/** Labels by probability, highest first; ties keep the head's label order. p has 6 significant digits. */
export function rankLabels(labels: readonly string[], probs: ArrayLike<number>, top?: number): LabelScore[] {
  if (probs.length !== labels.length) throw new Error(`${probs.length} probabilities for ${labels.length} labels`);
  const ranked = labels.map((label, i) => ({ label, p: Number(probs[i].toPrecision(6)), raw: probs[i] }));
  ranked.sort((a, b) => b.raw - a.raw); // stable: ties stay in label order
  return ranked.slice(0, top ?? ranked.length).map(({ label, p }) => ({ label, p }));
}

/** Runs the given functions one at a time, in call order (a failure does not block the next one). */
function serialQueue(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;
