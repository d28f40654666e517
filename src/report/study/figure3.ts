import type { TopLevelSpec } from 'vega-lite';
import type { StudyResults } from '../../eval/studyResults.ts';

/**
 * Figure 3 of Liao & Luo: body-location top-1 and top-3 accuracy of the location-only model and
 * the MTL model, as grouped bars, next to the two baselines (linear and prior). A bar is the mean
 * over the folds, its whisker +-1 sample std over the folds, a dot each fold's value; the number
 * above is the mean.
 */

/**
 * Colours shared by the figure and the HTML legend: a muted blue and an orange for the models, a
 * muted green and a grey for the baselines (distinct in greyscale too).
 */
export const FIGURE3_COLORS = {
  'Location-only': '#8aa6c8',
  MTL: '#d9733b',
  'MTL-UW': '#b5523b',
  'MTL-tuned': '#e8a06e',
  Fusion: '#7d5ba6',
  Linear: '#8fb98b',
  Prior: '#bdbdbd',
} as const;

const SERIES = [
  { model: 'location', title: 'Location-only' },
  { model: 'mtl', title: 'MTL' },
  // the models beyond the paper, where the study ran them (fusion's location head is the same with or without a site)
  { model: 'mtl-uw', title: 'MTL-UW' },
  { model: 'mtl-tuned', title: 'MTL-tuned' },
  { model: 'fusion', title: 'Fusion' },
  { model: 'linear', title: 'Linear' },
  { model: 'prior', title: 'Prior' },
] as const;
const METRICS = [
  { key: 'top1', title: 'top-1' },
  { key: 'top3', title: 'top-3' },
] as const;

interface Bar {
  metric: string;
  model: string;
  mean: number;
  lo: number;
  hi: number;
  n: number;
  /** "2 of 3 folds" under the mean where it is not over every fold. */
  note: string;
}
interface Dot {
  metric: string;
  model: string;
  fold: number;
  value: number;
}

/** The bars and dots the figure draws; empty when no model has location results. */
export function figure3Data(r: StudyResults): { bars: Bar[]; dots: Dot[] } {
  const bars: Bar[] = [];
  const dots: Dot[] = [];
  for (const s of SERIES) {
    const m = r.models[s.model];
    if (!m) continue;
    for (const metric of METRICS) {
      const mean = m.mean[metric.key];
      if (mean === undefined) continue;
      const std = m.std[metric.key] ?? 0;
      const n = m.n[metric.key] ?? 0;
      const note = n < r.folds ? `${n} of ${r.folds} folds` : '';
      bars.push({
        metric: metric.title,
        model: s.title,
        mean,
        lo: Math.max(0, mean - std),
        hi: Math.min(1, mean + std),
        n,
        note,
      });
      m.folds.forEach((ev, fold) => {
        const v = ev?.[metric.key];
        if (typeof v === 'number') dots.push({ metric: metric.title, model: s.title, fold, value: v });
      });
    }
  }
  return { bars, dots };
}

/** The vega-lite spec of Figure 3, or null when there is nothing to draw. */
export function figure3Spec(r: StudyResults): TopLevelSpec | null {
  const { bars, dots } = figure3Data(r);
  if (bars.length === 0) return null;
  const models = SERIES.map((s) => s.title).filter((t) => bars.some((b) => b.model === t));
  const x = {
    field: 'metric',
    type: 'nominal',
    title: null,
    sort: METRICS.map((m) => m.title),
    axis: { labelAngle: 0, labelFontSize: 13, labelPadding: 6 },
  } as const;
  const xOffset = { field: 'model', type: 'nominal', sort: models, scale: { paddingInner: 0.12 } } as const;
  const y = {
    field: 'mean',
    type: 'quantitative',
    title: 'accuracy',
    scale: { domain: [0, 1] },
    axis: { format: '.0%', tickCount: 5, grid: true, gridColor: '#e6e6e6' },
  } as const;
  const color = {
    field: 'model',
    type: 'nominal',
    sort: models,
    title: null,
    scale: { domain: models, range: models.map((m) => FIGURE3_COLORS[m as keyof typeof FIGURE3_COLORS]) },
    legend: {
      orient: 'top',
      direction: 'horizontal',
      labelFontSize: 12,
      symbolType: 'square',
      symbolSize: 140,
      columnPadding: 16,
    },
  } as const;
  const barLayers = [
    { mark: { type: 'bar', width: { band: 0.9 } }, encoding: { x, xOffset, y, color } },
    {
      mark: { type: 'rule', color: '#333333', strokeWidth: 1.5 },
      encoding: { x, xOffset, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
    },
    {
      mark: { type: 'tick', color: '#333333', thickness: 1.5, size: 14 },
      encoding: { x, xOffset, y: { field: 'lo', type: 'quantitative' } },
    },
    {
      mark: { type: 'tick', color: '#333333', thickness: 1.5, size: 14 },
      encoding: { x, xOffset, y: { field: 'hi', type: 'quantitative' } },
    },
    // the mean above the whisker; where it is over fewer folds, the fold count goes under it, smaller
    meanText(x, xOffset, `datum.n == ${r.folds}`, -8),
    meanText(x, xOffset, `datum.n < ${r.folds}`, -22),
    {
      transform: [{ filter: `datum.n < ${r.folds}` }],
      mark: { type: 'text', dy: -8, fontSize: 10, baseline: 'bottom', color: '#555555' },
      encoding: { x, xOffset, y: { field: 'hi', type: 'quantitative' }, text: { field: 'note', type: 'nominal' } },
    },
  ];
  const dotLayer = {
    data: { values: dots },
    mark: { type: 'point', filled: true, size: 22, color: '#222222', opacity: 0.65 },
    encoding: { x, xOffset, y: { field: 'value', type: 'quantitative' } },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Body location accuracy: location-only vs. MTL, with baselines',
      subtitle: `bar: mean over ${r.folds} folds; whisker: ±1 std; dot: one fold; linear and prior are baselines`,
      fontSize: 16,
      subtitleFontSize: 11,
      anchor: 'start',
      offset: 12,
    },
    data: { values: bars },
    // 420 px held two bars per metric; four need more room
    width: 640,
    height: 300,
    layer: [...barLayers, dotLayer],
    config: { axis: { titleFontSize: 13, labelFontSize: 12 }, view: { stroke: null } },
  } as TopLevelSpec;
}

function meanText(x: object, xOffset: object, filter: string, dy: number) {
  return {
    transform: [{ filter }],
    mark: { type: 'text', dy, fontSize: 12, baseline: 'bottom', color: '#222222' },
    encoding: {
      x,
      xOffset,
      y: { field: 'hi', type: 'quantitative' },
      text: { field: 'mean', type: 'quantitative', format: '.3f' },
    },
  };
}
