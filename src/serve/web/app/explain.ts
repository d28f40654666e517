/**
 * Grad-CAM maps in the page: fetched from the server (POST api/explain) or computed in the browser (BrowserModel),
 * then drawn over the photo with the server's own placement and colour code (src/image/heatmap.ts).
 */
import { heatLayer, mapOnPhoto, type ViewPlacement } from '../../../image/heatmap.ts';
import { predictQuery, readJson, send } from './api.ts';
import { contentType } from './files.ts';
import type { Tta } from './preprocess.ts';

export type Head = 'lesion' | 'location';

export interface PageLabelMap {
  label: string;
  score: number;
  p: number;
  max: number;
  map: ArrayLike<number>;
}

/** What the page needs of an explanation (the server's Explanation has these fields and more). */
export interface PageExplanation {
  grid: { h: number; w: number };
  view: ViewPlacement;
  lesions: PageLabelMap[];
  location: PageLabelMap[];
}

/** Every label's map from the server, for the centre view of the photo (`site`: its known body site, '' = unknown). */
export async function explainOnServer(file: File, tta: Tta, site = ''): Promise<PageExplanation> {
  const res = await send(`api/explain?${predictQuery(tta, 1, site)}`, {
    method: 'POST',
    body: file,
    headers: { 'content-type': contentType(file) },
  });
  return ((await readJson(res)) as { explanation: PageExplanation }).explanation;
}

export function labelMap(e: PageExplanation, head: Head, label: string): PageLabelMap | undefined {
  return (head === 'lesion' ? e.lesions : e.location).find((m) => m.label === label);
}

/**
 * Draws one label's map into `canvas` (laid over the photo, same aspect): the canvas gets the photo's aspect at a
 * modest resolution (the map is smooth), transparent outside the explained view.
 */
export function drawMap(
  canvas: HTMLCanvasElement,
  e: PageExplanation,
  m: PageLabelMap,
  photoWidth: number,
  photoHeight: number,
): void {
  const scale = Math.min(1, 480 / Math.max(photoWidth, photoHeight));
  const width = Math.max(1, Math.round(photoWidth * scale)),
    height = Math.max(1, Math.round(photoHeight * scale));
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const values = mapOnPhoto({ h: e.grid.h, w: e.grid.w, values: m.map }, e.view, width, height);
  ctx.putImageData(new ImageData(heatLayer(values, m.max, 0.65), width, height), 0, 0);
}
