// The prior and linear baselines (src/eval/baselines.ts) on the folds of an existing `dermtl cv` study, from the
// feature cache (its ten-crop features must be cached already; nothing is written into the study): pooled
// out-of-fold mAP-class, mAP-image, top-1, top-3, the lambdas chosen per fold, and the wall time.
//   node --import tsx bench/baselines.ts --study /tmp/d7/study-base [--tta 10crop|center] [--verbose]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadManifest } from '../src/data/manifest.ts';
import { loadFolds } from '../src/data/splits.ts';
import { linearBaseline, priorScores, type CropFeatures } from '../src/eval/baselines.ts';
import { evaluate } from '../src/metrics/metrics.ts';
import { concatTables } from '../src/eval/study.ts';
import { readStudyFile } from '../src/eval/studyPlan.ts';
import type { ScoreTable } from '../src/metrics/scores.ts';
import type { TrainConfig, Tta } from '../src/train/config.ts';
import { featureCacheFor } from '../src/train/frozen.ts';
import { labelsFor } from '../src/train/targets.ts';
import { preprocessingOf } from '../src/train/trainTask.ts';

const { values: a } = parseArgs({
  options: { study: { type: 'string' }, tta: { type: 'string' }, verbose: { type: 'boolean', default: false } },
});
if (!a.study) throw new Error('--study STUDY is required');
const study = await readStudyFile(a.study);
if (!study) throw new Error(`${a.study} holds no study.json`);
const config = { ...study.settings.config, task: 'mtl' } as TrainConfig;
const tta = (a.tta ?? study.settings.tta) as Tta;
const manifest = await loadManifest(study.settings.manifest);
const folds = (await loadFolds(join(a.study, 'folds.json'), manifest)).splits;
const labels = labelsFor('mtl', manifest.samples);

const t0 = performance.now();
const cache = featureCacheFor({
  config,
  prep: preprocessingOf(config),
  progress: () => Object.assign(() => {}, { stop: () => {} }),
});
const views = await cache.features(manifest.samples, { kind: 'tenCrop' });
await cache.close();
const features: CropFeatures = { index: new Map(manifest.samples.map((s, i) => [s.image, i])), views };
const t1 = performance.now();
console.log(
  `${manifest.samples.length} images, ${labels.lesion.length} lesion labels, ${labels.location.length} locations; ten-crop features ${views.dim}-d (${cache.stats.hits} cached, ${cache.stats.misses} computed) in ${((t1 - t0) / 1000).toFixed(1)} s; tta ${tta}`,
);

const prior: ScoreTable[] = [];
const linear: ScoreTable[] = [];
for (const f of folds) {
  prior.push(priorScores(f.train, f.test, labels));
  const s = performance.now();
  const r = await linearBaseline({
    features,
    train: f.train,
    test: f.test,
    labels,
    validation: { fraction: config.validation.fraction, seed: config.seed },
    tta,
    threads: config.runtime.threads ?? undefined,
    log: a.verbose ? (l) => console.log(`  ${l}`) : undefined,
  });
  linear.push(r.table);
  const c = r.choice;
  const path = c.path
    .map((p) => `${p.lambda}: ${p.lesionMapClass?.toFixed(3) ?? 'n/a'}/${p.locationLogLoss.toFixed(3)}`)
    .join(', ');
  console.log(
    `fold ${f.fold}: lesion lambda ${c.lesionLambda}, location lambda ${c.locationLambda} (${c.rule}, ${c.validationImages} validation images; validation mAP-class/log-loss ${path}); ${((performance.now() - s) / 1000).toFixed(1)} s`,
  );
}
const t2 = performance.now();
const byImage = new Map(manifest.samples.map((s) => [s.image, s]));
for (const [name, tables] of [
  ['prior', prior],
  ['linear', linear],
] as const) {
  const all = concatTables(tables);
  const ev = evaluate(
    all.images.map((i) => byImage.get(i)!),
    all,
  );
  const n = (x: number | null | undefined) => (x == null ? 'n/a' : x.toFixed(3));
  console.log(
    `${name.padEnd(6)} pooled: mAP-class ${n(ev.lesion?.mapClass)}, mAP-image ${n(ev.lesion?.mapImage)}, top-1 ${n(ev.location?.top1)}, top-3 ${n(ev.location?.top3)}`,
  );
}
console.log(
  `wall time: features ${((t1 - t0) / 1000).toFixed(1)} s, baselines of ${folds.length} folds ${((t2 - t1) / 1000).toFixed(1)} s`,
);
