// `dermtl ensemble RUN_A RUN_B --out RUN_E`: the paper's two-model combination as a run folder of its own. It holds
// no weights, only the two member runs (absolute paths) and their common label lists; `dermtl eval RUN_E` scores the
// same images with both members and takes, per image and label, the max of their scores (ensemble.ts).
import { readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DermtlError, errorList } from '../util/errors.ts';
import {
  RUN_FORMAT,
  RUN_VERSION,
  readFinishedRun,
  readRunInfoIfAny,
  writeRunInfo,
  type RunInfo,
} from '../train/run.ts';

export async function createEnsemble(runA: string, runB: string, out: string): Promise<RunInfo> {
  const [a, b] = [resolve(runA), resolve(runB)];
  const dir = resolve(out);
  if (a === b) throw new DermtlError(`an ensemble needs two different runs; both are ${a}`);
  if (dir === a || dir === b) throw new DermtlError(`--out ${dir} is one of the member runs; choose a new folder`);
  const [ia, ib] = [await readFinishedRun(a), await readFinishedRun(b)];
  const problems: string[] = [];
  const labels = { lesion: [...ia.labels.lesion], location: [...ia.labels.location] };
  for (const kind of ['lesion', 'location'] as const) {
    const [la, lb] = [[...ia.labels[kind]].sort(), [...ib.labels[kind]].sort()];
    const list = (ls: string[]) => (ls.length ? ls.join(', ') : `(no ${kind} head)`);
    // the paper's ensemble, lesion-only + MTL: a head only one member has is left out, the other head max-combined
    if (kind === 'location' && (la.length === 0 || lb.length === 0)) labels.location = [];
    else if (la.join('\n') !== lb.join('\n')) problems.push(`${kind} labels differ: ${list(la)} vs ${list(lb)}`);
  }
  if (!labels.lesion.length && !labels.location.length) problems.push('they share no head');
  if (ia.manifest.hash !== ib.manifest.hash)
    problems.push(`they were trained on different manifests (${ia.manifest.file} vs ${ib.manifest.file})`);
  if (JSON.stringify(ia.folds) !== JSON.stringify(ib.folds)) {
    const f = (i: RunInfo) => (i.folds ? `fold ${i.folds.fold} of ${i.folds.file}` : 'the whole manifest');
    problems.push(
      `they were trained on different parts (${f(ia)} vs ${f(ib)}): one member's test images would be the other's training images`,
    );
  }
  if (problems.length) throw errorList(`cannot ensemble ${a} and ${b}`, problems);
  if (await readRunInfoIfAny(dir)) throw new DermtlError(`${dir} already holds a run; choose another --out`);
  if ((await readdir(dir).catch(() => [])).length)
    throw new DermtlError(`${dir} is not empty; choose a new folder for the ensemble`);
  const info: RunInfo = {
    format: RUN_FORMAT,
    version: RUN_VERSION,
    kind: 'ensemble',
    status: 'done',
    createdAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    task: labels.lesion.length && labels.location.length ? 'mtl' : labels.lesion.length ? 'lesion' : 'location',
    labels,
    manifest: ia.manifest,
    folds: ia.folds,
    mode: null,
    seed: null,
    config: null,
    split: null,
    backbone: null,
    members: [a, b],
    timings: {},
  };
  await writeRunInfo(dir, info);
  return info;
}
