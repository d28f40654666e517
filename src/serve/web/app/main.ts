/**
 * The dermtl page: pick or drop a photo, see it, see the lesion probabilities as bars and the top body
 * locations, computed by the server or (switch) by the same ONNX model inside this browser.
 */
import { fetchModelInfo, PageError, predictOnServer, type ModelInfo, type Prediction } from './api.ts';
import { renderBars } from './bars.ts';
import { BrowserModel } from './browserModel.ts';
import { drawMap, explainOnServer, labelMap, type Head, type PageExplanation } from './explain.ts';
import { checkFile } from './files.ts';
import { centerBox, shorterSideSize } from '../../../image/crops.ts';
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
  choose: $('choose'),
  preview: $<HTMLImageElement>('preview'),
  crop: $('crop'),
  cropNote: $('crop-note'),
  inBrowser: $<HTMLInputElement>('in-browser'),
  tta: $<HTMLSelectElement>('tta'),
  siteOption: $('site-option'),
  site: $<HTMLSelectElement>('site'),
  siteNote: $('site-note'),
  results: $('results'),
  status: $('status'),
  error: $('error'),
  output: $('output'),
  lesions: $<HTMLOListElement>('lesions'),
  locations: $<HTMLOListElement>('locations'),
  engine: $('engine'),
  enginePrefix: $('engine-prefix'),
  timing: $('timing'),
  modelInfo: $('model-info'),
  cam: $<HTMLCanvasElement>('cam'),
  camNote: $('cam-note'),
};

let info: Promise<ModelInfo> | null = null;
let browserModel: Promise<BrowserModel> | null = null;
/** Where the in-browser model's loading messages go (the run that waits for it now). */
let loadProgress: ((message: string) => void) | null = null;
/** The in-browser model whose loading time a result already reported (it is said once). */
let loadReported: BrowserModel | null = null;
let photo: File | null = null;
let previewUrl: string | null = null;
/** Bumped by every run; a run whose number is no longer current drops its result (the photo or switch changed). */
let runId = 0;
/** The shown result's Grad-CAM maps (every label), fetched or computed on the first click of a bar. */
let explanation: { run: number; maps: Promise<PageExplanation> } | null = null;
/** The bar whose map is shown. */
let shownMap: { head: Head; label: string } | null = null;

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
ui.inBrowser.addEventListener('change', () => {
  if (photo) void run();
  else if (ui.inBrowser.checked)
    warmUp(); // fetch the model while the visitor looks for a photo
  else say('');
});
ui.tta.addEventListener('change', () => {
  void showCrop();
  void run();
});
ui.site.addEventListener('change', () => void run());
ui.preview.addEventListener('load', () => void showCrop());
// A file this browser cannot display (e.g. corrupt): no broken-image icon; the server's answer says what is wrong.
ui.preview.addEventListener('error', () => ui.drop.classList.remove('has-photo'));
for (const type of ['dragenter', 'dragover'] as const) {
  ui.drop.addEventListener(type, (e) => {
    e.preventDefault();
    ui.drop.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'drop'] as const) {
  ui.drop.addEventListener(type, () => ui.drop.classList.remove('dragging'));
}
// A photo dropped beside the zone must not make the browser leave the page to show the file.
for (const type of ['dragover', 'drop'] as const) window.addEventListener(type, (e) => e.preventDefault());
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
  ui.choose.textContent = 'Choose another photo';
  void run();
}

async function run(): Promise<void> {
  if (!photo) return;
  const id = ++runId;
  const file = photo;
  const tta = ui.tta.value as Tta;
  // the body site, for a model that takes one ('' = unknown; the select stays hidden for other models)
  const site = ui.siteOption.hidden ? '' : ui.site.value;
  const local = ui.inBrowser.checked;
  const current = () => id === runId;
  setState('busy');
  hideError();
  hideMap();
  try {
    const model = await modelInfo();
    if (local) {
      const bm = await loadBrowserModel(model, (m) => current() && say(m));
      if (!current()) return;
      say('Classifying in your browser…');
      const r = await bm.predict(file, tta, site);
      if (!current()) return;
      const threads = `WebAssembly, ${bm.threads} thread${bm.threads === 1 ? '' : 's'}`;
      show(
        r,
        'browser',
        tta,
        site,
        `${ms(r.timing.totalMs)} (model ${ms(r.timing.inferenceMs)}, preprocessing ${ms(r.timing.preprocessMs)}; ${threads})` +
          (loadReported === bm ? '' : `. Loading the model took ${ms(bm.loadMs)} before that`),
      );
      loadReported = bm;
    } else {
      say('Classifying on the server…');
      const t0 = performance.now();
      const r = await predictOnServer(
        file,
        tta,
        Math.max(model.labels.lesion.length, model.labels.location.length, 1),
        site,
      );
      if (!current()) return;
      show(
        r,
        'server',
        tta,
        site,
        `${ms(r.timing.totalMs)} (model ${ms(r.timing.inferenceMs)}, decoding ${ms(r.timing.decodeMs)}); ${ms(performance.now() - t0)} including the upload`,
      );
    }
  } catch (e) {
    if (!current()) return;
    setState('error');
    showError(e);
  }
}

/** The in-browser model, loaded once (again after a failure). */
function loadBrowserModel(model: ModelInfo, progress: (message: string) => void): Promise<BrowserModel> {
  if (!browserModel) {
    browserModel = BrowserModel.load(model, (m) => loadProgress?.(m));
    browserModel.catch(() => (browserModel = null));
  }
  loadProgress = progress;
  return browserModel;
}

function warmUp(): void {
  modelInfo()
    .then((m) => loadBrowserModel(m, (message) => !photo && say(message)))
    .then(
      () => !photo && say('The model is ready in your browser.'),
      (e) => !photo && showError(e),
    );
}

function show(r: Prediction, engine: 'server' | 'browser', tta: Tta, site: string, timing: string): void {
  renderBars(ui.lesions, r.lesions);
  renderBars(ui.locations, r.location.slice(0, TOP_LOCATIONS));
  explainable(ui.lesions, 'lesion');
  explainable(ui.locations, 'location');
  ui.enginePrefix.textContent = engine === 'server' ? 'Computed by the' : 'Computed';
  ui.engine.textContent = engine === 'server' ? 'server' : 'in your browser';
  ui.timing.textContent = timing;
  ui.results.dataset.engine = engine;
  ui.results.dataset.tta = tta;
  ui.results.dataset.site = site;
  ui.siteNote.hidden = ui.siteOption.hidden;
  ui.siteNote.textContent = site
    ? `Lesion types scored knowing the body site: ${site}.`
    : "Body site not given: the lesion types use the model's own estimate of the location.";
  say('');
  setState('done');
}

function setState(state: 'busy' | 'done' | 'error'): void {
  ui.results.dataset.state = state;
  if (state !== 'done') {
    delete ui.results.dataset.engine;
    delete ui.results.dataset.tta;
    delete ui.results.dataset.site;
  }
  ui.results.setAttribute('aria-busy', String(state === 'busy'));
  ui.output.hidden = state !== 'done';
}

function say(message: string): void {
  ui.status.textContent = message;
}

function showError(e: unknown): void {
  say('');
  ui.error.textContent =
    e instanceof PageError ? e.message : `Something went wrong: ${e instanceof Error ? e.message : String(e)}`;
  ui.error.hidden = false;
}

function hideError(): void {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function showModelInfo(m: ModelInfo): void {
  const { lesion, location } = m.labels;
  ui.modelInfo.textContent =
    `${m.trunk ? `${m.trunk} model` : 'Model'}: ${lesion.length} lesion types, ${location.length} body locations, ` +
    `${m.preprocessing.size}×${m.preprocessing.size} input.`;
  // A model without one of the heads: hide that chart.
  ui.lesions.closest('section')!.hidden = lesion.length === 0;
  ui.locations.closest('section')!.hidden = location.length === 0;
  // A model that takes the body site (trained with fusion): offer its locations.
  if (m.takesSite && ui.site.options.length === 1) {
    for (const l of location) ui.site.add(new Option(l, l));
  }
  ui.siteOption.hidden = !m.takesSite;
}

/** Outlines the centre crop on the preview (what the network sees with tta=center; ten crops cover it all). */
async function showCrop(): Promise<void> {
  const { naturalWidth: w0, naturalHeight: h0 } = ui.preview;
  const center = ui.tta.value === 'center';
  ui.crop.hidden = ui.cropNote.hidden = !(center && photo && w0 > 0);
  if (ui.crop.hidden) return;
  const prep = (await modelInfo().catch(() => null))?.preprocessing;
  if (!prep) return;
  const { width, height } = shorterSideSize(w0, h0, prep.resizeShorter);
  if (width < prep.size || height < prep.size) return;
  const box = centerBox(width, height, prep.size);
  const pct = (v: number, of: number) => `${((100 * v) / of).toFixed(3)}%`;
  Object.assign(ui.crop.style, {
    left: pct(box.x, width),
    top: pct(box.y, height),
    width: pct(box.size, width),
    height: pct(box.size, height),
  });
}

// ---------------------------------------------------------------- Grad-CAM on click

/** Makes each bar of `list` a toggle button that shows its label's map over the photo. */
function explainable(list: HTMLOListElement, head: Head): void {
  for (const li of list.querySelectorAll<HTMLLIElement>('li.bar')) {
    li.classList.add('explainable');
    li.dataset.head = head;
    li.tabIndex = 0;
    li.setAttribute('role', 'button');
    li.setAttribute('aria-pressed', 'false');
    li.title = `Show where the model looked for ${li.dataset.label}`;
  }
}

for (const list of [ui.lesions, ui.locations]) {
  list.addEventListener('click', (e) => {
    const li = (e.target as HTMLElement).closest<HTMLLIElement>('li.bar.explainable');
    if (li) void toggleMap(li);
  });
  list.addEventListener('keydown', (e) => {
    const li = (e.target as HTMLElement).closest<HTMLLIElement>('li.bar.explainable');
    if (li && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      void toggleMap(li);
    }
  });
}

async function toggleMap(li: HTMLLIElement): Promise<void> {
  const head = li.dataset.head as Head,
    label = li.dataset.label!;
  if (shownMap && shownMap.head === head && shownMap.label === label) {
    hideMap();
    return;
  }
  const file = photo;
  const id = runId;
  if (!file || ui.results.dataset.state !== 'done') return;
  shownMap = { head, label };
  pressed(li);
  ui.camNote.hidden = false;
  ui.camNote.textContent = `Finding where the model looked for ${label}…`;
  const engine = ui.results.dataset.engine;
  try {
    if (!explanation || explanation.run !== id) {
      const tta = (ui.results.dataset.tta ?? 'center') as Tta;
      // the maps of the prediction shown: the same body site
      const site = ui.results.dataset.site ?? '';
      const maps =
        engine === 'browser'
          ? modelInfo()
              .then((m) => loadBrowserModel(m, () => {}))
              .then((bm) => bm.explain(file, (m) => (ui.camNote.textContent = m), site))
          : explainOnServer(file, tta, site);
      explanation = { run: id, maps };
      maps.catch(() => explanation?.maps === maps && (explanation = null));
    }
    const e = await explanation.maps;
    // a later click, photo or run replaced this one
    if (id !== runId || shownMap?.head !== head || shownMap.label !== label) return;
    const m = labelMap(e, head, label);
    if (!m) throw new PageError(`No map for ${label}.`);
    drawMap(ui.cam, e, m, ui.preview.naturalWidth || e.view.width, ui.preview.naturalHeight || e.view.height);
    ui.cam.hidden = false;
    ui.cam.dataset.head = head;
    ui.cam.dataset.label = label;
    ui.cam.dataset.engine = engine ?? '';
    ui.cam.dataset.max = String(m.max);
    ui.drop.classList.add('has-map');
    ui.camNote.textContent =
      m.max > 0
        ? `Heat map: where the model looked for ${label} (${head === 'lesion' ? 'lesion type' : 'body location'}; Grad-CAM on the centre crop, red = most). Click the bar again to hide it.`
        : `No part of the centre crop raises the score of ${label}: its map is empty.`;
  } catch (err) {
    if (id !== runId || shownMap?.label !== label) return;
    hideMap();
    showError(err);
  }
}

function pressed(li: HTMLLIElement | null): void {
  for (const b of document.querySelectorAll<HTMLLIElement>('li.bar.explainable'))
    b.setAttribute('aria-pressed', String(b === li));
}

function hideMap(): void {
  shownMap = null;
  pressed(null);
  ui.cam.hidden = true;
  delete ui.cam.dataset.label;
  ui.drop.classList.remove('has-map');
  ui.camNote.hidden = true;
  ui.camNote.textContent = '';
}

/** Milliseconds for people; a no-break space keeps the number with its unit. */
const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(1)}\u00a0s` : `${Math.round(v)}\u00a0ms`);
