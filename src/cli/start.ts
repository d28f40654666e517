// `npm start` (dermtl start): the job that runs the layers below one after the other (demo data -> statistics ->
// Figure 1 -> the cross-validation study -> the default model), so it lives with the commands, above eval and report.
import { access } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { generateDemo } from '../data/demo/generate.ts';
import { loadManifest } from '../data/manifest.ts';
import { formatStats, manifestStats, type ManifestStats } from '../data/statistics.ts';
import { runStudyWithStopSignals, type StudyOutcome } from '../eval/study.ts';
import { cvCommand, unitDir } from '../eval/studyPlan.ts';
import { loadModel, MODEL_FILES, saveModel } from '../models/modelFile.ts';
import { RUN_FILES } from '../train/run.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { writeFigure1 } from '../report/figure1.ts';
import { formatTable1, REPORT_FILES, writeStudyReport } from '../report/study/index.ts';
import { DEMO_STUDY } from './demoStudy.ts';

export { DEMO_STUDY };

export interface StartOptions {
  /** Dataset folder with a manifest.csv; synthetic demo data is generated there when it has none. */
  data: string;
  /** Where the figures go. */
  out: string;
  /** Demo-data settings, used only when the data is generated. */
  n: number;
  seed: number;
  size: number;
  /** Image-generation progress (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Run the cross-validation study into <out>/study (default true). */
  study?: boolean;
  /** Folds of the study (default DEMO_STUDY.folds). */
  folds?: number;
  /** A training config file for the study instead of the demo's <out>/cv-config.json. */
  configFile?: string;
  /** Discard an earlier study of other settings in <out>/study. */
  force?: boolean;
  /** Progress bars of the study on stderr (default true). */
  progress?: boolean;
  /** Where the readable report lines go (default: stdout). */
  log?: (line: string) => void;
}

export interface StartResult {
  manifest: string;
  generated: boolean;
  stats: ManifestStats;
  figures: { svg: string; png: string; json: string };
  /** The study, when it was run. */
  study?: StudyOutcome;
}

/**
 * What `npm start` does: make sure there is a dataset (the synthetic demo one by default), summarise it, draw
 * Figure 1, then run the cross-validation study (`dermtl cv`, frozen trunk) into <out>/study and print Table 1
 * and the path of report.html. Each step reuses what an earlier run left: the data, the cached features, every
 * finished model/fold.
 */
export async function runStart(opts: StartOptions): Promise<StartResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const manifestFile = join(resolve(opts.data), 'manifest.csv');
  const generated = !(await exists(manifestFile));
  if (generated) {
    log(`no dataset at ${opts.data}: generating ${opts.n} SYNTHETIC demo images (seed ${opts.seed})`);
    const r = await generateDemo(opts.data, {
      n: opts.n,
      seed: opts.seed,
      size: opts.size,
      onProgress: opts.onProgress,
    });
    log(`generated ${r.images} images in ${r.groups} groups in ${(r.ms / 1000).toFixed(1)} s`);
  } else {
    log(`using the dataset at ${opts.data}`);
  }
  const manifest = await loadManifest(manifestFile);
  const stats = manifestStats(manifest);
  log('');
  log(`dataset ${manifestFile}`);
  for (const line of formatStats(stats)) log(line);

  const out = resolve(opts.out);
  const figures = { svg: join(out, 'figure1.svg'), png: join(out, 'figure1.png'), json: join(out, 'figure1.json') };
  await writeFigure1(manifest, figures);
  log('');
  log('Figure 1 (lesion x location co-occurrence):');
  for (const p of Object.values(figures)) log(`  ${p}`);
  if (opts.study === false) return { manifest: manifestFile, generated, stats, figures };

  const study = await runDemoStudy(opts, out, manifestFile, log);
  await writeDefaultModel(study.dir, log);
  log('');
  for (const line of formatTable1(study.results)) log(line);
  log('');
  log(`report: ${join(study.dir, REPORT_FILES.html)}`);
  return { manifest: manifestFile, generated, stats, figures, study };
}

/** `dermtl cv --mode frozen` on the dataset, with the demo's config unless one is given. */
async function runDemoStudy(
  opts: StartOptions,
  out: string,
  manifest: string,
  log: (line: string) => void,
): Promise<StudyOutcome> {
  let configFile = opts.configFile;
  if (!configFile) {
    configFile = join(out, 'cv-config.json');
    await writeFileAtomic(configFile, `${JSON.stringify(DEMO_STUDY.config, null, 2)}\n`);
  }
  const dir = join(out, 'study');
  const folds = opts.folds ?? DEMO_STUDY.folds;
  const rel = (p: string) => relative(process.cwd(), p) || '.';
  const command = cvCommand({
    manifest: rel(manifest),
    out: rel(dir),
    folds,
    mode: 'frozen',
    seed: opts.seed,
    configFile: rel(configFile),
    tta: '10crop',
  });
  log('');
  log(`cross-validation study (${command}):`);
  return runStudyWithStopSignals({
    manifest: rel(manifest),
    out: dir,
    folds,
    mode: 'frozen',
    seed: opts.seed,
    configFile,
    tta: '10crop',
    force: opts.force,
    progress: opts.progress,
    command,
    log,
    writeReport: writeStudyReport,
  });
}

/**
 * The study's default model (MTL, fold 0: what dermtl predict and serve use without --model) as a whole model.onnx:
 * its run stored the heads only (frozen trunk), and this one model is made standalone. Returns its folder, or null
 * when the study has no such model; a model that is whole already is left as it is.
 */
export async function writeDefaultModel(
  studyDir: string,
  log: (line: string) => void = () => {},
): Promise<string | null> {
  const dir = join(unitDir(studyDir, 'mtl', 0), RUN_FILES.model);
  if (!(await exists(join(dir, MODEL_FILES.manifest)))) return null;
  const m = await loadModel(dir, { session: false });
  if (!m.manifest.trunk) return dir;
  await saveModel(dir, {
    network: m.network,
    params: m.params(),
    labels: m.labels,
    preprocessing: m.preprocessing,
    config: m.config,
    metrics: m.metrics,
    calibration: m.calibration,
  });
  log(`default model (dermtl predict / serve): ${dir}, written whole (model.onnx)`);
  return dir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
