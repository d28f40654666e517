// The feature cache: hits and misses, what the key is sensitive to (content, views, preprocessing, backbone) and
// what it is not (file name, list position), exact agreement with the trunk run directly, damaged entries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CAFFE_PREPROCESSING, centerCrop, tenCrop, type Preprocessing } from '../../src/image/index.ts';
import { backboneId, openBackbone, type Backbone, type BackboneSpec } from '../../src/train/backbone.ts';
import { CENTER_VIEW, FeatureCache, viewSetId, type ViewSet } from '../../src/train/features.ts';
import { demoSet, tempDir } from './fixture.ts';

const PREP: Preprocessing = {
  ...CAFFE_PREPROCESSING,
  mean: [...CAFFE_PREPROCESSING.mean],
  size: 32,
  resizeShorter: 36,
};
const TINY: BackboneSpec = { trunk: 'tiny', imageSize: 32, seed: 0 };
const TRAIN: ViewSet = { kind: 'train', views: 3, seed: 0, jitter: { min: 36, max: 48 } };

/** A cache that counts how often it had to open the backbone. */
function counting(dir: string, extra: { prep?: Preprocessing; backbone?: BackboneSpec } = {}) {
  const opened = { count: 0 };
  const cache = new FeatureCache({
    dir,
    backbone: extra.backbone ?? TINY,
    prep: extra.prep ?? PREP,
    threads: 1,
    openBackbone: (spec) => {
      opened.count++;
      return openBackbone(spec, { threads: 1 });
    },
  });
  return { cache, opened };
}

test('miss, then hit from a fresh cache object: identical features, the backbone is never opened again', async () => {
  const demo = await demoSet();
  const images = demo.loaded.samples.slice(0, 5);
  const dir = await tempDir('dermtl-cache-');
  const first = counting(dir);
  const a = await first.cache.features(images, TRAIN);
  await first.cache.close();
  assert.deepEqual(first.cache.stats, { hits: 0, misses: 5 });
  assert.equal(first.opened.count, 1);
  assert.equal(a.views, 3);
  assert.equal(a.dim, 64);
  assert.equal(a.data.length, 5 * 3 * 64);
  assert.ok(a.data.some((v) => v !== 0) && a.data.every(Number.isFinite));

  const second = counting(dir);
  const b = await second.cache.features(images, TRAIN);
  assert.deepEqual(second.cache.stats, { hits: 5, misses: 0 });
  assert.equal(second.opened.count, 0);
  assert.deepEqual(b.data, a.data);
  const files = await readdir(join(dir, backboneId(TINY), viewSetId(TRAIN, PREP)), { recursive: true });
  assert.equal(files.filter((f) => f.endsWith('.f32')).length, 5);
});

test('the key follows the image content, not its name or position; views differ from one another', async () => {
  const demo = await demoSet();
  const [x, y] = demo.loaded.samples;
  const dir = await tempDir('dermtl-cache-');
  const copy = join(dir, 'renamed-copy.jpg');
  await copyFile(x.path, copy);
  const { cache } = counting(dir);
  const one = await cache.features([x, y], TRAIN);
  const swapped = await cache.features([{ path: copy }, x], TRAIN);
  assert.deepEqual(cache.stats, { hits: 2, misses: 2 }, 'the copy and x are hits');
  assert.deepEqual(swapped.data.subarray(0, 3 * 64), one.data.subarray(0, 3 * 64));
  assert.deepEqual(swapped.data.subarray(3 * 64), one.data.subarray(0, 3 * 64));
  const view = (k: number) => one.data.subarray(k * 64, (k + 1) * 64);
  assert.notDeepEqual(view(0), view(1), 'scaleJitter views of one image differ');
  assert.notDeepEqual(view(1), view(2));
  await cache.close();
});

test('the key is sensitive to view seed, count, jitter, preprocessing and backbone', async () => {
  const demo = await demoSet();
  const images = demo.loaded.samples.slice(0, 2);
  const dir = await tempDir('dermtl-cache-');
  const base = counting(dir);
  const ref = await base.cache.features(images, TRAIN);
  for (const set of [
    { ...TRAIN, seed: 1 },
    { ...TRAIN, views: 2 },
    { ...TRAIN, jitter: { min: 36, max: 40 } },
    { kind: 'tenCrop' } as ViewSet,
  ]) {
    const before = base.cache.stats.misses;
    const f = await base.cache.features(images, set);
    assert.equal(base.cache.stats.misses - before, 2, `${JSON.stringify(set)} must miss`);
    if (set.kind === 'train' && set.views === 3) assert.notDeepEqual(f.data, ref.data);
  }
  await base.cache.close();
  const otherPrep = counting(dir, { prep: { ...PREP, resizeShorter: 40 } });
  await otherPrep.cache.features(images, { kind: 'tenCrop' });
  assert.equal(otherPrep.cache.stats.misses, 2);
  await otherPrep.cache.close();
  const otherTrunk = counting(dir, { backbone: { ...TINY, seed: 5 } });
  assert.notEqual(otherTrunk.cache.backboneId, base.cache.backboneId);
  const g = await otherTrunk.cache.features(images, TRAIN);
  assert.equal(otherTrunk.cache.stats.misses, 2);
  assert.notDeepEqual(g.data, ref.data, 'another random trunk gives other features');
  await otherTrunk.cache.close();
});

test('tenCrop features equal the trunk run on tenCrop views; view 4 is the centre crop', async () => {
  const demo = await demoSet();
  const s = demo.loaded.samples[3];
  const dir = await tempDir('dermtl-cache-');
  const { cache } = counting(dir);
  const f = await cache.features([s], { kind: 'tenCrop' });
  await cache.close();
  const backbone: Backbone = await openBackbone(TINY, { threads: 1 });
  const views = await tenCrop(s.path, { prep: PREP });
  const direct = await backbone.run(views.data, 10);
  const center = await centerCrop(s.path, { prep: PREP });
  assert.deepEqual(
    center.data,
    views.data.subarray(CENTER_VIEW * 3 * 32 * 32, (CENTER_VIEW + 1) * 3 * 32 * 32),
    'centre crop pixels = tenCrop view 4',
  );
  await backbone.release();
  assert.deepEqual(f.data, direct);
});

test('a damaged cache entry is a miss: recomputed and replaced, never read as features', async () => {
  const demo = await demoSet();
  const s = demo.loaded.samples[0];
  const dir = await tempDir('dermtl-cache-');
  const first = counting(dir);
  const good = await first.cache.features([s], TRAIN);
  const file = first.cache.entryPath(await first.cache.contentHash(s.path), TRAIN);
  await first.cache.close();
  await writeFile(file, Buffer.from('truncated'));
  const again = counting(dir);
  const f = await again.cache.features([s], TRAIN);
  assert.deepEqual(again.cache.stats, { hits: 0, misses: 1 });
  assert.deepEqual(f.data, good.data);
  await again.cache.close();
  const third = counting(dir);
  await third.cache.features([s], TRAIN);
  assert.deepEqual(third.cache.stats, { hits: 1, misses: 0 }, 'the replaced entry is good');
});

test('an abort signal stops caching after the current image; what was computed stays cached', async () => {
  const demo = await demoSet();
  const images = demo.loaded.samples.slice(5, 8);
  const dir = await tempDir('dermtl-cache-');
  const ac = new AbortController();
  const cache = new FeatureCache({
    dir,
    backbone: TINY,
    prep: PREP,
    threads: 1,
    signal: ac.signal,
    progress: () => Object.assign((done: number) => (done === 1 ? ac.abort() : undefined), { stop: () => {} }),
  });
  await assert.rejects(cache.features(images, TRAIN), (e: Error & { exitCode?: number }) => {
    assert.match(e.message, /stopped while caching features: 1 of 3 image\(s\) done \(they stay cached\)/);
    assert.equal(e.exitCode, 130);
    return true;
  });
  await cache.close();
  const again = counting(dir);
  await again.cache.features(images, TRAIN);
  assert.deepEqual(again.cache.stats, { hits: 1, misses: 2 });
  await again.cache.close();
});
