import sharp from 'sharp';
import { Rng } from '../../util/rng.ts';
import { Canvas, clamp, emptyBox, type PixelBox } from './canvas.ts';
import { paintLesion, type Light } from './lesions.ts';
import type { DemoScene, DemoView } from './plan.ts';
import { fastUniform, paintHair, paintSkin } from './skin.ts';

/**
 * The scene is drawn larger than a photo (1.5 x its width) so that every view, rotated by any angle and
 * zoomed by at least 1, stays inside it (half-diagonal 0.71 < 0.75).
 */
export const SCENE_SCALE = 1.5;
/** Lesion centres lie within this fraction of the photo size from the scene centre, so every view shows them. */
const LESION_RADIUS = 0.18;

/**
 * Paints the skin of the scene's site, its lesions, then hair over everything. `lesionBoxes`, when given, receives
 * each lesion's box in scene pixels (in scene.lesions order); the pixels do not depend on it.
 */
export function drawScene(scene: DemoScene, seed: number, size: number, lesionBoxes?: PixelBox[]): Canvas {
  const rng = Rng.derive(seed, 'scene-pixels', scene.index);
  const side = Math.round(size * SCENE_SCALE);
  const unit = size / 320;
  const canvas = new Canvas(side, side);
  const skin = paintSkin(canvas, scene.site, rng, unit);
  const la = rng.uniform(0, 2 * Math.PI),
    tilt = rng.uniform(0.35, 0.65);
  const light: Light = [Math.cos(la) * tilt, Math.sin(la) * tilt, Math.sqrt(1 - tilt * tilt)];
  // several lesion types go to evenly spread directions, so one rarely hides another completely
  const k = scene.lesions.length,
    a0 = rng.uniform(0, 2 * Math.PI);
  for (const [i, lesion] of scene.lesions.entries()) {
    const a = a0 + (2 * Math.PI * i) / k + rng.uniform(-0.4, 0.4);
    const r = (k === 1 ? Math.sqrt(rng.float()) : rng.uniform(0.55, 1)) * LESION_RADIUS * size;
    if (lesionBoxes) canvas.box = emptyBox();
    paintLesion(canvas, lesion, rng, unit, light, skin, side / 2 + Math.cos(a) * r, side / 2 + Math.sin(a) * r);
    if (canvas.box) lesionBoxes!.push(canvas.box);
    canvas.box = null;
  }
  paintHair(canvas, scene.site, rng, unit);
  return canvas;
}

/** A photo of the scene: framing by inverse mapping with bilinear sampling, then exposure, tint, falloff, noise. */
export function renderView(
  canvas: Canvas,
  view: DemoView,
  size: number,
  rng: Rng,
): { data: Buffer; width: number; height: number } {
  const width = size,
    height = Math.round(size * view.aspect);
  const out = Buffer.alloc(width * height * 3);
  const cos = Math.cos(view.rotation) / view.zoom,
    sin = Math.sin(view.rotation) / view.zoom;
  const cx = canvas.width / 2 + view.dx * size,
    cy = canvas.height / 2 + view.dy * size;
  const gx = (Math.cos(view.gradientAngle) * view.gradientAmount) / (size / 2);
  const gy = (Math.sin(view.gradientAngle) * view.gradientAmount) / (size / 2);
  const noise = fastUniform(rng);
  const src = canvas.data,
    sw = canvas.width,
    sh = canvas.height;
  for (let oy = 0; oy < height; oy++) {
    for (let ox = 0; ox < width; ox++) {
      let x = ox - width / 2 + 0.5;
      const y = oy - height / 2 + 0.5;
      const light = view.gain * (1 + gx * x + gy * y);
      if (view.flip) x = -x;
      const sx = clamp(cx + x * cos - y * sin, 0, sw - 1.001),
        sy = clamp(cy + x * sin + y * cos, 0, sh - 1.001);
      const ix = Math.floor(sx),
        iy = Math.floor(sy),
        fx = sx - ix,
        fy = sy - iy;
      const i00 = (iy * sw + ix) * 3,
        i10 = i00 + 3,
        i01 = i00 + sw * 3,
        i11 = i01 + 3;
      const grain = (noise() + noise() - 1) * view.noise * 1.7; // triangular noise with sd ~ view.noise
      const o = (oy * width + ox) * 3;
      for (let c = 0; c < 3; c++) {
        const top = src[i00 + c] + (src[i10 + c] - src[i00 + c]) * fx;
        const bottom = src[i01 + c] + (src[i11 + c] - src[i01 + c]) * fx;
        const v = (top + (bottom - top) * fy) * light * view.tint[c] + grain;
        out[o + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
  return { data: out, width, height };
}

/**
 * Where a box of scene pixels lands in a view's photo: the bounding box of its four corners under the view's framing
 * (the inverse of renderView's mapping), clipped to the photo; null when it falls outside.
 */
export function sceneBoxInView(box: PixelBox, view: DemoView, size: number, sceneSide: number): PixelBox | null {
  const width = size,
    height = Math.round(size * view.aspect);
  const cx = sceneSide / 2 + view.dx * size,
    cy = sceneSide / 2 + view.dy * size;
  const cos = Math.cos(view.rotation) * view.zoom,
    sin = Math.sin(view.rotation) * view.zoom;
  const out = emptyBox();
  // pixel i holds the scene's value at i (renderView samples there), so the box's edges are x0 - 0.5 and x1 + 0.5
  for (const [sx, sy] of [
    [box.x0 - 0.5, box.y0 - 0.5],
    [box.x1 + 0.5, box.y0 - 0.5],
    [box.x0 - 0.5, box.y1 + 0.5],
    [box.x1 + 0.5, box.y1 + 0.5],
  ]) {
    const u = sx - cx,
      v = sy - cy;
    let x = u * cos + v * sin;
    const y = -u * sin + v * cos;
    if (view.flip) x = -x;
    const ox = x + width / 2,
      oy = y + height / 2;
    out.x0 = Math.min(out.x0, ox);
    out.x1 = Math.max(out.x1, ox);
    out.y0 = Math.min(out.y0, oy);
    out.y1 = Math.max(out.y1, oy);
  }
  const clipped = {
    x0: Math.max(0, out.x0),
    y0: Math.max(0, out.y0),
    x1: Math.min(width, out.x1),
    y1: Math.min(height, out.y1),
  };
  return clipped.x0 < clipped.x1 && clipped.y0 < clipped.y1 ? clipped : null;
}

/** JPEG bytes of a view, with the view's optical blur. */
export async function encodeView(
  raw: { data: Buffer; width: number; height: number },
  view: DemoView,
): Promise<Buffer> {
  let img = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } });
  if (view.blur >= 0.3) img = img.blur(view.blur);
  return img.jpeg({ quality: view.quality, chromaSubsampling: '4:2:0' }).toBuffer();
}
