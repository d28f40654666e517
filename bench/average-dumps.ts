// Pooled mAP-class of the mean of several frozen-explore.ts --dump score files (same images, same order).
//   node --import tsx bench/average-dumps.ts --manifest M.csv A.json B.json ...
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadManifest } from '../src/data/manifest.ts';
import { evaluate } from '../src/metrics/metrics.ts';
import { labelsFor } from '../src/train/targets.ts';

const { values: a, positionals } = parseArgs({ options: { manifest: { type: 'string' } }, allowPositionals: true });
const manifest = await loadManifest(a.manifest!);
const byImage = new Map(manifest.samples.map((s) => [s.image, s]));
const labels = labelsFor('lesion', manifest.samples).lesion;
const dumps = await Promise.all(
  positionals.map(async (f) => JSON.parse(await readFile(f, 'utf8')) as { images: string[]; scores: number[][] }),
);
const images = dumps[0].images;
const logit = (p: number) => Math.log(Math.max(p, 1e-12) / Math.max(1 - p, 1e-12));
const mean = images.map((_, i) =>
  Float64Array.from(dumps[0].scores[i], (_, j) => dumps.reduce((s, d) => s + logit(d.scores[i][j]), 0) / dumps.length),
);
const samples = images.map((im) => byImage.get(im)!);
const score = (sc: Float64Array[]) =>
  evaluate(samples, {
    images,
    lesionLabels: labels,
    locationLabels: [],
    lesion: sc,
    location: samples.map(() => new Float64Array(0)),
  }).lesion!.mapClass!;
for (const [k, d] of dumps.entries())
  console.log(`${positionals[k]}: ${score(d.scores.map((r) => Float64Array.from(r))).toFixed(4)}`);
console.log(`mean logit of ${dumps.length}: pooled mAP-class ${score(mean).toFixed(4)}`);
