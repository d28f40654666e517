import sharp from 'sharp';
import { parse, View, type Spec } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../util/atomic.ts';

/** The font every figure uses: installed as a system font, so librsvg finds it when rasterising. */
export const FIGURE_FONT = 'DejaVu Sans';

export interface RenderOutputs {
  /** Write the SVG here. */
  svg?: string;
  /** Write a PNG here (rasterised from the same SVG). */
  png?: string;
  /** PNG pixels per SVG unit (2 = crisp on high-density screens and in print). */
  scale?: number;
}

export interface Rendered {
  svg: string;
  png?: Buffer;
}

/**
 * Renders a Vega-Lite spec headlessly: compiled to Vega and run in a View with the 'none' renderer,
 * whose toSVG() needs no canvas or browser. Writes the requested files atomically and returns them.
 */
export async function renderVegaLite(spec: TopLevelSpec, out: RenderOutputs = {}): Promise<Rendered> {
  const svg = await vegaLiteToSvg(spec);
  const png = out.png ? await svgToPng(svg, out.scale ?? 2) : undefined;
  if (out.svg) await writeFileAtomic(out.svg, svg);
  if (out.png && png) await writeFileAtomic(out.png, png);
  return { svg, png };
}

export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  const vg = compile(withFont(spec)).spec as Spec;
  const view = new View(parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterises an SVG with libvips' SVG loader (librsvg); density 72 * scale keeps text sharp. */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: 72 * scale })
    .flatten({ background: '#ffffff' })
    .png()
    .toBuffer();
}

/** Every text element in one installed font, unless the spec chose its own. */
function withFont(spec: TopLevelSpec): TopLevelSpec {
  return { ...spec, config: { font: FIGURE_FONT, background: 'white', ...spec.config } } as TopLevelSpec;
}
