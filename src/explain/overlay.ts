// PNG overlays of Grad-CAM maps (sharp): the photo (EXIF-oriented, at most OVERLAY_MAX_SIDE on its longer side), the
// map in turbo colours over the region the explained view covers (outlined), and a caption panel below with the
// head, label, probability and score and a colour bar from 0 to the map's maximum.
import sharp from 'sharp';
import { decodeImage, type ImageInput } from '../image/index.ts';
import { FIGURE_FONT } from '../report/render.ts';
import type { Explanation, LabelMap } from '../serve/explain.ts';
import { heatLayer, mapOnPhoto, turbo, viewRegion } from '../image/heatmap.ts';

/** Longer side of an overlay's photo in pixels (a larger photo is scaled down). */
export const OVERLAY_MAX_SIDE = 640;
const PANEL = 64;

/** The photo as the overlays show it: oriented, scaled to at most OVERLAY_MAX_SIDE. */
export interface OverlayPhoto {
  rgb: Buffer;
  width: number;
  height: number;
}

export async function overlayPhoto(image: ImageInput, name: string, maxPixels?: number): Promise<OverlayPhoto> {
  const full = await decodeImage(image, { name, maxPixels });
  const scale = Math.min(1, OVERLAY_MAX_SIDE / Math.max(full.width, full.height));
  const width = Math.max(1, Math.round(full.width * scale)),
    height = Math.max(1, Math.round(full.height * scale));
  const rgb =
    scale === 1
      ? Buffer.from(full.data)
      : await sharp(full.data, { raw: { width: full.width, height: full.height, channels: 3 } })
          .resize({ width, height, fit: 'fill' })
          .raw()
          .toBuffer();
  return { rgb, width, height };
}

/** One label's overlay as PNG bytes. */
export async function overlayPng(
  photo: OverlayPhoto,
  e: Explanation,
  head: 'lesion' | 'location',
  m: LabelMap,
): Promise<Buffer> {
  const { width, height } = photo;
  const values = mapOnPhoto({ h: e.grid.h, w: e.grid.w, values: m.map }, e.view, width, height);
  const heat = Buffer.from(heatLayer(values, m.max).buffer);
  const r = viewRegion(e.view, width, height);
  const outline =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect x="${r.x0 + 0.5}" y="${r.y0 + 0.5}" width="${r.x1 - r.x0 - 1}" height="${r.y1 - r.y0 - 1}" fill="none" stroke="white" stroke-opacity="0.7" stroke-dasharray="6 4"/></svg>`;
  const photoLayer = await sharp(photo.rgb, { raw: { width, height, channels: 3 } })
    .composite([{ input: heat, raw: { width, height, channels: 4 } }, { input: Buffer.from(outline) }])
    .png()
    .toBuffer();
  const panelWidth = Math.max(width, 320);
  return sharp({
    create: { width: panelWidth, height: height + PANEL, channels: 3, background: { r: 255, g: 255, b: 255 } },
  })
    .composite([
      { input: photoLayer, left: 0, top: 0 },
      { input: Buffer.from(captionSvg(panelWidth, head, m)), left: 0, top: height },
    ])
    .png()
    .toBuffer();
}

function captionSvg(width: number, head: 'lesion' | 'location', m: LabelMap): string {
  const barX = 10,
    barW = Math.min(180, width - 150),
    barY = 30,
    barH = 10;
  const stops = Array.from({ length: 11 }, (_, i) => {
    const [r, g, b] = turbo(i / 10);
    return `<stop offset="${i * 10}%" stop-color="rgb(${r},${g},${b})"/>`;
  }).join('');
  const title = `${head}: ${m.label}${m.max > 0 ? '' : ' (empty map: no region raises this score)'}`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL}" font-family="${FIGURE_FONT}">` +
    `<defs><linearGradient id="t">${stops}</linearGradient></defs>` +
    `<text x="10" y="19" font-size="14" font-weight="bold">${escapeXml(title)}</text>` +
    `<rect x="${barX}" y="${barY}" width="${barW}" height="${barH}" fill="url(#t)"/>` +
    `<text x="${barX}" y="${barY + barH + 13}" font-size="11">0</text>` +
    `<text x="${barX + barW}" y="${barY + barH + 13}" font-size="11" text-anchor="end">${m.max.toPrecision(3)}</text>` +
    `<text x="${barX + barW + 12}" y="${barY + barH}" font-size="12">p ${m.p.toFixed(3)} · score ${m.score.toFixed(2)}</text>` +
    `<text x="${barX + barW + 12}" y="${barY + barH + 13}" font-size="10" fill="#555">Grad-CAM, centre view</text></svg>`
  );
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
