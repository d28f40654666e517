// Helpers for the models tests: tiny TF.js layers-model folders and npm tarballs, made in a temp dir.
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Rng } from '../../src/util/rng.ts';
import type { PinnedFile, PretrainedSource } from '../../src/models/pretrained.ts';

export interface FakeWeight {
  name: string;
  shape: number[];
  dtype?: string;
}

export interface FakeGroup {
  weights: FakeWeight[];
  /** Shard size in bytes (TF.js uses 4 MiB); the last shard takes the rest. */
  shardBytes: number;
}

export function tempDir(prefix = 'dermtl-models-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Writes model.json plus group{g}-shard{i}of{n}.bin files holding random float32 values and returns
 * the values each weight must parse to.
 */
export async function writeFakeTfjs(dir: string, groups: FakeGroup[], seed = 1): Promise<Map<string, Float32Array>> {
  await mkdir(dir, { recursive: true });
  const rng = Rng.seeded(seed);
  const expected = new Map<string, Float32Array>();
  const manifest = [];
  for (const [gi, g] of groups.entries()) {
    const arrays = g.weights.map((w) => {
      const a = Float32Array.from({ length: w.shape.reduce((x, y) => x * y, 1) }, () => rng.normal());
      expected.set(w.name, a);
      return a;
    });
    const bytes = Buffer.concat(arrays.map((a) => Buffer.from(a.buffer)));
    const n = Math.max(1, Math.ceil(bytes.length / g.shardBytes));
    const paths = [];
    for (let i = 0; i < n; i++) {
      const p = `group${gi + 1}-shard${i + 1}of${n}.bin`;
      await writeFile(join(dir, p), bytes.subarray(i * g.shardBytes, (i + 1) * g.shardBytes));
      paths.push(p);
    }
    manifest.push({
      paths,
      weights: g.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype ?? 'float32' })),
    });
  }
  const modelJson = { format: 'layers-model', modelTopology: {}, weightsManifest: manifest };
  await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
  return expected;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Packs `files` (path inside the package -> content) as an npm tarball (package/ root) and returns its
 * path, SRI integrity and a PretrainedSource that pins every file, as RESNET50_KERAS does for the real one.
 */
export async function fakePackage(
  dir: string,
  files: Record<string, Uint8Array | string>,
  publish: Record<string, string>,
): Promise<{ tgz: string; source: PretrainedSource }> {
  const root = join(dir, 'src', 'package');
  await mkdir(root, { recursive: true });
  await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'fake-weights', version: '1.0.0' }));
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(root, p, '..'), { recursive: true });
    await writeFile(join(root, p), content);
  }
  const tgz = join(dir, 'fake-weights-1.0.0.tgz');
  execFileSync('tar', ['czf', tgz, '-C', join(dir, 'src'), 'package']);
  const integrity = 'sha512-' + createHash('sha512').update(readFileSync(tgz)).digest('base64');
  const pinned: PinnedFile[] = Object.entries(publish).map(([name, from]) => {
    const c = files[from];
    return { name, from, bytes: Buffer.byteLength(c), sha256: sha256(c) };
  });
  return {
    tgz,
    source: {
      title: 'fake weights',
      spec: `file:${tgz}`,
      integrity,
      tarballBytes: readFileSync(tgz).length,
      cacheName: 'fake-weights',
      localDirEnv: 'DERMTL_FAKE_DIR',
      files: pinned,
    },
  };
}
