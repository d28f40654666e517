// The study's `lesion-site` model (src/eval/siteCorrection.ts: the lesion-only scores shifted by the training part's
// site log-odds, nothing trained) on an existing `dermtl cv` study, e.g. one run without fusion; nothing is written
// into it. Prints per fold and pooled mAP-class / mAP-image, and the paired difference against lesion-only.
//   node --import tsx bench/site-correction.ts --study /tmp/d7/study-fs1 [--study ...]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadManifest } from '../src/data/manifest.ts';
import { loadFolds } from '../src/data/splits.ts';
import { pairedDifference } from '../src/eval/stats.ts';
import { concatTables } from '../src/eval/study.ts';
import { readStudyFile, unitDir } from '../src/eval/studyPlan.ts';
import { evaluate } from '../src/metrics/metrics.ts';
import { readScores, type ScoreTable } from '../src/metrics/scores.ts';
import { labelsFor } from '../src/train/targets.ts';
import { siteCorrected } from '../src/eval/siteCorrection.ts';

const { values: a } = parseArgs({ options: { study: { type: 'string', multiple: true } } });
if (!a.study?.length) throw new Error('--study STUDY is required (one or more)');

const f3 = (x: number) => x.toFixed(3);
const signed = (x: number) => (x >= 0 ? '+' : '') + f3(x);

for (const dir of a.study) {
  const study = await readStudyFile(dir);
  if (!study) throw new Error(`${dir} holds no study.json`);
  const manifest = await loadManifest(study.settings.manifest);
  const folds = (await loadFolds(join(dir, 'folds.json'), manifest)).splits;
  const byImage = new Map(manifest.samples.map((s) => [s.image, s]));
  const locations = labelsFor('mtl', manifest.samples).location;
  const lesionOnly: ScoreTable[] = [];
  const corrected: ScoreTable[] = [];
  for (let f = 0; f < folds.length; f++) {
    const table: ScoreTable = await readScores(join(unitDir(dir, 'lesion', f), 'scores.csv'));
    lesionOnly.push(table);
    corrected.push(siteCorrected(table, byImage, folds[f].train, locations));
  }
  const ev = (t: ScoreTable) =>
    evaluate(
      t.images.map((i) => byImage.get(i)!),
      t,
    ).lesion!;
  const before = lesionOnly.map(ev);
  const after = corrected.map(ev);
  console.log(`${dir}: ${manifest.samples.length} images, ${folds.length} folds`);
  for (const k of ['mapClass', 'mapImage'] as const) {
    const d = pairedDifference(
      after.map((e) => e[k]!),
      before.map((e) => e[k]!),
      0.95,
    );
    console.log(
      `  ${k}: lesion-only ${f3(ev(concatTables(lesionOnly))[k]!)} -> site-corrected ${f3(ev(concatTables(corrected))[k]!)} pooled; per fold ${after.map((e) => f3(e[k]!)).join(', ')}; difference ${signed(d.mean)} [${signed(d.ci[0])}, ${signed(d.ci[1])}] (95% t over folds)`,
    );
  }
}
