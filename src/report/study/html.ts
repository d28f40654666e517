import { DEFAULT_LAMBDA, LAMBDA_GRID, PATIENCE } from '../../eval/baselineGrid.ts';
import { FIGURE3_COLORS } from './figure3.ts';
import {
  MODEL_NAMES,
  type ModelName,
  type PairedMetric,
  type PairedResult,
  type StudyResults,
  type VersusLesion,
} from '../../eval/studyResults.ts';
import {
  BASELINE_NOTES,
  formatMeanStd,
  formatValue,
  MODEL_TITLES,
  partialLabel,
  table1,
  type Cell,
  type Table,
  type Table1,
} from './table1.ts';

/**
 * report.html: one self-contained page (inline SVG figures, inline CSS, no script, no external
 * URL) with the dataset, Figure 1, Table 1 (with the prior and linear baselines), the baselines'
 * lambdas, Figure 3, the paired MTL - lesion-only differences and those against the linear baseline,
 * skipped models, timing and the exact command and config. Every text from the results file is
 * HTML-escaped: labels, paths and the command are user input.
 */

export interface ReportFigures {
  /** Figure 1 SVG text, or null when the manifest has no lesion label to plot. */
  figure1: string | null;
  /** Figure 3 SVG text, or null when no model has location results. */
  figure3: string | null;
  /** Reliability diagrams before/after calibration (calibrationFigures.ts), or null / absent without them. */
  reliability?: string | null;
  /** The location confusion matrices, or null / absent without a location head. */
  confusion?: string | null;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * Renames the ids an SVG defines (and its references to them) to `<prefix>-<n>` in order of
 * appearance: two inline SVGs on one page cannot resolve each other's gradients or clip paths, and
 * vega's process-wide id counter (gradient_0, gradient_1, ...) does not make the page differ from
 * one rendering to the next. The figure is drawn `scale` times its vega size (its text is small
 * next to the page's) and shrinks with the page through its viewBox.
 */
export function inlineSvg(svg: string, prefix: string, scale = FIGURE_SCALE): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) if (!ids.has(m[1])) ids.set(m[1], `${prefix}-${ids.size}`);
  const rename = (id: string) => ids.get(id) ?? id;
  return svg
    .replace(/<\?xml[^>]*>\s*/, '')
    .replace(/\sid="([^"]+)"/g, (_, id) => ` id="${rename(id)}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${rename(id)})`)
    .replace(/href="#([^"]+)"/g, (_, id) => `href="#${rename(id)}"`)
    .replace(
      /^<svg([^>]*?)\swidth="([\d.]+)"\sheight="([\d.]+)"/,
      (_, before, w, h) =>
        `<svg${before} width="${Math.round(Number(w) * scale)}" height="${Math.round(Number(h) * scale)}" style="max-width:100%;height:auto"`,
    );
}

/** A signed difference: "+0.0150", "-0.0298" (4 decimals: mAP differences are often below 0.01). */
export function formatSigned(x: number): string {
  const s = x.toFixed(4);
  return x >= 0 && !s.startsWith('-') ? `+${s}` : s;
}

/** A paired difference and its interval: "+0.0074 [-0.0090, +0.0238]". */
function formatMeanInterval(p: PairedResult): string {
  return `${formatSigned(p.mean)} [${formatSigned(p.ci[0])}, ${formatSigned(p.ci[1])}]`;
}

export function formatSeconds(s: number): string {
  if (s < 90) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 90) return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Figures' vega text is 11-13 px against the page's 16 px body. */
const FIGURE_SCALE = 1.2;

const METRIC_TITLES: Record<PairedMetric, string> = {
  mapClass: 'mAP-class',
  mapImage: 'mAP-image',
  top1: 'top-1',
  top3: 'top-3',
};

/** How a model is named in a sentence ("MTL", "the lesion-only model", "the linear baseline"). */
const SENTENCE_NAMES: Record<ModelName, string> = {
  lesion: 'the lesion-only model',
  location: 'the location-only model',
  mtl: 'MTL',
  ensemble: 'the ensemble',
  prior: 'the prior baseline',
  'site-prior': 'the site prior baseline',
  linear: 'the linear baseline',
  'mtl-uw': 'MTL with uncertainty weighting',
  'mtl-tuned': 'MTL with the tuned location weight',
  fusion: 'the fusion model given the site',
  'fusion-nosite': 'the fusion model without the site',
  'lesion-site': 'the lesion-only model shifted by the site log-odds',
};
/** Short names for the paired table ("MTL − lesion-only"). */
const SHORT_NAMES: Record<ModelName, string> = {
  lesion: 'lesion-only',
  location: 'location-only',
  mtl: 'MTL',
  ensemble: 'ensemble',
  prior: 'prior',
  'site-prior': 'site prior',
  linear: 'linear',
  'mtl-uw': 'MTL-UW',
  'mtl-tuned': 'MTL-tuned',
  fusion: 'fusion (site)',
  'fusion-nosite': 'fusion (no site)',
  'lesion-site': 'lesion-only + site',
};

/** One sentence on what a paired interval of a - b says, without claiming more than k folds allow. */
export function pairedSentence(
  metric: PairedMetric,
  p: PairedResult | null,
  a: ModelName = 'mtl',
  b: ModelName = 'lesion',
): string {
  const name = METRIC_TITLES[metric];
  const [an, bn] = [SENTENCE_NAMES[a], SENTENCE_NAMES[b]];
  if (p === null) return `${name}: not computed, fewer than 2 folds have a ${name} for both ${an} and ${bn}.`;
  const [lo, hi] = p.ci;
  const interval = `The ${Math.round(p.level * 100)}% interval for the ${name} difference ${SHORT_NAMES[a]} − ${SHORT_NAMES[b]}, ${formatSigned(lo)} to ${formatSigned(hi)},`;
  if (lo <= 0 && hi >= 0) {
    return `${interval} includes 0: over these ${p.k} folds the data are consistent with no difference between ${an} and ${bn}.`;
  }
  const side = lo > 0 ? ['lies above 0', 'higher'] : ['lies below 0', 'lower'];
  return `${interval} ${side[0]}: in these ${p.k} folds ${an}'s ${name} was ${side[1]} than ${bn}'s by more than the fold-to-fold spread of the differences.`;
}

export function reportHtml(r: StudyResults, figures: ReportFigures, t: Table1 = table1(r)): string {
  const title = `${r.onlyFolds ? 'PARTIAL ' : ''}Cross-validation study: ${r.dataset.manifest}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>Multi-task skin-lesion classification: ${r.folds}-fold cross-validation</h1>
${r.onlyFolds ? `<p class="lead"><b>${escapeHtml(partialLabel(r))}</b>: pooled figures cover these folds' test parts alone.</p>` : ''}
<p class="lead">${escapeHtml(r.dataset.manifest)} · ${r.dataset.stats.images} images · ${r.folds} folds${r.createdAt ? ` · ${escapeHtml(r.createdAt)}` : ''}</p>
<p>After Liao &amp; Luo, <i>A Deep Multi-Task Learning Approach to Skin Lesion Classification</i> (AAAI-17).
Models: <b>lesion-only</b> (lesion head), <b>location-only</b> (body-location head), <b>MTL</b> (both heads on one trunk),
and the <b>ensemble</b>, the per-label maximum of the lesion-only and MTL lesion scores. The baselines are the floors
they should clear: <b>linear</b>, an L2-regularised logistic regression on the (not fine-tuned) trunk's features, <b>prior</b>,
the training part's label frequencies${r.models['site-prior'] ? ", and <b>site prior</b>, its lesion label rates at the image's body site (what the site alone tells)" : ''} (see <a href="#baselines">Baselines</a>).</p>
</header>
${datasetSection(r)}
${figureSection('figure-1', 'Figure 1', figures.figure1, 'fig1', 'Lesion type vs. body location: the share of the images with each lesion type taken at each location.', 'No image of the manifest has a lesion label, so there is nothing to plot.')}
${table1Section(r, t)}
${baselinesSection(r)}
${selectionSection(r)}
${figureSection('figure-3', 'Figure 3', figures.figure3, 'fig3', 'Body-location top-1 and top-3 accuracy of the location-only model and MTL, next to the linear and prior baselines; whiskers are ±1 sample std over folds.', 'No model has body-location results.')}
${pairedSection(r)}
${locationUseSection(r)}
${calibrationSection(r, figures)}
${skippedSection(r)}
${timingSection(r)}
${reproduceSection(r)}
</main>
</body>
</html>
`;
}

/** ECE / Brier before and after calibration, the further discrimination metrics, reliability diagrams, confusion matrices. */
function calibrationSection(r: StudyResults, figures: ReportFigures): string {
  const f = (x: number | null | undefined) => formatValue(x ?? null);
  type Head = { ece: number; brier: number } | null | undefined;
  const rows: string[] = [];
  for (const model of TRAINED_WITH_VARIANTS.filter((m) => r.models[m])) {
    const after = r.models[model]!.pooled?.calibration as Record<string, Head> | undefined;
    const before = r.beforeCalibration?.[model]?.pooled as Record<string, Head> | null | undefined;
    for (const head of ['lesion', 'location'] as const) {
      const a = after?.[head];
      if (!a) continue;
      const b = before?.[head];
      rows.push(
        `<tr><td>${MODEL_TITLES[model]}</td><td>${head}</td><td class="num">${f(b?.ece)}</td><td class="num">${f(a.ece)}</td><td class="num">${f(b?.brier)}</td><td class="num">${f(a.brier)}</td></tr>`,
      );
    }
  }
  const k = r.folds;
  const cell = (m: ModelName, key: 'meanAuc' | 'balancedAccuracy' | 'macroAuc') => {
    const res = r.models[m]!;
    const pooled = (res.pooled as Record<string, unknown> | null)?.[key];
    return `<td class="num">${typeof pooled === 'number' ? f(pooled) : 'n/a'}</td><td class="num">${formatMeanStd({ mean: res.mean[key], std: res.std[key], n: res.n[key] ?? 0 } as Cell, k)}</td>`;
  };
  const disc = MODEL_NAMES.filter((m) => r.models[m]).map(
    (m) =>
      `<tr><td>${MODEL_TITLES[m]}</td>${cell(m, 'meanAuc')}${cell(m, 'balancedAccuracy')}${cell(m, 'macroAuc')}</tr>`,
  );
  const ops = (['lesion', 'mtl'] as const).filter((m) => r.operatingPoints?.[m]);
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(2));
  const opRows = r.lesionLabels.map(
    (label) =>
      `<tr><td>${escapeHtml(label)}</td>${ops
        .map((m) => {
          const p = r.operatingPoints![m]!.pooled[label];
          return `<td class="num">${pct(p?.sensitivity)}</td><td class="num">${pct(p?.specificity)}</td>`;
        })
        .join('')}</tr>`,
  );
  const opTable = ops.length
    ? `<p>Sensitivity and specificity per lesion label at each fold's model's thresholds (max F1 on its own validation
part; present when p &ge; threshold), the folds' counts summed.</p>
<div class="wide"><table class="results"><thead><tr><th>lesion label</th>${ops.map((m) => `<th class="num">${MODEL_TITLES[m]} sensitivity</th><th class="num">specificity</th>`).join('')}</tr></thead><tbody>${opRows.join('\n')}</tbody></table></div>`
    : '';
  const figure = (svg: string | null | undefined, prefix: string, caption: string) =>
    svg ? `<figure>\n${inlineSvg(svg, prefix)}\n<figcaption>${escapeHtml(caption)}</figcaption>\n</figure>` : '';
  return `<section id="calibration">
<h2>Calibration and discrimination</h2>
<p>Each trained run fits temperature scaling on its own validation groups (never the test part): one temperature for the
location softmax, and for the lesion sigmoids a label's own temperature where the validation part has at least 20
positives and negatives of it, else one shared temperature. The temperatures are folded into the saved model. ECE uses 15
equal-width bins (lesions: every image-label pair; location: the top probability); Brier is the mean squared error
(location: summed over locations). Pooled out-of-fold; "before" is the same runs' scores without the temperatures.</p>
${rows.length ? `<table class="results"><thead><tr><th>model</th><th>head</th><th class="num">ECE before</th><th class="num">ECE after</th><th class="num">Brier before</th><th class="num">Brier after</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>` : '<p class="missing">No calibrated model in this study.</p>'}
${figure(figures.reliability, 'rel', 'Reliability diagrams: per bin the mean predicted probability against the observed frequency, before (grey) and after (orange) calibration.')}
<p>Lesion ROC AUC (mean over labels with positive and negative test images, ties as in scikit-learn), location balanced
accuracy (mean recall over locations; the predicted location is the top score, ties against) and one-vs-rest macro AUC:
pooled out-of-fold, and mean ± std over folds.</p>
<div class="wide"><table class="results"><thead><tr><th>model</th><th class="num">mean AUC (pooled)</th><th class="num">mean AUC (folds)</th><th class="num">balanced accuracy (pooled)</th><th class="num">(folds)</th><th class="num">macro AUC (pooled)</th><th class="num">(folds)</th></tr></thead><tbody>${disc.join('\n')}</tbody></table></div>
${opTable}
${figure(figures.confusion, 'cm', 'Body-location confusion matrices: rows the true location, columns the predicted one.')}
</section>`;
}

function datasetSection(r: StudyResults): string {
  const s = r.dataset.stats;
  const facts: [string, string][] = [
    ['images', String(s.images)],
    ['groups (lesion or patient ids)', String(s.groups)],
    ['lesion labels', String(s.lesions.length)],
    ['body locations', String(s.locations.length)],
    ['images without a lesion label', String(s.imagesWithoutLesion)],
    ['lesion labels per image', s.lesionsPerImage.map((n, k) => `${k}: ${n}`).join(', ')],
  ];
  const counts = (head: string, rows: { label: string; count: number }[]) => `<table class="counts">
<thead><tr><th>${head}</th><th class="num">images</th><th class="num">share</th></tr></thead>
<tbody>${rows.map((c) => `<tr><td>${escapeHtml(c.label)}</td><td class="num">${c.count}</td><td class="num">${((100 * c.count) / Math.max(1, s.images)).toFixed(1)}%</td></tr>`).join('\n')}</tbody>
</table>`;
  return `<section id="dataset">
<h2>Dataset</h2>
<dl class="facts">${facts.map(([k, v]) => `<div><dt>${k}</dt><dd>${escapeHtml(v)}</dd></div>`).join('')}</dl>
<div class="side-by-side">
${counts('lesion label', s.lesions)}
${counts('body location', s.locations)}
</div>
</section>`;
}

function figureSection(
  id: string,
  name: string,
  svg: string | null,
  prefix: string,
  caption: string,
  missing: string,
): string {
  const body = svg === null ? `<p class="missing">${escapeHtml(missing)}</p>` : inlineSvg(svg, prefix);
  return `<section id="${id}">
<h2>${name}</h2>
<figure>
${body}
<figcaption><b>${name}.</b> ${escapeHtml(caption)}</figcaption>
</figure>
</section>`;
}

function table1Section(_r: StudyResults, t: Table1): string {
  return `<section id="table-1">
<h2>Table 1</h2>
<p>Lesion average precision (AP) per class, mAP-class (mean of the class APs) and mAP-image (mean over images of the AP of
ranking that image's labels). <b>Pooled</b>: computed once over all out-of-fold scores. <b>Per fold</b>: mean ± sample std over the folds.
Bold: best in the row. <b>Linear</b> and <b>Prior</b> are baselines.</p>
<div class="wide">${lesionTableHtml(t)}</div>
<h3>Body location accuracy</h3>
<div class="wide">${locationTableHtml(t.location, t.k)}</div>
<ul class="notes">${t.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n')}</ul>
</section>`;
}

function td(text: string, bold: boolean, cls = 'num'): string {
  return `<td class="${cls}">${bold ? `<b>${escapeHtml(text)}</b>` : escapeHtml(text)}</td>`;
}

function lesionTableHtml(t: Table1): string {
  const cols = t.lesion.columns;
  const head = `<thead>
<tr><th rowspan="2">lesion label</th><th rowspan="2" class="num">positives</th><th colspan="${cols.length}" class="group">AP, pooled out-of-fold</th><th colspan="${cols.length}" class="group">AP, per fold (mean ± std)</th></tr>
<tr>${cols.map((c) => `<th class="num">${c.title}</th>`).join('')}${cols.map((c) => `<th class="num">${c.title}</th>`).join('')}</tr>
</thead>`;
  const rows = t.lesion.rows.map((row, i) => {
    const cls = i === t.summaryStart ? ' class="summary first"' : i > t.summaryStart ? ' class="summary"' : '';
    const cells = [
      ...row.cells.map((c) => td(formatValue(c.pooled), c.best)),
      ...row.cells.map((c, j) => td(formatMeanStd(c, t.k), c.bestMean, j === 0 ? 'num split' : 'num')),
    ];
    return `<tr${cls}><th scope="row">${escapeHtml(row.label)}</th><td class="num">${row.positives ?? ''}</td>${cells.join('')}</tr>`;
  });
  return `<table class="results">${head}<tbody>${rows.join('\n')}</tbody></table>`;
}

function locationTableHtml(table: Table, k: number): string {
  const cols = table.columns;
  const head = `<thead>
<tr><th rowspan="2">accuracy</th><th colspan="${cols.length}" class="group">pooled out-of-fold</th><th colspan="${cols.length}" class="group">per fold (mean ± std)</th></tr>
<tr>${cols.map((c) => `<th class="num">${c.title}</th>`).join('')}${cols.map((c) => `<th class="num">${c.title}</th>`).join('')}</tr>
</thead>`;
  const rows = table.rows.map((row) => {
    const cells = [
      ...row.cells.map((c: Cell) => td(formatValue(c.pooled), c.best)),
      ...row.cells.map((c, j) => td(formatMeanStd(c, k), c.bestMean, j === 0 ? 'num split' : 'num')),
    ];
    return `<tr><th scope="row">${escapeHtml(row.label)}</th>${cells.join('')}</tr>`;
  });
  return `<table class="results">${head}<tbody>${rows.join('\n')}</tbody></table>`;
}

/** The trained models, the variants included, in report order. */
const TRAINED_WITH_VARIANTS = [
  'lesion',
  'location',
  'mtl',
  'mtl-uw',
  'mtl-tuned',
  'fusion',
  'fusion-nosite',
] as const satisfies readonly ModelName[];

/**
 * Issue 9: which way of using the body location helps which lesion labels. Per lesion label the pooled AP change of
 * every model against lesion-only, and the task weights each MTL run used per fold. Absent for a study without
 * such models.
 */
function locationUseSection(r: StudyResults): string {
  const vs = Object.entries(r.versusLesion ?? {}).filter(([, v]) => v) as [ModelName, VersusLesion][];
  const weights = Object.entries(r.taskWeights ?? {}).filter(([, w]) => w?.some((x) => x)) as [
    ModelName,
    NonNullable<NonNullable<StudyResults['taskWeights']>[ModelName]>,
  ][];
  if (!vs.some(([m]) => m !== 'mtl' && m !== 'ensemble') && !weights.some(([m]) => m !== 'mtl')) return '';
  const change = (x: number | null | undefined) =>
    x === null || x === undefined
      ? '<td class="num">n/a</td>'
      : `<td class="num${x > 0 ? ' gain' : x < 0 ? ' loss' : ''}">${formatSigned(x)}</td>`;
  const rows = r.lesionLabels.map(
    (l) => `<tr><td>${escapeHtml(l)}</td>${vs.map(([, v]) => change(v.apChange[l])).join('')}</tr>`,
  );
  const summary = (metric: 'mapClass' | 'mapImage') =>
    `<tr class="group-start"><th scope="row">${METRIC_TITLES[metric]} (fold mean, ${Math.round((vs[0]?.[1][metric]?.level ?? 0.95) * 100)}% CI)</th>${vs
      .map(([, v]) => {
        const p = v[metric];
        return `<td class="num">${p ? formatMeanInterval(p) : 'n/a'}</td>`;
      })
      .join('')}</tr>`;
  const gains = vs.map(([m, v]) => {
    const up = Object.entries(v.apChange).filter(([, x]) => x !== null && x > 0).length;
    const down = Object.entries(v.apChange).filter(([, x]) => x !== null && x < 0).length;
    return `${SHORT_NAMES[m]}: ${up} labels gain, ${down} lose`;
  });
  const fmt = (x: number) => (Math.abs(x) >= 0.01 ? x.toFixed(3) : x.toPrecision(2));
  const weightRows = weights.map(
    ([m, w]) =>
      `<tr><th scope="row">${MODEL_TITLES[m]}</th>${w.map((x) => `<td class="num">${x ? `${fmt(x.lesion)} / ${fmt(x.location)}${x.kind === 'tuned' && x.candidates ? ` <span class="muted">(of ${x.candidates.map((c) => c.location).join(', ')})</span>` : ''}` : '–'}</td>`).join('')}</tr>`,
  );
  const folds = Array.from({ length: r.folds }, (_, f) => f);
  return `<section id="location-use">
<h2>Using the body location: change against lesion-only</h2>
<p>Per lesion label, each model's pooled out-of-fold AP minus the lesion-only model's (positive: the model is better on
that label); below, the paired fold differences of mAP-class and mAP-image with their interval. ${escapeHtml(gains.join('; '))}.</p>
<p>${escapeHtml(locationVerdict(vs))}</p>
${siteAloneNote(r)}
<div class="wide"><table class="results"><thead><tr><th>lesion label</th>${vs.map(([m]) => `<th class="num">${escapeHtml(SHORT_NAMES[m])} − lesion-only</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n')}
${summary('mapClass')}
${summary('mapImage')}</tbody></table></div>
${
  weightRows.length
    ? `<p>Task weights (lesion / location) of each MTL run, per fold: as configured (MTL), learned as exp(−s) by uncertainty weighting (MTL-UW; Kendall et al. 2018), or chosen from the grid on the run's validation groups by lesion mAP-class (MTL-tuned).</p>
<table class="results"><thead><tr><th>model</th>${folds.map((f) => `<th class="num">fold ${f}</th>`).join('')}</tr></thead><tbody>${weightRows.join('\n')}</tbody></table>`
    : ''
}
</section>`;
}

/**
 * The plain answer to issue 9's question: which ways of using the body location beat lesion-only on mAP-class with
 * the paired interval above 0, or, when none does, the largest mean difference and its interval. The ensemble is
 * left out: it combines models rather than using the site.
 */
export function locationVerdict(vs: readonly (readonly [ModelName, VersusLesion])[]): string {
  const rows = vs.flatMap(([m, v]) => (m !== 'ensemble' && v.mapClass ? [[m, v.mapClass] as const] : []));
  if (!rows.length) return 'No paired mAP-class difference against lesion-only could be computed (fewer than 2 folds).';
  const level = Math.round(rows[0][1].level * 100);
  const said = ([m, p]: (typeof rows)[number]) => `${SHORT_NAMES[m]} ${formatMeanInterval(p)}`;
  const above = rows.filter(([, p]) => p.ci[0] > 0);
  const below = rows.filter(([, p]) => p.ci[1] < 0);
  const lower = below.length ? ` Below 0: ${below.map(said).join('; ')}.` : '';
  if (above.length) {
    return `Beating lesion-only on mAP-class with the ${level}% interval of the paired difference above 0: ${above.map(said).join('; ')}.${lower}`;
  }
  const best = rows.reduce((a, b) => (b[1].mean > a[1].mean ? b : a));
  return `No way of using the body location beats lesion-only on mAP-class with the ${level}% interval of the paired difference above 0; the largest mean difference is ${said(best)}.${lower}`;
}

/** What the site alone tells (the site prior baseline), next to the prior and lesion-only: the room a known site has. */
function siteAloneNote(r: StudyResults): string {
  const at = (m: ModelName): number | null | undefined =>
    (r.models[m]?.pooled as { mapClass?: number | null } | null | undefined)?.mapClass;
  const site = at('site-prior');
  if (typeof site !== 'number') return '';
  const n = (x: number | null | undefined) => (typeof x === 'number' ? x.toFixed(3) : 'n/a');
  return `<p>The site alone (the site prior baseline: the training part's label rates at the image's site, no pixel looked at) scores pooled mAP-class ${n(site)}, against ${n(at('prior'))} for the prior and ${n(at('lesion'))} for the lesion-only model.</p>`;
}

interface PairRow {
  a: ModelName;
  b: ModelName;
  metric: PairedMetric;
  p: PairedResult | null;
}

/** MTL − lesion-only (r.paired), each other model − lesion-only, then the comparisons against the linear baseline. */
function pairRows(r: StudyResults): PairRow[] {
  const rows: PairRow[] = (['mapClass', 'mapImage'] as const).map((metric) => ({
    a: 'mtl',
    b: 'lesion',
    metric,
    p: r.paired[metric],
  }));
  for (const [a, v] of Object.entries(r.versusLesion ?? {}) as [ModelName, VersusLesion | undefined][]) {
    if (a === 'mtl' || !v) continue;
    for (const metric of ['mapClass', 'mapImage'] as const) rows.push({ a, b: 'lesion', metric, p: v[metric] });
  }
  for (const c of r.comparisons) {
    for (const metric of ['mapClass', 'mapImage', 'top1', 'top3'] as const) {
      const p = c[metric];
      if (p !== undefined) rows.push({ a: c.a, b: c.b, metric, p });
    }
  }
  return rows;
}

function pairedSection(r: StudyResults): string {
  const folds = Array.from({ length: r.folds }, (_, f) => f);
  const rows = pairRows(r);
  const row = ({ a, b, metric, p }: PairRow, first: boolean) => {
    const perFold = folds.map((f) => {
      const i = p?.folds.indexOf(f) ?? -1;
      return `<td class="num">${p && i >= 0 ? formatSigned(p.differences[i]) : '–'}</td>`;
    });
    const summary = p
      ? `<td class="num split"><b>${formatSigned(p.mean)}</b></td><td class="num">${formatSigned(p.ci[0])} to ${formatSigned(p.ci[1])}</td>`
      : '<td class="num split">–</td><td class="num">–</td>';
    const pair = first ? `${SHORT_NAMES[a]} − ${SHORT_NAMES[b]}` : '';
    return `<tr${first ? ' class="group-start"' : ''}><td>${pair}</td><th scope="row">${METRIC_TITLES[metric]}</th>${perFold.join('')}${summary}</tr>`;
  };
  const body = rows.map((x, i) => row(x, i === 0 || rows[i - 1].a !== x.a || rows[i - 1].b !== x.b));
  const level = Math.round((rows.find((x) => x.p)?.p?.level ?? 0.95) * 100);
  const sentences = rows
    .filter((x) => x.a === 'mtl' || (x.b === 'lesion' && x.metric === 'mapClass'))
    .map((x) => `<p>${escapeHtml(pairedSentence(x.metric, x.p, x.a, x.b))}</p>`);
  return `<section id="paired">
<h2>Paired differences, per fold</h2>
<p>MTL − lesion-only, and each trained model − the linear baseline, on the same folds (positive: the first model higher),
their mean and a ${level}% t interval (df = folds − 1), over the folds where both models have the metric.</p>
<div class="wide"><table class="results">
<thead><tr><th>difference</th><th>metric</th>${folds.map((f) => `<th class="num">fold ${f}</th>`).join('')}<th class="num split">mean</th><th class="num">${level}% CI</th></tr></thead>
<tbody>${body.join('\n')}</tbody>
</table></div>
${sentences.join('\n')}
<p class="caveat">The interval treats the folds as independent samples; they share training images, so it is, if anything, too narrow,
and with few folds it is a rough guide rather than a test.</p>
</section>`;
}

/** What the baselines are, and the lambdas the linear one chose in each fold. */
function baselinesSection(r: StudyResults): string {
  const rows = r.models.linear.choices.map((c, f) =>
    c
      ? `<tr><th scope="row">${f}</th><td class="num">${c.lesionLambda}</td><td class="num">${c.locationLambda}</td><td>${c.rule === 'validation' ? `validation (${c.validationImages} image${c.validationImages === 1 ? '' : 's'})` : `default: ${escapeHtml(c.reason ?? '')}`}</td></tr>`
      : `<tr><th scope="row">${f}</th><td class="num">–</td><td class="num">–</td><td>skipped</td></tr>`,
  );
  return `<section id="baselines">
<h2>Baselines</h2>
<p>${escapeHtml(BASELINE_NOTES.linear)} The objective per head is the mean log-loss over the training crops plus
λ/2 ‖W‖² (bias not penalised); λ runs down ${LAMBDA_GRID.join(', ')} until neither head has improved on the validation
groups for ${PATIENCE} steps; lesion λ maximises the validation mAP-class, location λ minimises the validation log-loss
(a tie goes to the larger λ); the heads are then refitted on the whole training part. Without a validation part, λ = ${DEFAULT_LAMBDA}.</p>
<p>${escapeHtml(BASELINE_NOTES.prior)}</p>
${r.models['site-prior'] ? `<p>${escapeHtml(BASELINE_NOTES['site-prior'])}</p>` : ''}
<table class="results"><thead><tr><th>fold</th><th class="num">lesion λ</th><th class="num">location λ</th><th>chosen on</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
</section>`;
}

/** Which epoch each trained model kept, chosen on its validation part (never on the test fold). */
function selectionSection(r: StudyResults): string {
  const sel = r.selection;
  const models = (['lesion', 'location', 'mtl'] as const).filter((m) => sel?.[m]?.some((s) => s !== null));
  if (!sel || !models.length) return '';
  const cell = (s: { epoch: number; epochs: number; metric: string; score: number } | null | undefined) =>
    s
      ? `<td class="num">${s.epoch} / ${s.epochs} <small>(${escapeHtml(s.metric)} ${formatScore(s.metric, s.score)})</small></td>`
      : '<td class="num">–</td>';
  const rows = Array.from(
    { length: r.folds },
    (_, f) => `<tr><th scope="row">${f}</th>${models.map((m) => cell(sel[m]?.[f])).join('')}</tr>`,
  );
  return `<section id="selection">
<h2>Model selection</h2>
<p>Each trained model kept the epoch with the best score on its fold's validation groups (held out of the training
part; the test fold is never looked at): the epoch kept / epochs trained, and the validation score that chose it.</p>
<table class="results"><thead><tr><th>fold</th>${models.map((m) => `<th class="num">${MODEL_TITLES[m]}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
</section>`;
}

/** A selection score as the metric reads: the loss is stored negated (higher is better). */
function formatScore(metric: string, score: number): string {
  return metric === 'loss' ? (-score).toFixed(4) : score.toFixed(3);
}

function skippedSection(r: StudyResults): string {
  const body = r.skipped.length
    ? `<table class="results"><thead><tr><th>model</th><th class="num">fold</th><th>reason</th></tr></thead><tbody>${r.skipped
        .map(
          (s) =>
            `<tr><td>${MODEL_TITLES[s.model]}</td><td class="num">${s.fold}</td><td>${escapeHtml(s.reason)}</td></tr>`,
        )
        .join('\n')}</tbody></table>`
    : '<p>Every model was trained in every fold.</p>';
  return `<section id="skipped">
<h2>Skipped</h2>
${body}
</section>`;
}

function timingSection(r: StudyResults): string {
  const folds = Array.from({ length: r.folds }, (_, f) => f);
  // A unit's training images: the study's images less the fold's test part (the validation groups included).
  const trainingImages = (m: ModelName, f: number) =>
    r.dataset.stats.images - (r.models[m]?.folds[f]?.n ?? r.dataset.stats.images);
  const rows = MODEL_NAMES.filter((m) => r.timing.models[m]).map((m) => {
    const secs = r.timing.models[m]!;
    const total = secs.reduce<number>((a, s) => a + (s ?? 0), 0);
    const images = secs.reduce<number>((a, s, f) => a + (s === null ? 0 : trainingImages(m, f)), 0);
    const perImage = images > 0 && total > 0 ? `${((1000 * total) / images).toFixed(0)} ms` : '–';
    return `<tr><th scope="row">${MODEL_TITLES[m]}</th>${secs.map((s) => `<td class="num">${s === null ? 'skipped' : formatSeconds(s)}</td>`).join('')}<td class="num split">${formatSeconds(total)}</td><td class="num">${perImage}</td></tr>`;
  });
  return `<section id="timing">
<h2>Timing</h2>
<p>Whole study: <b>${formatSeconds(r.timing.totalSeconds)}</b> (wall clock, ${escapeHtml(String(r.config.mode ?? ''))} mode${r.config.mode === 'finetune' ? `, trainable ${escapeHtml(String((r.config.finetune as { trainable?: string } | undefined)?.trainable ?? 'all'))}` : ''}). Per training image: a model/fold's training and test-part evaluation time over the images it trained on (its validation groups included), the mode's cost per image on this machine; a shared cache computed up front (features, activations) is counted in the whole study only.</p>
${rows.length ? `<table class="results"><thead><tr><th>model</th>${folds.map((f) => `<th class="num">fold ${f}</th>`).join('')}<th class="num split">sum</th><th class="num">per training image</th></tr></thead><tbody>${rows.join('\n')}</tbody></table>` : ''}
</section>`;
}

function reproduceSection(r: StudyResults): string {
  return `<section id="reproduce">
<h2>How this was made</h2>
<p>Command:</p>
<pre><code>${escapeHtml(r.command)}</code></pre>
<table class="kv"><tbody>
<tr><th scope="row">manifest</th><td><code>${escapeHtml(r.dataset.manifest)}</code></td></tr>
<tr><th scope="row">manifest hash</th><td><code>${escapeHtml(r.dataset.manifestHash)}</code></td></tr>
<tr><th scope="row">lesion labels scored</th><td>${r.lesionLabels.map((l) => `<code>${escapeHtml(l)}</code>`).join(', ')}</td></tr>
<tr><th scope="row">locations scored</th><td>${r.locationLabels.map((l) => `<code>${escapeHtml(l)}</code>`).join(', ')}</td></tr>
${r.createdAt ? `<tr><th scope="row">finished</th><td>${escapeHtml(r.createdAt)}</td></tr>\n` : ''}</tbody></table>
<p>Resolved configuration:</p>
<pre><code>${escapeHtml(JSON.stringify(r.config, null, 2))}</code></pre>
</section>`;
}

const CSS = `
:root { --ink: #1f2328; --muted: #5b636e; --rule: #d8dde3; --soft: #f5f7f9; --accent: ${FIGURE3_COLORS.MTL}; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
  font: 16px/1.55 "DejaVu Sans", "Helvetica Neue", Arial, system-ui, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 40px 32px 80px; }
h1 { font-size: 28px; line-height: 1.25; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 44px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 26px 0 8px; }
p { margin: 8px 0; max-width: 78ch; }
.lead { color: var(--muted); margin-bottom: 14px; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
pre { background: var(--soft); border: 1px solid var(--rule); border-radius: 6px; padding: 12px 14px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
table { border-collapse: collapse; margin: 10px 0 14px; font-variant-numeric: tabular-nums; font-size: 14px; }
th, td { padding: 5px 12px; text-align: left; vertical-align: top; }
thead th { border-bottom: 1.5px solid var(--ink); font-weight: 600; }
thead th.group { text-align: center; border-bottom: 1px solid var(--rule); color: var(--muted); font-weight: 500; }
tbody tr { border-bottom: 1px solid var(--rule); }
tbody th { font-weight: 500; }
.num { text-align: right; white-space: nowrap; }
td.gain { color: #1a7f37; }
td.loss { color: #b42318; }
.muted { color: #667085; font-size: 0.9em; }
.split { border-left: 1px solid var(--rule); }
tr.summary th, tr.summary td { background: var(--soft); }
tr.summary.first th, tr.summary.first td { border-top: 1.5px solid var(--ink); }
tr.group-start td, tr.group-start th { border-top: 1.5px solid var(--rule); }
table.results tbody tr:last-child { border-bottom: 1.5px solid var(--ink); }
.side-by-side { display: flex; flex-wrap: wrap; gap: 12px 48px; align-items: flex-start; }
.counts { font-size: 13px; }
.counts td, .counts th { padding: 3px 10px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 10px 24px; margin: 12px 0 18px; }
dl.facts div { border-left: 3px solid var(--rule); padding-left: 10px; }
dt { color: var(--muted); font-size: 13px; }
dd { margin: 0; font-size: 18px; font-variant-numeric: tabular-nums; }
figure { margin: 12px 0; }
figcaption { color: var(--muted); font-size: 14px; margin-top: 6px; max-width: 78ch; }
ul.notes { color: var(--muted); font-size: 14px; padding-left: 20px; max-width: 90ch; }
.caveat { color: var(--muted); font-size: 14px; }
.wide { overflow-x: auto; }
.missing { color: var(--muted); font-style: italic; }
table.kv th { color: var(--muted); font-weight: 500; white-space: nowrap; padding-left: 0; }
table.kv td { word-break: break-all; }
`;
