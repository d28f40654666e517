import type { TopLevelSpec } from 'vega-lite';
import type { cooccurrence } from '../../data/statistics.ts';

/** The lesion x location co-occurrence of a manifest, as computed by `cooccurrence`. */
export type Cooccurrence = ReturnType<typeof cooccurrence>;

export interface HeatmapOptions {
  title?: string;
  /** Print R in each cell; default: only when the matrix is small enough to read (<= 400 cells). */
  cellText?: boolean;
}

/**
 * Figure 1 of Liao & Luo: a heatmap of R, rows = lesions, columns = locations, where R[i][j] is the share
 * of the images with lesion i that were taken at location j (each row sums to 1). Rows and columns keep
 * the matrix's order (by frequency). The colour scale runs from 0 to the largest R, so even a weak
 * preference of a lesion for a site is visible.
 */
export function correlationHeatmapSpec(m: Cooccurrence, opts: HeatmapOptions = {}): TopLevelSpec {
  const values = m.lesions.flatMap((lesion, i) =>
    m.locations.map((location, j) => ({
      lesion,
      row: rowLabel(m, i),
      location,
      R: m.R[i][j],
      count: m.counts[i][j],
      total: m.lesionTotals[i],
    })),
  );
  const maxR = Math.max(1e-9, ...values.map((v) => v.R));
  const showText = opts.cellText ?? values.length <= 400;
  const x = {
    field: 'location',
    type: 'nominal',
    sort: m.locations,
    title: 'body location',
    axis: { labelAngle: -40, orient: 'bottom' },
  } as const;
  const y = {
    field: 'row',
    type: 'nominal',
    sort: m.lesions.map((_, i) => rowLabel(m, i)), // No y title: vega places it from ESTIMATED label widths (no canvas here), and long lesion labels rendered in
    // DejaVu Sans run into it; the subtitle names the rows instead.
    title: null,
    axis: { labelLimit: 1000 },
  } as const;
  const rect = {
    mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
    encoding: {
      x,
      y,
      color: {
        field: 'R',
        type: 'quantitative',
        title: 'R',
        scale: { scheme: 'blues', domain: [0, maxR] },
        legend: { gradientLength: Math.max(120, m.lesions.length * 26), format: '.2f', titleFontSize: 14 },
      },
    },
  };
  const text = {
    mark: { type: 'text', fontSize: 11 },
    encoding: {
      x,
      y,
      text: { field: 'R', type: 'quantitative', format: '.2f' },
      // dark cells get white text
      color: { condition: { test: `datum.R > ${0.55 * maxR}`, value: 'white' }, value: '#222222' },
    },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: opts.title ?? 'Lesion type vs. body location',
      subtitle: [
        'rows: lesion type (number of images); columns: body location',
        'R = share of the images with a lesion type taken at each location (rows sum to 1)',
      ],
      fontSize: 16,
      subtitleFontSize: 11,
      anchor: 'start',
      offset: 12,
    },
    data: { values },
    width: { step: Math.max(36, Math.min(56, 520 / Math.max(1, m.locations.length))) },
    height: { step: 28 },
    layer: showText ? [rect, text] : [rect],
    config: { axis: { labelFontSize: 12, titleFontSize: 13, ticks: false, domain: false }, view: { stroke: null } },
  } as TopLevelSpec;
}

/** Row label with the row's image count, so a reader sees how much each row of shares rests on. */
function rowLabel(m: Cooccurrence, i: number): string {
  return `${m.lesions[i]} (${m.lesionTotals[i]})`;
}
