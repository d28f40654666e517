import { Rng } from '../../../src/util/rng.ts';
import { planDemo } from '../../../src/data/demo/plan.ts';
import { drawScene, renderView } from '../../../src/data/demo/scene.ts';
import type { Site } from '../../../src/data/demo/table.ts';

/**
 * Simple hand-made image features of a lesion-free photo of a site: chromaticity, brightness, contrast,
 * dark-pixel fraction (hair) and fine-detail energy (ridges, pores). If a nearest-centroid rule on these
 * separates the sites, a CNN can surely learn the location from the background.
 */
export function siteFeatures(site: Site, index: number, size: number): number[] {
  const view = planDemo(1, index)[0].views[0];
  const scene = { index, group: 'g', site, lesions: [], views: [view] };
  const { data, width, height } = renderView(
    drawScene(scene, 11, size),
    { ...view, aspect: 1 },
    size,
    Rng.seeded(index),
  );
  let r = 0,
    g = 0,
    b = 0,
    l2 = 0,
    dark = 0,
    detail = 0;
  const n = width * height;
  const lum = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const R = data[3 * i],
      G = data[3 * i + 1],
      B = data[3 * i + 2];
    r += R;
    g += G;
    b += B;
    lum[i] = 0.299 * R + 0.587 * G + 0.114 * B;
    l2 += lum[i] * lum[i];
  }
  const mean = (r + g + b) / 3 / n,
    lumMean = lum.reduce((a, v) => a + v, 0) / n;
  for (let i = 0; i < n; i++) if (lum[i] < 0.75 * lumMean) dark++;
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const i = y * width + x;
      detail += Math.abs(4 * lum[i] - lum[i - 1] - lum[i + 1] - lum[i - width] - lum[i + width]);
    }
  }
  const sum = r + g + b;
  return [r / sum, g / sum, mean / 255, Math.sqrt(l2 / n - lumMean * lumMean) / 255, dark / n, detail / n / 255];
}

/** Mean of each feature over rows. */
export function centroid(rows: number[][]): number[] {
  return rows[0].map((_, k) => rows.reduce((s, r) => s + r[k], 0) / rows.length);
}
