import type { Rng } from '../../util/rng.ts';
import { Canvas, FractalNoise, clamp, jitterColour, mix, type RGB } from './canvas.ts';
import { dot, fastUniform, wanderingPath } from './skin.ts';
import type { Lesion } from './table.ts';

/** Where the light comes from (unit vector, z towards the camera); shared by all lesions of a scene. */
export type Light = [number, number, number];

/** What every lesion painter gets: the canvas, its random stream, the size unit, the light and the skin tone. */
interface Ctx {
  canvas: Canvas;
  rng: Rng;
  unit: number;
  light: Light;
  skin: RGB;
  /** Centre of the lesion in scene pixels. */
  cx: number;
  cy: number;
}

/**
 * An irregular round shape: radius r modulated by a few harmonics. `visit` is called for every pixel
 * with d < reach, where d is the distance from the centre relative to the (angle-dependent) radius
 * and (px, py) is the normalised position, so painters can shade it like a dome or a crater.
 */
interface Blob {
  cx: number;
  cy: number;
  r: number;
  harmonics: { k: number; a: number; phase: number }[];
}

function makeBlob(rng: Rng, cx: number, cy: number, r: number, irregularity: number, maxK = 5): Blob {
  const harmonics = [];
  for (let k = 2; k <= maxK; k++)
    harmonics.push({ k, a: rng.uniform(0, irregularity) / (k - 1), phase: rng.uniform(0, 6.3) });
  return { cx, cy, r, harmonics };
}

function forBlob(
  canvas: Canvas,
  b: Blob,
  reach: number,
  visit: (d: number, px: number, py: number, x: number, y: number) => void,
): void {
  const maxR = b.r * (1 + b.harmonics.reduce((s, h) => s + h.a, 0)) * reach + 2;
  const x0 = Math.max(0, Math.floor(b.cx - maxR)),
    x1 = Math.min(canvas.width - 1, Math.ceil(b.cx + maxR));
  const y0 = Math.max(0, Math.floor(b.cy - maxR)),
    y1 = Math.min(canvas.height - 1, Math.ceil(b.cy + maxR));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x - b.cx,
        dy = y - b.cy;
      const theta = Math.atan2(dy, dx);
      let rr = 1;
      for (const h of b.harmonics) rr += h.a * Math.cos(h.k * theta + h.phase);
      const radius = b.r * rr;
      const d = Math.sqrt(dx * dx + dy * dy) / radius;
      if (d < reach) visit(d, dx / radius, dy / radius, x, y);
    }
  }
}

/** Brightness of a dome of relative height `height` at normalised position (px, py), relative to flat skin. */
function domeShade(px: number, py: number, height: number, L: Light): number {
  const s = Math.sqrt(Math.max(0.02, 1 - px * px - py * py));
  const nx = (height * px) / s,
    ny = (height * py) / s;
  const lambert = (nx * L[0] + ny * L[1] + L[2]) / Math.sqrt(nx * nx + ny * ny + 1);
  return clamp(lambert / L[2], 0.5, 1.3);
}

/** A specular highlight: strongest where the dome normal points half-way between light and camera. */
function specular(px: number, py: number, L: Light, size: number): number {
  const hx = -L[0] * 0.45 - px,
    hy = -L[1] * 0.45 - py;
  return Math.exp(-(hx * hx + hy * hy) / (size * size));
}

/** Edge opacity: 1 inside, falling to 0 over `soft` pixels at d = 1. */
function edge(d: number, r: number, soft: number): number {
  return clamp(((1 - d) * r) / soft + 0.5, 0, 1);
}

const WHITE: RGB = [255, 255, 252];

const PAINTERS: Record<Lesion, (c: Ctx) => void> = {
  /** Small raised red-pink domes, usually a few clustered together, with a faint red halo. */
  papule(c) {
    const base = jitterColour(c.rng, [205, 105, 110], 0.08);
    const n = c.rng.int(2, 9),
      spread = c.rng.uniform(8, 26) * c.unit;
    for (let i = 0; i < n; i++) {
      const r = c.rng.uniform(4, 9) * c.unit;
      const b = makeBlob(c.rng, c.cx + c.rng.normal(0, spread), c.cy + c.rng.normal(0, spread), r, 0.1);
      forBlob(c.canvas, b, 1.7, (d, px, py, x, y) => {
        if (d >= 1) return c.canvas.blend(x, y, base, (0.18 * (1.7 - d)) / 0.7);
        c.canvas.blend(x, y, base, edge(d, r, 1.2));
        c.canvas.shade(x, y, domeShade(px, py, 1.1, c.light));
        c.canvas.blend(x, y, WHITE, 0.55 * specular(px, py, c.light, 0.25));
      });
    }
  },

  /** A large, well-demarcated, flat-topped red patch with a slightly raised rim and a mottled surface. */
  plaque(c) {
    const base = jitterColour(c.rng, [200, 95, 95], 0.08);
    const tex = new FractalNoise(c.rng, 6, 3);
    for (let i = c.rng.int(1, 2); i > 0; i--) {
      const r = c.rng.uniform(30, 58) * c.unit;
      const b = makeBlob(c.rng, c.cx + c.rng.normal(0, 12 * c.unit), c.cy + c.rng.normal(0, 12 * c.unit), r, 0.25);
      forBlob(c.canvas, b, 1.1, (d, px, py, x, y) => {
        const inside = edge(d, r, 1.5);
        const t = ((1 - d) * r) / (3 * c.unit);
        const rim = Math.exp(-t * t); // slope at the border, facing outwards
        const lit = 1 + (0.25 * rim * (px * -c.light[0] + py * -c.light[1])) / Math.max(0.3, d);
        c.canvas.blend(x, y, base, inside * 0.92);
        c.canvas.shade(x, y, (1 + 0.1 * tex.at(x / 400, y / 400)) * (inside > 0 ? lit : 1), inside);
      });
    }
  },

  /** Silvery-white flakes on a faintly pink base: many small overlapping bright scales. */
  scale(c) {
    const R = c.rng.uniform(24, 52) * c.unit;
    const area = makeBlob(c.rng, c.cx, c.cy, R, 0.3);
    forBlob(c.canvas, area, 1, (d, _px, _py, x, y) => c.canvas.blend(x, y, [212, 132, 128], 0.55 * edge(d, R, 3)));
    const flakes = Math.round((R * R) / (12 * c.unit * c.unit));
    const speck = fastUniform(c.rng);
    for (let i = 0; i < flakes; i++) {
      const a = c.rng.uniform(0, 2 * Math.PI),
        rr = Math.sqrt(c.rng.float()) * R * 0.95;
      const r = c.rng.uniform(2, 6) * c.unit;
      const colour = jitterColour(c.rng, [228, 226, 224], 0.03);
      const alpha = c.rng.uniform(0.3, 0.7);
      const f = makeBlob(c.rng, c.cx + Math.cos(a) * rr, c.cy + Math.sin(a) * rr, r, 0.5, 3);
      forBlob(c.canvas, f, 1.25, (d, _px, _py, x, y) => {
        if (d >= 1) return c.canvas.shade(x, y, 0.9, 0.4); // thin shadow line under the flake's edge
        c.canvas.blend(x, y, colour, alpha * edge(d, r, 0.8));
        c.canvas.shade(x, y, 0.95 + 0.08 * speck());
      });
    }
  },

  /** A rough, irregular honey-yellow to brown crust with a dark border and a few glossy points. */
  crust(c) {
    const honey = jitterColour(c.rng, [198, 148, 62], 0.08),
      brown = jitterColour(c.rng, [118, 70, 36], 0.1);
    const tex = new FractalNoise(c.rng, 10, 3);
    const r = c.rng.uniform(14, 34) * c.unit;
    const b = makeBlob(c.rng, c.cx, c.cy, r, 0.35, 9);
    forBlob(c.canvas, b, 1.05, (d, px, py, x, y) => {
      const n = tex.at(x / 300, y / 300);
      const colour = mix(honey, brown, clamp(0.45 + n * 1.2 + (d > 0.8 ? (d - 0.8) * 2 : 0), 0, 1));
      c.canvas.blend(x, y, colour, edge(d, r, 1));
      c.canvas.shade(x, y, (1 + 0.3 * n) * domeShade(px, py, 0.4, c.light), edge(d, r, 1));
    });
    for (let i = c.rng.int(2, 7); i > 0; i--) {
      const a = c.rng.uniform(0, 6.3),
        rr = c.rng.uniform(0, 0.7) * r;
      dot(c.canvas, c.cx + Math.cos(a) * rr, c.cy + Math.sin(a) * rr, c.rng.uniform(0.8, 2) * c.unit, WHITE, 0.5);
    }
  },

  /** A flat, evenly brown, oval spot with a soft smooth edge: no relief at all. */
  macule(c) {
    const n = c.rng.weighted([0.6, 0.3, 0.1]) + 1;
    for (let i = 0; i < n; i++) {
      const colour = jitterColour(c.rng, mix([150, 102, 72], [92, 58, 40], c.rng.float()), 0.06);
      const r = c.rng.uniform(8, 24) * c.unit,
        soft = c.rng.uniform(1.5, 4) * c.unit;
      const off = i === 0 ? 0 : 30 * c.unit;
      const b = makeBlob(c.rng, c.cx + c.rng.normal(0, off), c.cy + c.rng.normal(0, off), r, 0.12);
      const tex = new FractalNoise(c.rng, 5, 2);
      forBlob(c.canvas, b, 1.3, (d, _px, _py, x, y) => {
        c.canvas.blend(x, y, colour, 0.9 * edge(d, r, soft));
        c.canvas.shade(x, y, 1 + 0.05 * tex.at(x / 400, y / 400), edge(d, r, soft));
      });
    }
  },

  /** Tiny translucent fluid-filled blisters in a cluster: pale, glassy, with a bright highlight and red base. */
  vesicle(c) {
    const n = c.rng.int(4, 14),
      spread = c.rng.uniform(8, 24) * c.unit;
    const fluid = jitterColour(c.rng, [250, 244, 222], 0.02);
    for (let i = 0; i < n; i++) {
      const r = c.rng.uniform(3, 7) * c.unit;
      const b = makeBlob(c.rng, c.cx + c.rng.normal(0, spread), c.cy + c.rng.normal(0, spread), r, 0.08);
      forBlob(c.canvas, b, 1.6, (d, px, py, x, y) => {
        if (d >= 1) return c.canvas.blend(x, y, [210, 90, 90], (0.3 * (1.6 - d)) / 0.6);
        const a = edge(d, r, 0.8);
        c.canvas.blend(x, y, fluid, 0.4 * a);
        c.canvas.shade(x, y, domeShade(px, py, 0.5, c.light), a);
        c.canvas.blend(x, y, WHITE, 0.9 * specular(px, py, c.light, 0.22));
      });
    }
  },

  /** A moist, shallow, bright-red raw area with a ragged edge, a pale epidermal collar and wet glints. */
  erosion(c) {
    const raw = jitterColour(c.rng, [214, 86, 84], 0.07);
    const tex = new FractalNoise(c.rng, 8, 2);
    const r = c.rng.uniform(14, 34) * c.unit;
    const b = makeBlob(c.rng, c.cx, c.cy, r, 0.25, 11);
    forBlob(c.canvas, b, 1.15, (d, px, py, x, y) => {
      if (d >= 0.97) return c.canvas.blend(x, y, [238, 220, 205], 0.55 * (1 - Math.abs(d - 1.05) / 0.1));
      c.canvas.blend(x, y, raw, edge(d, r, 1));
      c.canvas.shade(x, y, (1 + 0.12 * tex.at(x / 300, y / 300)) * (2 - domeShade(px, py, 0.25, c.light)));
    });
    for (let i = c.rng.int(5, 14); i > 0; i--) {
      const a = c.rng.uniform(0, 6.3),
        rr = c.rng.uniform(0, 0.8) * r;
      dot(c.canvas, c.cx + Math.cos(a) * rr, c.cy + Math.sin(a) * rr, c.rng.uniform(0.6, 1.6) * c.unit, WHITE, 0.65);
    }
  },

  /** A large, firm, strongly raised dome: skin-coloured to red-purple, with a cast shadow and a highlight. */
  nodule(c) {
    const colour = jitterColour(c.rng, mix(c.skin, [185, 100, 120], c.rng.uniform(0.3, 0.9)), 0.05);
    const r = c.rng.uniform(16, 34) * c.unit;
    const b = makeBlob(c.rng, c.cx, c.cy, r, 0.08);
    forBlob(c.canvas, b, 1.35, (d, px, py, x, y) => {
      if (d >= 1) {
        const away = -(px * c.light[0] + py * c.light[1]) / d; // shadow falls on the side away from the light
        return c.canvas.shade(x, y, 0.65, (Math.max(0, away) * (1.35 - d)) / 0.35);
      }
      c.canvas.blend(x, y, colour, edge(d, r, 1.2));
      c.canvas.shade(x, y, domeShade(px, py, 1.0, c.light));
      c.canvas.blend(x, y, WHITE, 0.5 * specular(px, py, c.light, 0.3));
    });
  },

  /** A crater: raised red rim, sloping walls and a yellow fibrin / red granulation base with dark spots. */
  ulcer(c) {
    const fibrin = jitterColour(c.rng, [214, 192, 118], 0.07),
      gran = jitterColour(c.rng, [172, 52, 48], 0.08);
    const rimColour = jitterColour(c.rng, [205, 120, 115], 0.06);
    const tex = new FractalNoise(c.rng, 8, 3);
    const r = c.rng.uniform(16, 38) * c.unit;
    const b = makeBlob(c.rng, c.cx, c.cy, r, 0.18, 6);
    forBlob(c.canvas, b, 1.35, (d, px, py, x, y) => {
      const side = (px * -c.light[0] + py * -c.light[1]) / Math.max(0.2, d); // >0: facing the light from outside
      if (d >= 1) {
        c.canvas.blend(x, y, rimColour, 0.85 * clamp((1.35 - d) / 0.2, 0, 1));
        return c.canvas.shade(x, y, 1 + (0.25 * side * (1.35 - d)) / 0.35);
      }
      const n = tex.at(x / 300, y / 300);
      const floor = mix(fibrin, gran, clamp(0.5 + n * 1.6, 0, 1));
      c.canvas.blend(x, y, d < 0.7 ? floor : mix(floor, gran, (d - 0.7) / 0.3), 1);
      c.canvas.shade(x, y, (d > 0.6 ? 1 - 0.3 * side : 0.92) * (n < -0.4 ? 0.65 : 1)); // walls lit from inside
    });
  },

  /** Fine, branching, bright-red vessels on faintly reddened skin. */
  telangiectasia(c) {
    const colour = jitterColour(c.rng, [186, 36, 58], 0.08);
    const flush = makeBlob(c.rng, c.cx, c.cy, 40 * c.unit, 0.3);
    forBlob(c.canvas, flush, 1, (d, _px, _py, x, y) => c.canvas.blend(x, y, [215, 110, 110], 0.12 * (1 - d)));
    for (let i = c.rng.int(3, 8); i > 0; i--) {
      const start: [number, number] = [c.cx + c.rng.normal(0, 18 * c.unit), c.cy + c.rng.normal(0, 18 * c.unit)];
      const trunk = wanderingPath(c.rng, start[0], start[1], c.rng.uniform(0, 6.3), 0.12, 4 * c.unit, c.rng.int(8, 18));
      const width = c.rng.uniform(0.6, 1.3) * c.unit,
        alpha = c.rng.uniform(0.6, 0.9);
      c.canvas.path(trunk, width, colour, alpha);
      for (let j = c.rng.int(0, 3); j > 0; j--) {
        const from = trunk[c.rng.int(1, trunk.length - 1)];
        const branch = wanderingPath(c.rng, from[0], from[1], c.rng.uniform(0, 6.3), 0.15, 3 * c.unit, c.rng.int(3, 8));
        c.canvas.path(branch, width * 0.7, colour, alpha * 0.9);
      }
    }
  },
};

/** Paints one lesion type centred at (cx, cy). */
export function paintLesion(
  canvas: Canvas,
  lesion: Lesion,
  rng: Rng,
  unit: number,
  light: Light,
  skin: RGB,
  cx: number,
  cy: number,
): void {
  PAINTERS[lesion]({ canvas, rng, unit, light, skin, cx, cy });
}
