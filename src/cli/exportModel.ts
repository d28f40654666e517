// `dermtl export`: a run's model folder (or any model folder) rewritten with the whole network in model.onnx.
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadModel, MODEL_FILES, saveModel } from '../models/modelFile.ts';
import { readFinishedRun, runFile, RUN_FILES } from '../train/run.ts';
import { DermtlError } from '../util/errors.ts';

const isFile = (p: string) =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  );

/** The model folder of `source`: a finished run's model/, or `source` itself when it is a model folder. */
async function modelFolderOf(source: string): Promise<string> {
  if (await isFile(join(source, RUN_FILES.run))) {
    const info = await readFinishedRun(source);
    if (info.kind !== 'model')
      throw new DermtlError(
        `${source}: an ensemble run has no model of its own; export its member runs (${(info.members ?? []).join(', ')})`,
      );
    return runFile(source, 'model');
  }
  if (await isFile(join(source, MODEL_FILES.manifest))) return source;
  throw new DermtlError(
    `${source}: neither a run folder (${RUN_FILES.run}) nor a model folder (${MODEL_FILES.manifest})`,
  );
}

/** Refuses an --out that holds something other than a dermtl model folder (which is replaced). */
async function checkOut(out: string): Promise<void> {
  const kind = await stat(out).then(
    (s) => (s.isDirectory() ? 'dir' : 'file'),
    () => null,
  );
  if (kind === null) return;
  if (kind === 'file') throw new DermtlError(`--out ${out}: a file; give a folder to write the model into`);
  if ((await readdir(out)).length === 0 || (await isFile(join(out, MODEL_FILES.manifest)))) return;
  throw new DermtlError(
    `--out ${out}: a folder that is neither empty nor a dermtl model folder; refusing to replace it`,
  );
}

export async function exportModel(source: string, out: string): Promise<{ out: string; from: string; bytes: number }> {
  const from = await modelFolderOf(source);
  await checkOut(out);
  const m = await loadModel(from, { session: false });
  await saveModel(resolve(out), {
    network: m.network,
    params: m.params(),
    labels: m.labels,
    preprocessing: m.preprocessing,
    config: m.config,
    metrics: m.metrics,
    calibration: m.calibration,
  });
  return { out: resolve(out), from, bytes: (await stat(join(out, MODEL_FILES.onnx))).size };
}
