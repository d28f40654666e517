import {
  BASELINE_NAMES,
  type LesionEval,
  type MetricValues,
  type ModelName,
  type StudyResults,
} from '../../eval/studyResults.ts';

/**
 * Table 1 of Liao & Luo for a study: lesion AP per class, mAP-class and mAP-image of the
 * lesion-only model, the MTL model and their max-ensemble; plus the location table (top-1, top-3 of
 * location-only vs MTL). Both tables end with the two baselines, linear and prior (src/eval/baselines.ts).
 * One data model (`table1`) feeds the Markdown, plain-text and HTML forms.
 */

/** Decimals shown for AP and accuracy; "best in row" is decided on the shown value, so shown ties are all bold. */
export const DECIMALS = 3;

export interface Column {
  model: ModelName;
  title: string;
}

export const LESION_COLUMNS: Column[] = [
  { model: 'lesion', title: 'Lesion-only' },
  { model: 'mtl', title: 'MTL' },
  { model: 'ensemble', title: 'Ensemble' },
  { model: 'linear', title: 'Linear' },
  { model: 'prior', title: 'Prior' },
  { model: 'site-prior', title: 'Site prior' },
];
export const LOCATION_COLUMNS: Column[] = [
  { model: 'location', title: 'Location-only' },
  { model: 'mtl', title: 'MTL' },
  { model: 'linear', title: 'Linear' },
  { model: 'prior', title: 'Prior' },
];

export const MODEL_TITLES: Record<ModelName, string> = {
  lesion: 'lesion-only',
  location: 'location-only',
  mtl: 'MTL',
  ensemble: 'ensemble',
  prior: 'prior (baseline)',
  'site-prior': 'site prior (baseline)',
  linear: 'linear (baseline)',
  'mtl-uw': 'MTL, uncertainty weights',
  'mtl-tuned': 'MTL, tuned weight',
  fusion: 'fusion, site given',
  'fusion-nosite': 'fusion, site unknown',
  'lesion-site': 'lesion-only + site log-odds',
};

/** Columns of the models beyond the paper's (issue 9), after MTL, where the study has them. */
const VARIANT_COLUMNS: Column[] = [
  { model: 'mtl-uw', title: 'MTL-UW' },
  { model: 'mtl-tuned', title: 'MTL-tuned' },
  { model: 'fusion', title: 'Fusion (site)' },
  { model: 'fusion-nosite', title: 'Fusion (no site)' },
  { model: 'lesion-site', title: 'Lesion-only + site' },
];

/** The columns of a study's tables: the paper's models, the variants it ran, then the baselines (those it has). */
function columnsOf(r: StudyResults, base: Column[]): Column[] {
  const variants = VARIANT_COLUMNS.filter((c) => r.models[c.model]);
  const at = base.findIndex((c) => c.model === 'mtl') + 1;
  return [...base.slice(0, at), ...variants, ...base.slice(at).filter((c) => r.models[c.model])];
}

/** What the baselines are, in one sentence each (table notes and the report). */
export const BASELINE_NOTES = {
  prior:
    "Prior (baseline): every test image gets the training part's label frequencies (share of the training images with lesion labels that carry each label; share of each location), so its AP is the test positive rate of the label and its top-1 the test share of the training part's commonest location.",
  'site-prior':
    "Site prior (baseline): each test image gets the training part's lesion label rates at its own body site (the share of the training images from that site, with lesion labels, that carry each label, shrunk towards the label's overall share by 10 pseudo-images): what the site alone tells about the lesion, with no pixel looked at. Lesion head only.",
  linear:
    "Linear (baseline): L2-regularised logistic regression (one-vs-rest per lesion label, softmax over locations) on the pooled features of the ten test crops from the study's trunk as initialised (the ImageNet ResNet-50 unless the config names another; never a fine-tuned one), trained on all ten crops of each training image and standardised with the training part's statistics, a test image scored by the mean of its crops' probabilities; lambda chosen per head on the training part's validation groups.",
} as const;

export interface Cell {
  /** Out-of-fold pooled value; null where undefined (no positive image, or model skipped throughout). */
  pooled: number | null;
  /** Per-fold mean, std (absent from < 2 folds) and the number of folds behind them. */
  mean?: number;
  std?: number;
  n: number;
  /** Best pooled value in its row (on the shown decimals). */
  best: boolean;
  /** Best per-fold mean in its row. */
  bestMean: boolean;
}

export interface Row {
  label: string;
  /** Images with this lesion label (all folds' test images together); null for summary rows. */
  positives: number | null;
  cells: Cell[];
}

export interface Table {
  columns: Column[];
  rows: Row[];
}

export interface Table1 {
  k: number;
  /** One row per lesion label, then mAP-class and mAP-image. */
  lesion: Table;
  /** Index in lesion.rows of the first summary row (mAP-class). */
  summaryStart: number;
  /** top-1, top-3. */
  location: Table;
  /** Footnotes: what n/a and fold counts mean, skipped models. */
  notes: string[];
}

type Metric = 'mapClass' | 'mapImage' | 'top1' | 'top3';

export function table1(r: StudyResults): Table1 {
  const k = r.folds;
  const lesionColumns = columnsOf(r, LESION_COLUMNS);
  const locationColumns = columnsOf(r, LOCATION_COLUMNS);
  const lesionRows: Row[] = r.lesionLabels.map((label) => ({
    label,
    positives: positivesOf(r, label),
    cells: lesionColumns.map((c) =>
      cell(
        r,
        c.model,
        (ev) => (ev as LesionEval).ap?.[label],
        (v) => v.ap?.[label],
      ),
    ),
  }));
  const summary = (label: string, key: Metric): Row => ({
    label,
    positives: null,
    cells: lesionColumns.map((c) =>
      cell(
        r,
        c.model,
        (ev) => numberOrUndefined(ev[key]),
        (v) => v[key],
      ),
    ),
  });
  const lesion = {
    columns: lesionColumns,
    rows: [...lesionRows, summary('mAP-class', 'mapClass'), summary('mAP-image', 'mapImage')],
  };
  const locationRow = (label: string, key: Metric): Row => ({
    label,
    positives: null,
    cells: locationColumns.map((c) =>
      cell(
        r,
        c.model,
        (ev) => numberOrUndefined(ev[key]),
        (v) => v[key],
      ),
    ),
  });
  const location = { columns: locationColumns, rows: [locationRow('top-1', 'top1'), locationRow('top-3', 'top3')] };
  for (const t of [lesion, location]) t.rows.forEach(markBest);
  return { k, lesion, summaryStart: lesionRows.length, location, notes: notes(r, lesionRows) };
}

function numberOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function cell(
  r: StudyResults,
  model: ModelName,
  pooledOf: (ev: Record<string, unknown>) => number | undefined,
  summaryOf: (v: MetricValues) => number | undefined,
): Cell {
  const m = r.models[model]!;
  const pooled = m.pooled ? (pooledOf(m.pooled as Record<string, unknown>) ?? null) : null;
  return {
    pooled,
    mean: summaryOf(m.mean),
    std: summaryOf(m.std),
    n: summaryOf(m.n) ?? 0,
    best: false,
    bestMean: false,
  };
}

/** Bold the highest shown value of a row, pooled and mean separately; nothing with fewer than 2 values. */
function markBest(row: Row): void {
  const mark = (get: (c: Cell) => number | null | undefined, set: (c: Cell) => void) => {
    const shown = row.cells.map((c) => {
      const v = get(c);
      return v === null || v === undefined ? null : Number(v.toFixed(DECIMALS));
    });
    const present = shown.filter((v): v is number => v !== null);
    if (present.length < 2) return;
    const top = Math.max(...present);
    row.cells.forEach((c, i) => shown[i] === top && set(c));
  };
  mark(
    (c) => c.pooled,
    (c) => (c.best = true),
  );
  mark(
    (c) => c.mean,
    (c) => (c.bestMean = true),
  );
}

/** Images with the label over all test folds: from a pooled evaluation, else the manifest statistics. */
function positivesOf(r: StudyResults, label: string): number | null {
  for (const name of ['lesion', 'mtl', 'ensemble'] as const) {
    const p = r.models[name].pooled?.positives.lesion?.[label];
    if (p !== undefined) return p;
  }
  return r.dataset.stats.lesions.find((l) => l.label === label)?.count ?? null;
}

function notes(r: StudyResults, rows: Row[]): string[] {
  const out = [
    `Pooled: AP computed once over all ${r.dataset.stats.images} out-of-fold scores (each image scored by the fold model that did not train on it). ` +
      `Per fold: mean ± sample std over the ${r.folds} folds; "(n)" marks a value over fewer folds. Bold: best in the row.`,
  ];
  const undefinedAp = rows.filter((row) => row.cells.every((c) => c.pooled === null)).map((row) => row.label);
  if (undefinedAp.length)
    out.push(
      `n/a: no positive test image, so AP is undefined and the label is not averaged: ${undefinedAp.join(', ')}.`,
    );
  const partial = rows.filter((row) => row.cells.some((c) => c.n > 0 && c.n < r.folds)).map((row) => row.label);
  if (partial.length)
    out.push(
      `Some folds have no positive test image of ${partial.join(', ')}; their per-fold means are over fewer folds.`,
    );
  out.push(BASELINE_NOTES.linear + ` Lambdas per fold (lesion/location): ${lambdaText(r)}.`, BASELINE_NOTES.prior);
  if (r.models['site-prior']) out.push(BASELINE_NOTES['site-prior']);
  for (const s of r.skipped)
    out.push(
      `${MODEL_TITLES[s.model]} was not ${(BASELINE_NAMES as readonly ModelName[]).includes(s.model) ? 'fitted' : 'trained'} in fold ${s.fold}: ${s.reason}.`,
    );
  return out;
}

/** "0.1/0.3, 1/0.3, -, ..." : the linear baseline's chosen lambdas, fold by fold. */
export function lambdaText(r: StudyResults): string {
  return r.models.linear.choices.map((c) => (c ? `${c.lesionLambda}/${c.locationLambda}` : '–')).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Text forms

export function formatValue(v: number | null | undefined): string {
  return v === null || v === undefined ? 'n/a' : v.toFixed(DECIMALS);
}

/** "0.812 ± 0.021", "0.812 ± 0.021 (2)" when over fewer than k folds, "0.812 (1)" from one fold. */
export function formatMeanStd(c: Cell, k: number): string {
  if (c.mean === undefined) return 'n/a';
  const sd = c.std === undefined ? '' : ` ± ${c.std.toFixed(DECIMALS)}`;
  return `${c.mean.toFixed(DECIMALS)}${sd}${c.n < k ? ` (${c.n})` : ''}`;
}

type Align = 'left' | 'right';
/** How a best value is marked, and how others are padded so digits stay in line with it. */
interface Style {
  bold: (s: string) => string;
  plain: (s: string) => string;
}
const MARKDOWN: Style = { bold: (s) => `**${s}**`, plain: (s) => `${s}  ` };
const TEXT: Style = { bold: (s) => `${s}*`, plain: (s) => `${s} ` };
interface Grid {
  header: string[];
  align: Align[];
  rows: string[][];
}

function lesionGrid(t: Table1, which: 'pooled' | 'mean', style: Style): Grid {
  return {
    header: ['Lesion', 'Positives', ...t.lesion.columns.map((c) => c.title)],
    align: ['left', 'right', ...t.lesion.columns.map((): Align => 'right')],
    rows: t.lesion.rows.map((row, i) => [
      i >= t.summaryStart && style === MARKDOWN ? style.bold(row.label) : row.label,
      row.positives === null ? '' : String(row.positives),
      ...row.cells.map((c) => cellText(c, which, t.k, style)),
    ]),
  };
}

function locationGrid(t: Table1, style: Style): Grid {
  return {
    header: ['Location', ...t.location.columns.flatMap((c) => [`${c.title} pooled`, `${c.title} per fold`])],
    align: ['left', ...t.location.columns.flatMap((): Align[] => ['right', 'right'])],
    rows: t.location.rows.map((row) => [
      row.label,
      ...row.cells.flatMap((c) => [cellText(c, 'pooled', t.k, style), cellText(c, 'mean', t.k, style)]),
    ]),
  };
}

function cellText(c: Cell, which: 'pooled' | 'mean', k: number, style: Style): string {
  const text = which === 'pooled' ? formatValue(c.pooled) : formatMeanStd(c, k);
  return (which === 'pooled' ? c.best : c.bestMean) ? style.bold(text) : style.plain(text);
}

/** A Markdown pipe table padded to column width, so it also reads well as plain text. */
function markdownTable(g: Grid): string[] {
  const widths = g.header.map((h, j) => Math.max(3, h.length, ...g.rows.map((r) => r[j].length)));
  const pad = (s: string, j: number) => (g.align[j] === 'right' ? s.padStart(widths[j]) : s.padEnd(widths[j]));
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = `|${widths.map((w, j) => (g.align[j] === 'right' ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [line(g.header), rule, ...g.rows.map(line)];
}

/** Columns separated by two spaces, a dashed rule under the header. */
function textTable(g: Grid): string[] {
  const widths = g.header.map((h, j) => Math.max(h.length, ...g.rows.map((r) => r[j].length)));
  const pad = (s: string, j: number) => (g.align[j] === 'right' ? s.padStart(widths[j]) : s.padEnd(widths[j]));
  const line = (cells: string[]) => cells.map(pad).join('  ').trimEnd();
  return [line(g.header), widths.map((w) => '-'.repeat(w)).join('  '), ...g.rows.map(line)];
}

/** table1.md: Table 1 (pooled, then per-fold mean ± std) and the location table, with footnotes. */
export function table1Markdown(r: StudyResults, t: Table1 = table1(r)): string {
  return [
    `# Table 1: lesion AP, ${t.k}-fold cross-validation`,
    '',
    ...(r.onlyFolds ? [`**${partialLabel(r)}**`, ''] : []),
    `Manifest \`${r.dataset.manifest}\`: ${r.dataset.stats.images} images, ${r.lesionLabels.length} lesion labels, ${r.locationLabels.length} locations.`,
    '',
    '## AP per class, pooled out-of-fold',
    '',
    ...markdownTable(lesionGrid(t, 'pooled', MARKDOWN)),
    '',
    `## AP per class, per-fold mean ± std (${t.k} folds)`,
    '',
    ...markdownTable(lesionGrid(t, 'mean', MARKDOWN)),
    '',
    '## Body location accuracy',
    '',
    ...markdownTable(locationGrid(t, MARKDOWN)),
    '',
    ...t.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

/** The same tables for a terminal: no Markdown syntax, the best value in a row marked with '*'. */
/** The label of a partial study (--only-folds), or ''. */
export function partialLabel(r: StudyResults): string {
  return r.onlyFolds ? `PARTIAL STUDY: fold(s) ${r.onlyFolds.join(', ')} of ${r.folds} only` : '';
}

export function formatTable1(r: StudyResults, t: Table1 = table1(r)): string[] {
  return [
    ...(r.onlyFolds ? [partialLabel(r), ''] : []),
    `Table 1: lesion AP, pooled out-of-fold (${t.k} folds)`,
    ...textTable(lesionGrid(t, 'pooled', TEXT)),
    '',
    `Table 1: lesion AP, per-fold mean ± std`,
    ...textTable(lesionGrid(t, 'mean', TEXT)),
    '',
    'Body location accuracy',
    ...textTable(locationGrid(t, TEXT)),
    '',
    '* best in the row',
    ...t.notes,
  ];
}
