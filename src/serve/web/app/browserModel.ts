/**
 * The same model.onnx, run inside the browser by onnxruntime-web (wasm backend). ORT's own files are served by
 * the dermtl server under ort/ (from node_modules/onnxruntime-web, never a CDN) and loaded only when the visitor
 * first asks for in-browser inference, so the page itself stays small.
 */
import type * as Ort from 'onnxruntime-web';
import { decided, PageError, ranked, type ModelInfo, type Prediction } from './api.ts';
import type { PageExplanation, PageLabelMap } from './explain.ts';
import { cropBoxes, decodeResized, meanOverViews, viewsTensor, type Tta } from './preprocess.ts';

type OrtModule = typeof Ort;

export interface BrowserPrediction extends Prediction {
  timing: { preprocessMs: number; inferenceMs: number; totalMs: number };
}

export type Progress = (message: string) => void;

let ortModule: Promise<OrtModule> | null = null;

function loadOrt(): Promise<OrtModule> {
  ortModule ??= (async () => {
    // A runtime URL, so esbuild leaves the import alone and the browser fetches ORT's prebuilt ES module.
    const url = new URL('ort/ort.wasm.min.mjs', document.baseURI).href;
    const ort = (await import(url)) as OrtModule;
    ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
    // Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP/COEP headers); else one thread.
    ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    // Run ORT in a worker so the page stays responsive while a ResNet-50 takes its second or two.
    ort.env.wasm.proxy = true;
    return ort;
  })();
  ortModule.catch(() => (ortModule = null)); // a failed load may be retried
  return ortModule;
}

/** explain.onnx's input: model.onnx's conv5_x output (src/models/cam.ts). */
const CAM_INPUT = 'conv5_x';
/** A fusion model's body-site inputs (src/models/fusion.ts SITE_TENSORS): one-hot [rows, Q] and known [rows, 1]. */
const SITE_GIVEN = 'location_given';
const SITE_KNOWN = 'location_known';

export class BrowserModel {
  private cam: Promise<Ort.InferenceSession> | null = null;

  private constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    readonly info: ModelInfo,
    /** How long fetching the model and starting ORT took (ms). */
    readonly loadMs: number,
  ) {}

  /** WebAssembly threads ORT runs with (1 unless the page is cross-origin isolated). */
  get threads(): number {
    return this.ort.env.wasm.numThreads ?? 1;
  }

  static async load(info: ModelInfo, progress: Progress): Promise<BrowserModel> {
    const t0 = performance.now();
    progress('Loading the ONNX runtime…');
    let ort: OrtModule;
    try {
      ort = await loadOrt();
    } catch (e) {
      throw new PageError(`Cannot load onnxruntime-web in this browser (${messageOf(e)}).`);
    }
    const bytes = await fetchModel(progress);
    progress('Starting the model…');
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
      });
    } catch (e) {
      throw new PageError(`onnxruntime-web cannot run this model (${messageOf(e)}).`);
    }
    return new BrowserModel(ort, session, info, performance.now() - t0);
  }

  /**
   * The site feeds of `session` for `rows` rows, when it takes them: every row the one-hot of `site` (a body
   * location; '' = unknown: zeros, the model uses its own predicted location). {} for a model without them.
   */
  private siteFeeds(session: Ort.InferenceSession, rows: number, site: string): Record<string, Ort.Tensor> {
    if (!session.inputNames.includes(SITE_GIVEN)) return {};
    const locations = this.info.labels.location;
    const index = site ? locations.indexOf(site) : -1;
    if (site && index < 0)
      throw new PageError(`Unknown body site '${site}'; this model's body sites are ${locations.join(', ')}.`);
    const q = locations.length;
    const given = new Float32Array(rows * q);
    const known = new Float32Array(rows);
    if (index >= 0) {
      for (let r = 0; r < rows; r++) given[r * q + index] = 1;
      known.fill(1);
    }
    return {
      [SITE_GIVEN]: new this.ort.Tensor('float32', given, [rows, q]),
      [SITE_KNOWN]: new this.ort.Tensor('float32', known, [rows, 1]),
    };
  }

  /** Predicts the photo; `site`: its known body site for a model that takes one ('' = unknown). */
  async predict(file: Blob, tta: Tta, site = ''): Promise<BrowserPrediction> {
    const t0 = performance.now();
    const prep = this.info.preprocessing;
    let input: { data: Float32Array; views: number };
    try {
      input = viewsTensor(await decodeResized(file, prep), prep, tta);
    } catch (e) {
      throw new PageError(`This browser cannot read the photo (${messageOf(e)}).`);
    }
    const t1 = performance.now();
    const feeds = {
      image: new this.ort.Tensor('float32', input.data, [input.views, 3, prep.size, prep.size]),
      ...this.siteFeeds(this.session, input.views, site),
    };
    // the probabilities only: model.onnx also outputs conv5_x, which only explain() needs
    const out = await this.session.run(
      feeds,
      this.session.outputNames.filter((n) => n !== CAM_INPUT),
    );
    const t2 = performance.now();
    const head = (name: string) =>
      out[name] ? meanOverViews(out[name].data as Float32Array, input.views) : new Float32Array(0);
    const { lesion, location } = this.info.labels;
    return {
      lesions: decided(ranked(lesion, head('lesion_probs')), this.info.thresholds),
      location: ranked(location, head('location_probs')),
      timing: { preprocessMs: t1 - t0, inferenceMs: t2 - t1, totalMs: t2 - t0 },
    };
  }

  /**
   * Every label's Grad-CAM map for the centre view, as the server computes them: model.onnx gives conv5_x, then
   * explain.onnx (fetched on first use, a few MB) gives all the maps in one run. `site` as for predict, so the lesion
   * scores and maps are those of the prediction shown.
   */
  async explain(file: Blob, progress: Progress, site = ''): Promise<PageExplanation> {
    if (!this.session.outputNames.includes(CAM_INPUT))
      throw new PageError('This model has no conv5_x output, so it cannot show where it looked.');
    const prep = this.info.preprocessing;
    const img = await decodeResized(file, prep).catch((e: unknown) => {
      throw new PageError(`This browser cannot read the photo (${messageOf(e)}).`);
    });
    const input = viewsTensor(img, prep, 'center');
    const trunk = await this.session.run(
      {
        image: new this.ort.Tensor('float32', input.data, [1, 3, prep.size, prep.size]),
        ...this.siteFeeds(this.session, 1, site),
      },
      [CAM_INPUT],
    );
    this.cam ??= (async () => {
      const bytes = await fetchModel((m) => progress(m.replace('the model', 'the explain graph')), 'explain.onnx');
      return this.ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    })();
    this.cam.catch(() => (this.cam = null));
    const cam = await this.cam;
    // explain.onnx runs the heads on one row per label (src/models/cam.ts): its site inputs have P + Q rows
    const rows = this.info.labels.lesion.length + this.info.labels.location.length;
    const out = await cam.run({ [CAM_INPUT]: trunk[CAM_INPUT], ...this.siteFeeds(cam, rows, site) });
    const head = (labels: string[], key: 'lesion' | 'location'): PageLabelMap[] => {
      const maps = out[`${key}_cam`];
      if (!labels.length || !maps) return [];
      const [, , h, w] = maps.dims;
      const m = maps.data as Float32Array,
        s = out[`${key}_scores`].data as Float32Array,
        p = out[`${key}_cam_probs`].data as Float32Array;
      return labels.map((label, k) => {
        const map = m.subarray(k * h * w, (k + 1) * h * w);
        return { label, score: s[k], p: p[k], max: map.reduce((a, b) => Math.max(a, b), 0), map };
      });
    };
    const dims = (out.lesion_cam ?? out.location_cam).dims;
    const box = cropBoxes('center', img.width, img.height, prep.size)[0];
    return {
      grid: { h: dims[2], w: dims[3] },
      view: { ...box, width: img.width, height: img.height },
      lesions: head(this.info.labels.lesion, 'lesion'),
      location: head(this.info.labels.location, 'location'),
    };
  }
}

/** GET model.onnx (or another graph), reporting megabytes as they arrive (a ResNet-50 is ~100 MB; the browser caches it). */
async function fetchModel(progress: Progress, url = 'model.onnx'): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch {
    throw new PageError('Cannot download the model from the server.');
  }
  if (!res.ok || !res.body) throw new PageError(`Cannot download the model (the server answered ${res.status}).`);
  const total = Number(res.headers.get('content-length')) || 0;
  const chunks: Uint8Array[] = [];
  let got = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    progress(`Downloading the model… ${mb(got)}${total ? ` of ${mb(total)}` : ''}`);
  }
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
