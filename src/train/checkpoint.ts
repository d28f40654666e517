// Checkpoints: params + optimizer state + scheduler state + the caller's progress JSON (epoch, position in
// the data order, seeds), in a folder per save under a root:
//
//   <root>/latest.json                 { checkpoint: "step-000000120", step: 120, previous: [...] }
//   <root>/step-000000120/params.bin   tensor file (see tensorFile.ts)
//   <root>/step-000000120/optimizer.bin
//   <root>/step-000000120/checkpoint.json
//
// A save writes a NEW folder (writeDirAtomic: complete or absent), then switches latest.json with one
// atomic rename, then prunes folders it made earlier beyond `keep`. A crash at any point leaves
// latest.json naming a complete checkpoint; the previous good one is never touched before the switch.
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../util/atomic.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { sameShape, shapeStr } from '../graph/types.ts';
import { encodeTensors, readNamed, readTensorFile } from './tensorFile.ts';
import { encodeSgdState, firstNonFinite, readSgdState, type SgdMomentum } from './optimizer.ts';
import { isPlateauState, type PlateauState, type ReduceOnPlateau } from './scheduler.ts';

/** What a checkpoint holds; a Trainer is one. */
export interface TrainingState {
  readonly params: ReadonlyMap<string, Float32Array>;
  readonly optimizer: SgdMomentum;
  readonly scheduler?: ReduceOnPlateau;
}

export interface CheckpointInfo {
  dir: string;
  step: number;
  progress: unknown;
}

interface Latest {
  checkpoint: string;
  step: number;
  previous: string[];
}
interface Manifest {
  format: 'dermtl-checkpoint';
  version: 1;
  step: number;
  lr: number;
  savedAt: string;
  scheduler: PlateauState | null;
  progress: unknown;
}

const LATEST = 'latest.json';
const MANIFEST = 'checkpoint.json';

/**
 * Saves a checkpoint under `root` and returns its folder. Refuses (DermtlError) when any param or
 * momentum value is not finite, so a diverged run can never replace the last good checkpoint.
 * `keep` (default 2): how many of this root's checkpoints to keep, the new one included.
 */
export async function saveCheckpoint(
  root: string,
  state: TrainingState,
  progress: unknown = null,
  opts: { keep?: number } = {},
): Promise<string> {
  const keep = opts.keep ?? 2;
  if (!(Number.isInteger(keep) && keep >= 1))
    throw new DermtlError(`checkpoint keep must be a whole number >= 1, got ${keep}`);
  const opt = state.optimizer.state();
  const params = opt.params.map((p) => ({ name: p.name, shape: p.shape, data: state.params.get(p.name)! }));
  for (const p of params) {
    const what =
      firstNonFinite(p.data) >= 0 ? 'param' : firstNonFinite(opt.buffers.get(p.name)!) >= 0 ? 'momentum buffer of' : '';
    if (what)
      throw new DermtlError(
        `${what} ${p.name} is not finite at step ${opt.step}; refusing to replace the last good checkpoint in ${root}`,
      );
  }
  const manifest: Manifest = {
    format: 'dermtl-checkpoint',
    version: 1,
    step: opt.step,
    lr: opt.lr,
    savedAt: new Date().toISOString(),
    scheduler: state.scheduler?.state() ?? null,
    progress,
  };
  const old = await readLatest(root);
  const name = await freshName(root, opt.step);
  await writeDirAtomic(join(root, name), async (tmp) => {
    await writeFile(join(tmp, 'params.bin'), encodeTensors(params, { kind: 'params' }));
    await writeFile(join(tmp, 'optimizer.bin'), encodeSgdState(opt));
    await writeFile(join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  });
  const kept = old ? [old.checkpoint, ...old.previous] : [];
  const latest: Latest = { checkpoint: name, step: opt.step, previous: kept.slice(0, keep - 1) };
  await writeFileAtomic(join(root, LATEST), JSON.stringify(latest, null, 2) + '\n');
  for (const dropped of kept.slice(keep - 1)) await rm(join(root, dropped), { recursive: true, force: true });
  return join(root, name);
}

/**
 * The checkpoint folder `path` names: `path` itself when it is a checkpoint folder, else the one its
 * latest.json points to; undefined when `path` holds no checkpoint yet (a fresh run).
 */
export async function findCheckpoint(path: string): Promise<string | undefined> {
  if (await exists(join(path, MANIFEST))) return path;
  const latest = await readLatest(path);
  if (!latest) return undefined;
  const dir = join(path, latest.checkpoint);
  if (!(await exists(join(dir, MANIFEST))))
    throw new DermtlError(
      `${join(path, LATEST)} names checkpoint ${latest.checkpoint}, but ${join(dir, MANIFEST)} is missing`,
    );
  return dir;
}

/**
 * Restores params, optimizer and scheduler state in place from the checkpoint at `path` (a root or a
 * checkpoint folder). Returns undefined when there is none yet. Mismatches (param names, shapes,
 * optimizer settings) and missing or truncated files give a DermtlError naming them; the state is only
 * changed once everything has been read and checked.
 */
export async function restoreCheckpoint(path: string, state: TrainingState): Promise<CheckpointInfo | undefined> {
  const dir = await findCheckpoint(path);
  if (!dir) return undefined;
  const manifest = await readManifest(join(dir, MANIFEST));
  const paramsFile = join(dir, 'params.bin');
  const { tensors } = await readTensorFile(paramsFile);
  const opt = await readSgdState(join(dir, 'optimizer.bin'));
  checkParams(paramsFile, tensors, state);
  if (opt.step !== manifest.step)
    throw new DermtlError(`${dir}: ${MANIFEST} says step ${manifest.step}, optimizer.bin says ${opt.step}`);
  state.optimizer.loadState(opt, join(dir, 'optimizer.bin')); // checks everything before changing anything
  if (state.scheduler && manifest.scheduler) state.scheduler.loadState(manifest.scheduler, join(dir, MANIFEST));
  for (const t of tensors) state.params.get(t.name)!.set(t.data);
  return { dir, step: manifest.step, progress: manifest.progress };
}

function checkParams(
  file: string,
  tensors: readonly { name: string; shape: readonly number[]; data: Float32Array }[],
  state: TrainingState,
): void {
  const problems: string[] = [];
  const saved = new Map(tensors.map((t) => [t.name, t]));
  for (const p of state.optimizer.params) {
    const t = saved.get(p.name);
    if (!t) problems.push(`param ${p.name} ${shapeStr(p.shape)} is missing`);
    else if (!sameShape(t.shape, p.shape))
      problems.push(
        `param ${p.name} has shape ${shapeStr(t.shape)} in the checkpoint, the model wants ${shapeStr(p.shape)}`,
      );
    else if (firstNonFinite(t.data) >= 0) problems.push(`param ${p.name} is not finite`);
  }
  const mine = new Set(state.optimizer.params.map((p) => p.name));
  for (const name of saved.keys()) if (!mine.has(name)) problems.push(`param ${name} is not in this model`);
  if (problems.length) throw errorList(`${file} does not fit this model`, problems);
}

async function readManifest(path: string): Promise<Manifest> {
  const m = (await readJson(path)) as Partial<Manifest>;
  if (m?.format !== 'dermtl-checkpoint' || m.version !== 1 || !Number.isInteger(m.step)) {
    throw new DermtlError(`${path}: not a dermtl checkpoint manifest (format/version/step missing or unknown)`);
  }
  if (m.scheduler !== null && !isPlateauState(m.scheduler))
    throw new DermtlError(`${path}: scheduler state is malformed`);
  return m as Manifest;
}

async function readLatest(root: string): Promise<Latest | undefined> {
  const path = join(root, LATEST);
  if (!(await exists(path))) return undefined;
  const l = (await readJson(path)) as Partial<Latest>;
  // Names are checked before they are ever joined to a path that is later removed.
  const isName = (n: unknown) => typeof n === 'string' && /^step-\d+(-\d+)?$/.test(n);
  const ok = isName(l?.checkpoint) && Array.isArray(l.previous) && l.previous.every(isName);
  if (!ok) throw new DermtlError(`${path}: malformed (expected { checkpoint: "step-...", step, previous: [...] })`);
  return l as Latest;
}

/** step-000000120, or step-000000120-2 ... when that folder exists (e.g. left by an abandoned run). */
async function freshName(root: string, step: number): Promise<string> {
  const base = `step-${String(step).padStart(9, '0')}`;
  for (let k = 1; ; k++) {
    const name = k === 1 ? base : `${base}-${k}`;
    if (!(await exists(join(root, name)))) return name;
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = (await readNamed(path)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new DermtlError(`${path}: not valid JSON (truncated?)`);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
