/**
 * The dermtl page: pick or drop a photo, see it, see the lesion probabilities as bars and the top body
 * locations, computed by the server or (switch) by the same ONNX model inside this browser.
 */
import { fetchModelInfo, PageError, predictOnServer, type ModelInfo, type Prediction } from './api.ts';
import { renderBars } from './bars.ts';
import { BrowserModel } from './browserModel.ts';
import { checkFile } from './files.ts';
import type { Tta } from './preprocess.ts';

const TOP_LOCATIONS = 3;

const $ = <T extends HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el as T;
};

const ui = {
  drop: $('drop'),
  file: $<HTMLInputElement>('file'),
  preview: $<HTMLImageElement>('preview'),
  inBrowser: $<HTMLInputElement>('in-browser'),
  tta: $<HTMLSelectElement>('tta'),
  results: $('results'),
  status: $('status'),
  error: $('error'),
  output: $('output'),
  lesions: $<HTMLOListElement>('lesions'),
  locations: $<HTMLOListElement>('locations'),
  engine: $('engine'),
  timing: $('timing'),
  modelInfo: $('model-info'),
};

let info: Promise<ModelInfo> | null = null;
let browserModel: Promise<BrowserModel> | null = null;
let photo: File | null = null;
let previewUrl: string | null = null;
/** Bumped by every run; a run whose number is no longer current drops its result (the photo or switch changed). */
let runId = 0;

modelInfo().catch(showError);

/** The server's model description, fetched once (again after a failure, e.g. the server was restarting). */
function modelInfo(): Promise<ModelInfo> {
  if (!info) {
    info = fetchModelInfo();
    info.then(showModelInfo, () => (info = null));
  }
  return info;
}

ui.file.addEventListener('change', () => {
  const f = ui.file.files?.[0];
  if (f) choose(f);
  ui.file.value = ''; // choosing the same file again still fires 'change'
});
ui.inBrowser.addEventListener('change', () => void run());
ui.tta.addEventListener('change', () => void run());
for (const type of ['dragenter', 'dragover'] as const) {
  ui.drop.addEventListener(type, (e) => {
    e.preventDefault();
    ui.drop.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'drop'] as const) {
  ui.drop.addEventListener(type, () => ui.drop.classList.remove('dragging'));
}
ui.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  const f = e.dataTransfer?.files[0];
  if (f) choose(f);
});

function choose(f: File): void {
  const problem = checkFile(f);
  if (problem) {
    runId++;
    setState('error');
    showError(new PageError(problem));
    return;
  }
  photo = f;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(f);
  ui.preview.src = previewUrl;
  ui.preview.alt = `Your photo: ${f.name}`;
  ui.drop.classList.add('has-photo');
  void run();
}

async function run(): Promise<void> {
  if (!photo) return;
  const id = ++runId;
  const file = photo;
  const tta = ui.tta.value as Tta;
  const local = ui.inBrowser.checked;
  const current = () => id === runId;
  setState('busy');
  hideError();
  try {
    const model = await modelInfo();
    if (local) {
      const fresh = !browserModel;
      browserModel ??= BrowserModel.load(model, (m) => current() && say(m));
      browserModel.catch(() => (browserModel = null));
      const bm = await browserModel;
      if (!current()) return;
      say('Classifying in your browser…');
      const r = await bm.predict(file, tta);
      if (!current()) return;
      show(r, 'in your browser', `${ms(r.timing.totalMs)} (model ${ms(r.timing.inferenceMs)}, preprocessing ${ms(r.timing.preprocessMs)})` +
        (fresh ? `; loading the model first took ${ms(bm.loadMs)}` : ''));
    } else {
      say('Classifying on the server…');
      const t0 = performance.now();
      const r = await predictOnServer(file, tta, Math.max(model.labels.lesion.length, model.labels.location.length, 1));
      if (!current()) return;
      show(r, 'server', `${ms(r.timing.totalMs)} (model ${ms(r.timing.inferenceMs)}, decoding ${ms(r.timing.decodeMs)}); ${ms(performance.now() - t0)} with the upload`);
    }
  } catch (e) {
    if (!current()) return;
    setState('error');
    showError(e);
  }
}

function show(r: Prediction, engine: 'server' | 'in your browser', timing: string): void {
  renderBars(ui.lesions, r.lesions);
  renderBars(ui.locations, r.location.slice(0, TOP_LOCATIONS));
  ui.engine.textContent = engine;
  ui.timing.textContent = timing;
  ui.results.dataset.engine = engine === 'server' ? 'server' : 'browser';
  say('');
  setState('done');
}

function setState(state: 'busy' | 'done' | 'error'): void {
  ui.results.dataset.state = state;
  ui.results.setAttribute('aria-busy', String(state === 'busy'));
  ui.output.hidden = state !== 'done';
}

function say(message: string): void {
  ui.status.textContent = message;
}

function showError(e: unknown): void {
  say('');
  ui.error.textContent = e instanceof PageError ? e.message : `Something went wrong: ${e instanceof Error ? e.message : String(e)}`;
  ui.error.hidden = false;
}

function hideError(): void {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function showModelInfo(m: ModelInfo): void {
  const { lesion, location } = m.labels;
  ui.modelInfo.textContent = `${m.trunk ? `${m.trunk} model` : 'Model'}: ${lesion.length} lesion types, ${location.length} body locations, ` +
    `${m.preprocessing.size}×${m.preprocessing.size} input.`;
  // A model without one of the heads: hide that chart.
  ui.lesions.closest('section')!.hidden = lesion.length === 0;
  ui.locations.closest('section')!.hidden = location.length === 0;
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);
