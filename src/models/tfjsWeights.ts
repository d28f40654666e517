import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DermtlError, errorList } from '../util/errors.ts';

/** A named weight array, row-major in the layout of its source (Keras: conv HWIO, dense [in, out]). */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

export type WeightMap = Map<string, WeightTensor>;

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}

interface WeightGroup {
  paths: string[];
  weights: WeightSpec[];
}

const FIX = 'Delete the folder and let dermtl download it again, or copy it again from a good source.';

/**
 * Reads a TF.js layers-model folder (model.json + binary shards) into named float32 arrays.
 * Each weightsManifest group is the concatenation of its shards, with the weights laid out back to back
 * in manifest order. Only plain float32 weights are supported.
 */
export async function loadTfjsWeights(folder: string): Promise<WeightMap> {
  const groups = await readManifest(folder);
  const out: WeightMap = new Map();
  for (const [gi, g] of groups.entries()) {
    const bytes = await readGroup(folder, gi, g);
    let offset = 0;
    for (const w of g.weights) {
      const n = count(w.shape);
      // A view, not a copy: the group buffer starts at offset 0 and every weight is a multiple of 4 bytes.
      out.set(w.name, { shape: [...w.shape], data: new Float32Array(bytes.buffer, offset, n) });
      offset += n * 4;
    }
  }
  return out;
}

/** Total number of scalars over all weights. */
export function parameterCount(weights: WeightMap): number {
  let n = 0;
  for (const w of weights.values()) n += w.data.length;
  return n;
}

function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

async function readManifest(folder: string): Promise<WeightGroup[]> {
  const path = join(folder, 'model.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new DermtlError(
      `${path}: cannot read the TF.js model description (${(e as NodeJS.ErrnoException).code}). ${FIX}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DermtlError(`${path}: not valid JSON (${(e as Error).message}); the file is damaged. ${FIX}`);
  }
  const manifest = (json as { weightsManifest?: unknown })?.weightsManifest;
  if (!Array.isArray(manifest) || manifest.length === 0) {
    throw new DermtlError(`${path}: no "weightsManifest" array; this is not a TF.js layers model with weights. ${FIX}`);
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  manifest.forEach((g: Partial<WeightGroup>, gi: number) => {
    if (!Array.isArray(g?.paths) || !g.paths.length || !g.paths.every((p) => typeof p === 'string')) {
      problems.push(`weightsManifest[${gi}]: "paths" must be a non-empty list of shard file names`);
    }
    if (!Array.isArray(g?.weights)) {
      problems.push(`weightsManifest[${gi}]: "weights" must be a list`);
      return;
    }
    for (const w of g.weights) problems.push(...specProblems(w, gi, seen));
  });
  if (problems.length) throw errorList(`${path}: unusable weightsManifest`, problems);
  return manifest as WeightGroup[];
}

function specProblems(w: WeightSpec, gi: number, seen: Set<string>): string[] {
  const where = `weightsManifest[${gi}] weight ${JSON.stringify(w?.name)}`;
  if (typeof w?.name !== 'string') return [`${where}: no name`];
  const p: string[] = [];
  if (seen.has(w.name)) p.push(`${where}: listed twice`);
  seen.add(w.name);
  if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0))
    p.push(`${where}: bad shape ${JSON.stringify(w.shape)}`);
  if (w.dtype !== 'float32') p.push(`${where}: dtype ${JSON.stringify(w.dtype)}, only float32 is supported`);
  if (w.quantization) p.push(`${where}: quantized weights are not supported`);
  return p;
}

/** Reads a group's shards into one buffer after checking that their sizes add up to what the specs need. */
async function readGroup(folder: string, gi: number, g: WeightGroup): Promise<Uint8Array> {
  const need = g.weights.reduce((a, w) => a + count(w.shape) * 4, 0);
  const sizes: number[] = [];
  for (const p of g.paths) {
    const s = await stat(join(folder, p)).catch(() => null);
    if (!s?.isFile()) throw new DermtlError(`${join(folder, p)}: weight shard missing (listed in model.json). ${FIX}`);
    sizes.push(s.size);
  }
  const have = sizes.reduce((a, b) => a + b, 0);
  if (have !== need) throw new DermtlError(sizeMessage(folder, gi, g.paths, sizes, have, need));
  const all = new Uint8Array(need);
  let at = 0;
  for (const p of g.paths) {
    const b = await readFile(join(folder, p));
    all.set(b, at);
    at += b.length;
  }
  if (at !== need) throw new DermtlError(`${folder}: weight shards changed while being read. ${FIX}`);
  return all;
}

/**
 * Names the likely culprit: TF.js writes every shard but the last at one common size, so a shard smaller
 * than that common size (or a last shard off by the difference) is the truncated one.
 */
function sizeMessage(folder: string, gi: number, paths: string[], sizes: number[], have: number, need: number): string {
  const verb = have < need ? 'short' : 'long';
  let culprit = paths[paths.length - 1];
  if (sizes.length > 2) {
    const common = sizes[0] === sizes[1] ? sizes[0] : sizes[2];
    const odd = sizes.slice(0, -1).findIndex((s) => s !== common);
    if (odd >= 0) culprit = paths[odd];
  }
  return (
    `${join(folder, culprit)}: weight shard is ${verb} (group ${gi + 1}'s ${paths.length} shard(s) hold ${have} bytes, ` +
    `model.json needs ${need}; ${Math.abs(need - have)} bytes ${have < need ? 'missing' : 'extra'}). ` +
    `The download was probably interrupted. ${FIX}`
  );
}
