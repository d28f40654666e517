import { basename } from 'node:path';
import { manifestHash } from '../data/manifest.ts';
import { cooccurrence } from '../data/statistics.ts';
import type { Manifest } from '../data/types.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { DermtlError } from '../util/errors.ts';
import { correlationHeatmapSpec, type Cooccurrence } from './figures/correlation.ts';
import { renderVegaLite } from './render.ts';

export interface Figure1Outputs {
  svg: string;
  png?: string;
  /** The matrix itself: lesions, locations, counts, lesionTotals, R. */
  json?: string;
}

/** Figure 1 for a manifest: the lesion x location heatmap as SVG (and PNG), the numbers as JSON. */
export async function writeFigure1(manifest: Manifest, out: Figure1Outputs): Promise<Cooccurrence> {
  checkExtension(out.svg, '.svg', '--out');
  if (out.png) checkExtension(out.png, '.png', '--png');
  if (out.json) checkExtension(out.json, '.json', '--json');
  const m = cooccurrence(manifest.samples);
  if (m.lesions.length === 0)
    throw new DermtlError(`${manifest.file}: no image has a lesion label, so there is nothing to plot`);
  await renderVegaLite(correlationHeatmapSpec(m), { svg: out.svg, png: out.png });
  if (out.json) {
    const doc = { manifest: basename(manifest.file), manifestHash: manifestHash(manifest), ...m };
    await writeFileAtomic(out.json, JSON.stringify(doc, null, 2) + '\n');
  }
  return m;
}

function checkExtension(path: string, ext: string, flag: string): void {
  if (!path.toLowerCase().endsWith(ext))
    throw new DermtlError(`${flag} ${path}: expected a file name ending in ${ext}`);
}
