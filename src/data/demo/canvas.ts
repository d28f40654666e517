import type { Rng } from '../../util/rng.ts';

export type RGB = [number, number, number];

/** A float RGB raster (0..255 per channel) that the demo scenes are painted into. */
export class Canvas {
  readonly data: Float32Array;
  /** Scratch buffer for path(), allocated on first use and always left zeroed. */
  private coverage?: Float32Array;
  /** While set: grown to hold every pixel painted with opacity >= TRACK_MIN_ALPHA (where a lesion was drawn). */
  box: PixelBox | null = null;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Float32Array(width * height * 3);
  }

  /** Mixes colour c into pixel (x, y) with opacity a (0..1); out-of-range pixels are ignored. */
  blend(x: number, y: number, c: RGB, a: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || a <= 0) return;
    if (this.box && a >= TRACK_MIN_ALPHA) grow(this.box, x, y);
    const i = (y * this.width + x) * 3,
      d = this.data;
    const t = a > 1 ? 1 : a;
    d[i] += (c[0] - d[i]) * t;
    d[i + 1] += (c[1] - d[i + 1]) * t;
    d[i + 2] += (c[2] - d[i + 2]) * t;
  }

  /** Scales pixel (x, y) by f, mixed in with opacity a: shading and shadows keep the underlying colour. */
  shade(x: number, y: number, f: number, a = 1): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || a <= 0) return;
    if (this.box && a * Math.abs(f - 1) >= TRACK_MIN_ALPHA) grow(this.box, x, y);
    const i = (y * this.width + x) * 3,
      d = this.data;
    const k = 1 + (f - 1) * Math.min(1, a);
    d[i] *= k;
    d[i + 1] *= k;
    d[i + 2] *= k;
  }

  /** An anti-aliased thick segment, e.g. a hair, a vessel or a skin crease. */
  line(x0: number, y0: number, x1: number, y1: number, width: number, c: RGB, a: number): void {
    this.path(
      [
        [x0, y0],
        [x1, y1],
      ],
      width,
      c,
      a,
    );
  }

  /**
   * An anti-aliased polyline (a curved hair, a vessel). Coverage is collected per pixel first (max over the
   * segments) and blended once, so joints between segments do not get painted twice and look beaded.
   */
  path(points: [number, number][], width: number, c: RGB, a: number): void {
    const cover = (this.coverage ??= new Float32Array(this.width * this.height));
    const touched: number[] = [];
    const r = width / 2;
    for (let k = 1; k < points.length; k++) {
      const [x0, y0] = points[k - 1],
        [x1, y1] = points[k];
      const minX = Math.max(0, Math.floor(Math.min(x0, x1) - r - 1)),
        maxX = Math.min(this.width - 1, Math.ceil(Math.max(x0, x1) + r + 1));
      const minY = Math.max(0, Math.floor(Math.min(y0, y1) - r - 1)),
        maxY = Math.min(this.height - 1, Math.ceil(Math.max(y0, y1) + r + 1));
      const vx = x1 - x0,
        vy = y1 - y0,
        len2 = vx * vx + vy * vy || 1e-9;
      for (let y = minY; y <= maxY; y++) {
        for (let x = minX; x <= maxX; x++) {
          const t = Math.max(0, Math.min(1, ((x - x0) * vx + (y - y0) * vy) / len2));
          const dx = x - (x0 + t * vx),
            dy = y - (y0 + t * vy);
          const v = Math.min(1, r + 0.5 - Math.sqrt(dx * dx + dy * dy));
          const i = y * this.width + x;
          if (v > cover[i]) {
            if (cover[i] === 0) touched.push(i);
            cover[i] = v;
          }
        }
      }
    }
    for (const i of touched) {
      this.blend(i % this.width, (i / this.width) | 0, c, a * cover[i]);
      cover[i] = 0;
    }
  }
}

/** An inclusive pixel rectangle (empty while x0 > x1). */
export interface PixelBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Writes fainter than this (a lesion's barely visible halo) do not grow the tracked box. */
const TRACK_MIN_ALPHA = 0.05;

export function emptyBox(): PixelBox {
  return { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
}

function grow(b: PixelBox, x: number, y: number): void {
  if (x < b.x0) b.x0 = x;
  if (x > b.x1) b.x1 = x;
  if (y < b.y0) b.y0 = y;
  if (y > b.y1) b.y1 = y;
}

/**
 * Smooth random field in [-1, 1] (value noise on a coarse grid, smoothstep-interpolated), for skin mottling,
 * irregular lesion texture and lighting blotches. `cells` is how many bumps fit across the unit square.
 */
export class ValueNoise {
  private readonly grid: Float32Array;
  private readonly n: number;

  constructor(rng: Rng, cells: number) {
    this.n = Math.max(1, Math.round(cells));
    this.grid = new Float32Array((this.n + 1) * (this.n + 1));
    for (let i = 0; i < this.grid.length; i++) this.grid[i] = rng.uniform(-1, 1);
  }

  /** The field at (u, v), both in [0, 1] (clamped outside). */
  at(u: number, v: number): number {
    const n = this.n;
    const x = Math.min(Math.max(u, 0), 1) * n,
      y = Math.min(Math.max(v, 0), 1) * n;
    const ix = Math.min(n - 1, Math.floor(x)),
      iy = Math.min(n - 1, Math.floor(y));
    const fx = smooth(x - ix),
      fy = smooth(y - iy);
    const g = this.grid,
      w = n + 1,
      i = iy * w + ix;
    const top = g[i] + (g[i + 1] - g[i]) * fx;
    const bottom = g[i + w] + (g[i + w + 1] - g[i + w]) * fx;
    return top + (bottom - top) * fy;
  }
}

/** Several octaves of value noise: coarse shapes plus finer detail. */
export class FractalNoise {
  private readonly octaves: ValueNoise[];

  constructor(rng: Rng, cells: number, octaves = 3) {
    this.octaves = Array.from({ length: octaves }, (_, k) => new ValueNoise(rng, cells * 2 ** k));
  }

  at(u: number, v: number): number {
    let sum = 0,
      amp = 1,
      norm = 0;
    const o = this.octaves;
    for (let k = 0; k < o.length; k++) {
      sum += o[k].at(u, v) * amp;
      norm += amp;
      amp *= 0.5;
    }
    return sum / norm;
  }
}

function smooth(t: number): number {
  return t * t * (3 - 2 * t);
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Colour jittered per channel by a factor around 1 (lesion and skin colours vary between patients). */
export function jitterColour(rng: Rng, c: RGB, sd: number): RGB {
  const k = 1 + rng.normal(0, sd * 0.6); // shared brightness part
  return c.map((v) => clamp(v * k * (1 + rng.normal(0, sd * 0.4)), 0, 255)) as RGB;
}

export function mix(a: RGB, b: RGB, t: number): RGB {
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}
