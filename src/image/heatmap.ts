// Grad-CAM maps back on the photo: bilinear upsampling of the h x w map (7x7 for a 224 view) to the view, the view
// placed where it was cut from the photo, a colour map and the share of a map's mass inside a box. Plain TypeScript
// without Node imports: the web page runs the same code on the maps it computes in the browser.

/** Where the view was cut: a crop of the image resized to width x height (image/crops.ts ViewParams). */
export interface ViewPlacement {
  x: number;
  y: number;
  size: number;
  flip: boolean;
  width: number;
  height: number;
}

/** A raw map as explain.onnx returns it: h x w values (ReLU output, >= 0), row-major. */
export interface RawMap {
  h: number;
  w: number;
  values: ArrayLike<number>;
}

/** The photo region the view covers, in photo pixels (continuous edges). */
export function viewRegion(
  view: ViewPlacement,
  photoWidth: number,
  photoHeight: number,
): { x0: number; y0: number; x1: number; y1: number } {
  const sx = photoWidth / view.width,
    sy = photoHeight / view.height;
  return { x0: view.x * sx, y0: view.y * sy, x1: (view.x + view.size) * sx, y1: (view.y + view.size) * sy };
}

/**
 * The map resampled onto an outWidth x outHeight picture of the photo (the photo at any scale): each
 * pixel centre goes to the resized image, into the view (mirrored for a flipped view), then to map coordinates with
 * half-pixel centres (as an ONNX Resize with align_corners off), sampled bilinearly with edge clamping. Pixels the
 * view does not cover get NaN. Values are the raw map's (not normalised).
 */
export function mapOnPhoto(map: RawMap, view: ViewPlacement, outWidth: number, outHeight: number): Float32Array {
  const out = new Float32Array(outWidth * outHeight);
  const { h, w, values } = map;
  const kx = view.width / outWidth,
    ky = view.height / outHeight;
  for (let oy = 0; oy < outHeight; oy++) {
    const vy = (oy + 0.5) * ky - view.y;
    const inY = vy >= 0 && vy < view.size;
    const my = clamp((vy / view.size) * h - 0.5, 0, h - 1);
    const y0 = Math.floor(my),
      y1 = Math.min(h - 1, y0 + 1),
      fy = my - y0;
    for (let ox = 0; ox < outWidth; ox++) {
      let vx = (ox + 0.5) * kx - view.x;
      if (!inY || vx < 0 || vx >= view.size) {
        out[oy * outWidth + ox] = NaN;
        continue;
      }
      if (view.flip) vx = view.size - vx;
      const mx = clamp((vx / view.size) * w - 0.5, 0, w - 1);
      const x0 = Math.floor(mx),
        x1 = Math.min(w - 1, x0 + 1),
        fx = mx - x0;
      const top = values[y0 * w + x0] + (values[y0 * w + x1] - values[y0 * w + x0]) * fx;
      const bottom = values[y1 * w + x0] + (values[y1 * w + x1] - values[y1 * w + x0]) * fx;
      out[oy * outWidth + ox] = top + (bottom - top) * fy;
    }
  }
  return out;
}

/** Largest value of a map (0 for an all-zero map: no position raised the score). */
export function mapMax(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  return m;
}

/**
 * Share of a picture-sized map's mass (NaN pixels excluded) inside a box given in the picture's pixels (continuous
 * edges; partly covered pixels count by their covered fraction). NaN when the map has no mass.
 */
export function massInBox(
  values: Float32Array,
  width: number,
  height: number,
  box: { x0: number; y0: number; x1: number; y1: number },
): number {
  let inside = 0,
    total = 0;
  for (let y = 0; y < height; y++) {
    const cy = Math.max(0, Math.min(y + 1, box.y1) - Math.max(y, box.y0));
    for (let x = 0; x < width; x++) {
      const v = values[y * width + x];
      if (!(v > 0)) continue;
      total += v;
      if (cy > 0) inside += v * cy * Math.max(0, Math.min(x + 1, box.x1) - Math.max(x, box.x0));
    }
  }
  return total > 0 ? inside / total : NaN;
}

/**
 * Turbo colour map (Mikhailov, Google 2019; the published polynomial fit) for t in [0, 1]: dark blue -> cyan -> green
 * -> yellow -> red. Returns 0-255 RGB.
 */
export function turbo(t: number): [number, number, number] {
  const x = clamp(t, 0, 1);
  const x2 = x * x,
    x3 = x2 * x,
    x4 = x3 * x,
    x5 = x4 * x;
  const r = 0.13572138 + 4.6153926 * x - 42.66032258 * x2 + 132.13108234 * x3 - 152.94239396 * x4 + 59.28637943 * x5;
  const g = 0.09140261 + 2.19418839 * x + 4.84296658 * x2 - 14.18503333 * x3 + 4.27729857 * x4 + 2.82956604 * x5;
  const b = 0.1066733 + 12.64194608 * x - 60.58204836 * x2 + 110.36276771 * x3 - 89.90310912 * x4 + 27.34824973 * x5;
  return [byte(r), byte(g), byte(b)];
}

/**
 * RGBA pixels of a heat layer for a picture-sized map: colour by value / max, opacity 2 * value / max (at most
 * `opacity`), transparent where the view does not reach (NaN) and where the map is 0.
 */
export function heatLayer(values: Float32Array, max: number, opacity = 0.6): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(values.length * 4);
  if (!(max > 0)) return out;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v > 0)) continue;
    const t = Math.min(1, v / max);
    const [r, g, b] = turbo(t);
    out[i * 4] = r;
    out[i * 4 + 1] = g;
    out[i * 4 + 2] = b;
    out[i * 4 + 3] = Math.round(255 * opacity * Math.min(1, 2 * t));
  }
  return out;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function byte(v: number): number {
  return Math.round(clamp(v, 0, 1) * 255);
}
