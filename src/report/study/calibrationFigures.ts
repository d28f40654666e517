import type { TopLevelSpec } from 'vega-lite';
import { MODEL_TITLES } from './table1.ts';
import type { HeadCalibration, StudyResults } from '../../eval/studyResults.ts';

/**
 * The study's calibration and confusion figures (pooled out-of-fold scores of the trained models):
 * - reliability diagrams, one panel per head and model: per bin of 15 the mean predicted probability (lesions:
 *   every image-label pair; location: the top probability) against the observed frequency, before calibration
 *   (each run's raw scores) and after (with the temperatures fitted on its validation part), the diagonal being
 *   perfect calibration and a point's size its bin's count;
 * - the location confusion matrix as a heat map, one panel per model with a location head: rows the true
 *   location, columns the predicted one (top score), colour the share of the row, text the count.
 */

const TRAINED = ['lesion', 'location', 'mtl'] as const;
const HEADS = [
  { key: 'lesion', title: 'lesion head (image-label pairs)' },
  { key: 'location', title: 'location head (top probability)' },
] as const;
export const CALIBRATION_COLORS = { before: '#8c8c8c', after: '#d9733b' } as const;

interface Point {
  panel: string;
  order: number;
  stage: 'before' | 'after';
  confidence: number;
  accuracy: number;
  count: number;
}

/** The points the reliability diagrams draw; empty without before/after pairs. */
export function reliabilityData(r: StudyResults): Point[] {
  const points: Point[] = [];
  for (const model of TRAINED) {
    const before = r.beforeCalibration?.[model]?.pooled;
    const after = r.models[model].pooled?.calibration as
      | Partial<Record<'lesion' | 'location', HeadCalibration | null>>
      | undefined;
    if (!before || !after) continue;
    for (const head of HEADS) {
      const pair = { before: before[head.key], after: after[head.key] };
      if (!pair.before || !pair.after) continue;
      // two header lines ('|'): which panel, and its ECE before -> after
      const panel = `${MODEL_TITLES[model]}, ${head.title}|ECE ${pair.before.ece.toFixed(3)} → ${pair.after.ece.toFixed(3)}`;
      const order = points.length;
      for (const stage of ['before', 'after'] as const) {
        const c = pair[stage]!;
        for (const b of c.bins)
          if (b.count > 0)
            points.push({ panel, order, stage, confidence: b.confidence!, accuracy: b.accuracy!, count: b.count });
      }
    }
  }
  return points;
}

export function reliabilitySpec(r: StudyResults): TopLevelSpec | null {
  const values = reliabilityData(r);
  if (values.length === 0) return null;
  const x = {
    field: 'confidence',
    type: 'quantitative',
    title: 'predicted probability (bin mean)',
    scale: { domain: [0, 1] },
  } as const;
  const y = {
    field: 'accuracy',
    type: 'quantitative',
    title: 'observed frequency',
    scale: { domain: [0, 1] },
  } as const;
  const color = {
    field: 'stage',
    type: 'nominal',
    title: 'calibration',
    scale: { domain: ['before', 'after'], range: [CALIBRATION_COLORS.before, CALIBRATION_COLORS.after] },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Reliability diagrams (pooled out-of-fold)',
      subtitle: '15 equal-width bins; the diagonal is perfect calibration; point size = images (pairs) in the bin',
      anchor: 'start',
      fontSize: 16,
      subtitleFontSize: 11,
    },
    data: { values },
    facet: {
      field: 'panel',
      type: 'nominal',
      title: null,
      sort: { field: 'order', op: 'min' },
      header: { labelFontSize: 12, labelLimit: 0, labelExpr: "split(datum.value, '|')" },
    },
    columns: 2,
    spec: {
      width: 260,
      height: 260,
      layer: [
        {
          data: { values: [{ a: 0 }, { a: 1 }] },
          mark: { type: 'line', color: '#bbbbbb', strokeDash: [4, 4] },
          encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'a', type: 'quantitative' } },
        },
        { mark: { type: 'line', strokeWidth: 1.5 }, encoding: { x, y, color } },
        {
          mark: { type: 'circle', opacity: 0.85 },
          encoding: {
            x,
            y,
            color,
            size: { field: 'count', type: 'quantitative', title: 'in bin', scale: { range: [12, 260] } },
          },
        },
      ],
    },
    resolve: { scale: { size: 'shared' } },
  } as unknown as TopLevelSpec;
}

interface Cell {
  panel: string;
  truth: string;
  predicted: string;
  count: number;
  share: number;
}

/** Every cell of the pooled location confusion matrix of each model with a location head. */
export function confusionData(r: StudyResults): Cell[] {
  const cells: Cell[] = [];
  for (const model of ['location', 'mtl'] as const) {
    const c = (r.models[model].pooled as { confusion?: { labels: string[]; matrix: number[][] } } | null)?.confusion;
    if (!c) continue;
    c.matrix.forEach((row, t) => {
      const total = row.reduce((a, b) => a + b, 0);
      row.forEach((count, p) =>
        cells.push({
          panel: MODEL_TITLES[model],
          truth: c.labels[t],
          predicted: c.labels[p],
          count,
          share: total ? count / total : 0,
        }),
      );
    });
  }
  return cells;
}

export function confusionSpec(r: StudyResults): TopLevelSpec | null {
  const values = confusionData(r);
  if (values.length === 0) return null;
  const labels = r.locationLabels;
  const x = {
    field: 'predicted',
    type: 'nominal',
    sort: labels,
    title: 'predicted location',
    axis: { labelAngle: -40 },
  } as const;
  const y = {
    field: 'truth',
    type: 'nominal',
    sort: labels,
    title: 'true location',
    axis: { labelLimit: 1000 },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Body-location confusion matrix (pooled out-of-fold)',
      subtitle: "colour: share of the true location's images; text: images",
      anchor: 'start',
      fontSize: 16,
      subtitleFontSize: 11,
    },
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: null, header: { labelFontSize: 13 } },
    spec: {
      width: { step: 40 },
      height: { step: 30 },
      layer: [
        {
          mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
          encoding: {
            x,
            y,
            color: {
              field: 'share',
              type: 'quantitative',
              title: 'share of row',
              scale: { scheme: 'blues', domain: [0, 1] },
            },
          },
        },
        {
          mark: { type: 'text', fontSize: 11 },
          encoding: {
            x,
            y,
            text: { field: 'count', type: 'quantitative' },
            color: { condition: { test: 'datum.share > 0.55', value: 'white' }, value: '#222222' },
          },
        },
      ],
    },
    config: { axis: { labelFontSize: 12, titleFontSize: 13, ticks: false, domain: false }, view: { stroke: null } },
  } as unknown as TopLevelSpec;
}
