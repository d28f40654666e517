import type { Rng } from '../../util/rng.ts';
import { Canvas, FractalNoise, clamp, jitterColour, type RGB } from './canvas.ts';
import type { Site } from './table.ts';

/**
 * What the bare skin of each body site looks like: tone, surface texture and hair. These are what makes
 * the location learnable from the background. Lengths are in pixels of a 320-pixel photo (scaled by
 * the caller's `unit`); counts are per scene.
 */
interface SiteLook {
  tone: RGB;
  /** Amplitude and size (bumps across the scene) of low-frequency blotchiness. */
  mottle: number;
  mottleCells: number;
  /** Per-pixel grain (0..255 units). */
  grain: number;
  texture: Texture;
  hair: Hair | null;
  /** Oily sheen: strength of one broad specular highlight. */
  sheen: number;
}

type Texture =
  | { kind: 'smooth' }
  | { kind: 'pores'; count: number; depth: number }
  | { kind: 'crosshatch'; period: number; depth: number }
  | { kind: 'follicles'; count: number }
  | { kind: 'ridges'; period: number; depth: number; creases: number; callus: number };

interface Hair {
  count: number;
  length: [number, number];
  width: [number, number];
  /** Typical colour; each patient gets a jittered version, each strand a little more. */
  colour: RGB;
  /** Turning per step (radians): 0 is straight, 0.15 is wavy. */
  curl: number;
  /** Spread of strand directions around the scene's hair flow (radians); PI means any direction. */
  spread: number;
  /** Fraction of strands kept out of the central (lesion) area, like hair parted for the photo. */
  parted: number;
}

const DARK_HAIR: RGB = [45, 32, 25];
const BROWN_HAIR: RGB = [95, 68, 48];

export const SITE_LOOKS: Record<Site, SiteLook> = {
  scalp: {
    tone: [222, 190, 172],
    mottle: 0.04,
    mottleCells: 3,
    grain: 4,
    sheen: 0.05,
    texture: { kind: 'follicles', count: 900 },
    hair: {
      count: 1100,
      length: [50, 150],
      width: [1.1, 1.9],
      colour: DARK_HAIR,
      curl: 0.06,
      spread: 0.5,
      parted: 0.85,
    },
  },
  face: {
    tone: [228, 166, 146],
    mottle: 0.08,
    mottleCells: 4,
    grain: 3,
    sheen: 0.14,
    texture: { kind: 'pores', count: 1400, depth: 0.18 },
    hair: { count: 40, length: [4, 10], width: [0.5, 0.8], colour: BROWN_HAIR, curl: 0.1, spread: Math.PI, parted: 0 },
  },
  chest: {
    tone: [218, 170, 146],
    mottle: 0.07,
    mottleCells: 5,
    grain: 4,
    sheen: 0.06,
    texture: { kind: 'pores', count: 300, depth: 0.1 },
    hair: {
      count: 200,
      length: [25, 60],
      width: [1.0, 1.5],
      colour: DARK_HAIR,
      curl: 0.12,
      spread: Math.PI,
      parted: 0,
    },
  },
  back: {
    tone: [206, 160, 126],
    mottle: 0.03,
    mottleCells: 2,
    grain: 1.5,
    sheen: 0.04,
    texture: { kind: 'smooth' },
    hair: null,
  },
  arm: {
    tone: [198, 148, 116],
    mottle: 0.05,
    mottleCells: 4,
    grain: 3,
    sheen: 0.05,
    texture: { kind: 'crosshatch', period: 9, depth: 0.045 },
    hair: { count: 160, length: [12, 28], width: [0.6, 1.0], colour: BROWN_HAIR, curl: 0.03, spread: 0.35, parted: 0 },
  },
  leg: {
    tone: [226, 192, 170],
    mottle: 0.06,
    mottleCells: 3,
    grain: 3,
    sheen: 0.08,
    texture: { kind: 'follicles', count: 350 },
    hair: { count: 70, length: [20, 45], width: [0.8, 1.2], colour: DARK_HAIR, curl: 0.02, spread: 0.25, parted: 0 },
  },
  hand: {
    tone: [232, 168, 160],
    mottle: 0.07,
    mottleCells: 5,
    grain: 3,
    sheen: 0.06,
    texture: { kind: 'ridges', period: 4.5, depth: 0.1, creases: 4, callus: 0 },
    hair: null,
  },
  foot: {
    tone: [228, 198, 150],
    mottle: 0.05,
    mottleCells: 3,
    grain: 4,
    sheen: 0.03,
    texture: { kind: 'ridges', period: 7, depth: 0.09, creases: 1, callus: 0.12 },
    hair: null,
  },
};

/** Paints the bare skin (tone, mottling, texture, sheen) of a site onto the whole canvas. */
export function paintSkin(canvas: Canvas, site: Site, rng: Rng, unit: number): RGB {
  const look = SITE_LOOKS[site];
  // patient skin type: a shared darkening plus a little per-channel variation
  const dark = rng.uniform(0.8, 1.05);
  const tone = jitterColour(rng, look.tone.map((v) => v * dark) as RGB, 0.03);
  const mottle = new FractalNoise(rng, look.mottleCells, 3);
  const redness = new FractalNoise(rng, look.mottleCells * 1.5, 2);
  const ridge = look.texture.kind === 'ridges' ? ridgeField(rng, look.texture, unit) : null;
  const hatch = look.texture.kind === 'crosshatch' ? crosshatchField(rng, look.texture, unit) : null;
  const callusAmount = look.texture.kind === 'ridges' ? look.texture.callus : 0;
  const callus = callusAmount > 0 ? new FractalNoise(rng, 3, 2) : null;
  const sheenX = rng.uniform(0.25, 0.75),
    sheenY = rng.uniform(0.2, 0.6),
    sheenR = rng.uniform(0.25, 0.45);
  const grain = fastUniform(rng);
  const { width: w, height: h, data } = canvas;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x / w,
        v = y / h;
      let f = 1 + look.mottle * mottle.at(u, v);
      if (ridge) f *= ridge(x, y, u, v);
      if (hatch) f *= hatch(x, y);
      const red = 0.04 * redness.at(u, v); // vascular redness blotches: more red, less green/blue
      const sx = (u - sheenX) / sheenR,
        sy = (v - sheenY) / sheenR;
      const fall = Math.max(0, 1 - sx * sx - sy * sy);
      const sheen = look.sheen * fall * fall * 255;
      const cal = callus ? Math.max(0, callus.at(u, v)) * callusAmount : 0;
      const i = (y * w + x) * 3;
      const g = (grain() - 0.5) * 2 * look.grain;
      data[i] = tone[0] * f * (1 + red) + sheen + g + cal * (250 - tone[0]);
      data[i + 1] = tone[1] * f * (1 - red) + sheen + g + cal * (235 - tone[1]);
      data[i + 2] = tone[2] * f * (1 - red) + sheen + g + cal * (190 - tone[2]);
    }
  }
  paintMarks(canvas, look, rng, unit, tone);
  return tone;
}

/** Dermatoglyphic ridges: parallel curved stripes whose direction drifts smoothly across the scene. */
function ridgeField(rng: Rng, t: { period: number; depth: number }, unit: number) {
  const angle = rng.uniform(0, Math.PI),
    warp = new FractalNoise(rng, 2, 2);
  const period = t.period * unit * rng.uniform(0.85, 1.15);
  const ca = Math.cos(angle),
    sa = Math.sin(angle);
  return (x: number, y: number, u: number, v: number): number => {
    const phase = (x * ca + y * sa) / period + 6 * warp.at(u, v);
    const s = 0.5 + 0.5 * Math.sin(2 * Math.PI * phase);
    return 1 - t.depth * s * s;
  };
}

/** Fine skin lines in two directions, as on the forearm. */
function crosshatchField(rng: Rng, t: { period: number; depth: number }, unit: number) {
  const a1 = rng.uniform(0, Math.PI),
    a2 = a1 + rng.uniform(0.9, 1.4);
  const p = t.period * unit;
  const c1 = Math.cos(a1),
    s1 = Math.sin(a1),
    c2 = Math.cos(a2),
    s2 = Math.sin(a2);
  return (x: number, y: number): number => {
    const l1 = pow12(0.5 + 0.5 * Math.cos((2 * Math.PI * (x * c1 + y * s1)) / p));
    const l2 = pow12(0.5 + 0.5 * Math.cos((2 * Math.PI * (x * c2 + y * s2)) / (p * 1.3)));
    return 1 - t.depth * Math.max(l1, l2);
  };
}

/** v^12 by squaring: sharp thin lines from a cosine, much cheaper than Math.pow per pixel. */
function pow12(v: number): number {
  const v2 = v * v,
    v4 = v2 * v2;
  return v4 * v4 * v4;
}

/** Discrete marks on the skin: pores, follicles, palm creases. */
function paintMarks(canvas: Canvas, look: SiteLook, rng: Rng, unit: number, tone: RGB): void {
  const { width: w, height: h } = canvas;
  const area = (w * h) / (480 * 480); // counts are given for a 320-pixel photo's 480-pixel scene
  const t = look.texture;
  if (t.kind === 'pores' || t.kind === 'follicles') {
    const count = Math.round(t.count * area);
    const depth = t.kind === 'pores' ? t.depth : 0.3;
    const dark: RGB = t.kind === 'pores' ? (tone.map((v) => v * 0.7) as RGB) : [70, 50, 40];
    for (let k = 0; k < count; k++) {
      const x = rng.uniform(0, w),
        y = rng.uniform(0, h),
        r = rng.uniform(0.5, 1.1) * unit;
      dot(canvas, x, y, r, dark, depth * rng.uniform(0.6, 1.2));
    }
  }
  if (t.kind === 'ridges') {
    for (let k = 0; k < t.creases; k++) {
      // palm creases: long, nearly straight, soft and broad, unlike hairs
      const pts = wanderingPath(
        rng,
        rng.uniform(0, w),
        rng.uniform(0, h),
        rng.uniform(0, 2 * Math.PI),
        0.015,
        10 * unit,
        40,
      );
      canvas.path(pts, rng.uniform(2, 3.5) * unit, tone.map((v) => v * 0.72) as RGB, 0.4);
    }
  }
}

/** Hair, drawn after the lesions so that it can cover them, as in real photos. */
export function paintHair(canvas: Canvas, site: Site, rng: Rng, unit: number): void {
  const hair = SITE_LOOKS[site].hair;
  if (!hair) return;
  const { width: w, height: h } = canvas;
  const flow = rng.uniform(0, 2 * Math.PI);
  const light = rng.uniform(0.7, 1.6);
  const colour = jitterColour(rng, hair.colour.map((v) => v * light) as RGB, 0.1);
  const count = Math.round(((hair.count * (w * h)) / (480 * 480)) * rng.uniform(0.75, 1.25));
  for (let k = 0; k < count; k++) {
    const x = rng.uniform(-0.1, 1.1) * w,
      y = rng.uniform(-0.1, 1.1) * h;
    const cx = x / w - 0.5,
      cy = y / h - 0.5;
    if (hair.parted > 0 && cx * cx + cy * cy < 0.3 * 0.3 && rng.bool(hair.parted)) continue;
    const angle = flow + rng.uniform(-hair.spread, hair.spread);
    const length = rng.uniform(hair.length[0], hair.length[1]) * unit;
    const pts = wanderingPath(rng, x, y, angle, hair.curl, 3 * unit, Math.ceil(length / (3 * unit)));
    const c = jitterColour(rng, colour, 0.08);
    // at least ~1 px wide, so small photos still show hair rather than a faint haze
    canvas.path(pts, Math.max(0.9, rng.uniform(hair.width[0], hair.width[1]) * unit), c, rng.uniform(0.7, 0.95));
  }
}

/** A curve that turns gently and randomly: hairs, creases, vessels. */
export function wanderingPath(
  rng: Rng,
  x: number,
  y: number,
  angle: number,
  curl: number,
  step: number,
  steps: number,
): [number, number][] {
  const pts: [number, number][] = [[x, y]];
  let turn = rng.normal(0, curl);
  for (let i = 0; i < steps; i++) {
    turn = 0.8 * turn + rng.normal(0, curl);
    angle += turn;
    x += Math.cos(angle) * step;
    y += Math.sin(angle) * step;
    pts.push([x, y]);
  }
  return pts;
}

/** A small soft round spot. */
export function dot(canvas: Canvas, x: number, y: number, r: number, c: RGB, a: number): void {
  for (let py = Math.floor(y - r - 1); py <= Math.ceil(y + r + 1); py++) {
    for (let px = Math.floor(x - r - 1); px <= Math.ceil(x + r + 1); px++) {
      const d = Math.hypot(px - x, py - y);
      canvas.blend(px, py, c, a * clamp(r + 0.5 - d, 0, 1));
    }
  }
}

/**
 * A fast uniform [0, 1) stream for per-pixel grain (mulberry32), seeded from the project Rng so it stays
 * reproducible; calling the main Rng once per pixel would dominate the drawing time.
 */
export function fastUniform(rng: Rng): () => number {
  let s = rng.int(0, 0x7fffffff) | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
