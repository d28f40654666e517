// The activation cache of partial fine-tuning: hits and misses, float16 values equal to the lower trunk run directly
// (rounded), the centre view, what the key is sensitive to (stage, views, preprocessing), foreign entries refused
// before any work, damaged entries recomputed, a stop signal, an entry deleted under a running training.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CAFFE_PREPROCESSING, type Preprocessing } from '../../src/image/index.ts';
import type { TrunkStage } from '../../src/models/resnet.ts';
import { ActivationCache } from '../../src/train/activations.ts';
import type { BackboneSpec } from '../../src/train/backbone.ts';
import { readImage, renderViewSet, type ViewSet } from '../../src/train/features.ts';
import { openLowerTrunk } from '../../src/train/lowerTrunk.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { decodeHalf, encodeHalf } from '../../src/util/float16.ts';
import { demoSet, tempDir } from './fixture.ts';

const PREP: Preprocessing = {
  ...CAFFE_PREPROCESSING,
  mean: [...CAFFE_PREPROCESSING.mean],
  size: 32,
  resizeShorter: 36,
};
const TINY: BackboneSpec = { trunk: 'tiny', imageSize: 32, seed: 0 };
const TRAIN: ViewSet = { kind: 'train', views: 3, seed: 0, jitter: { min: 36, max: 48 } };
const CENTER: ViewSet = { kind: 'center' };

/** A cache that counts how often it needed the trunk's weights (= had something to compute). */
function counting(
  dir: string,
  extra: { stage?: TrunkStage; prep?: Preprocessing; backbone?: BackboneSpec; signal?: AbortSignal } = {},
) {
  const asked = { count: 0 };
  const cache = new ActivationCache({
    dir,
    backbone: extra.backbone ?? TINY,
    stage: extra.stage ?? 5,
    prep: extra.prep ?? PREP,
    threads: 1,
    signal: extra.signal,
    weights: async () => {
      asked.count++;
      return 'random';
    },
  });
  return { cache, asked };
}

const request = (images: readonly { path: string }[], set: ViewSet) => ({ images, set, label: 'test' });

/** The lower trunk run directly on an image's views, rounded to float16 as the cache stores it. */
async function direct(path: string, hash: string, set: ViewSet, stage: TrunkStage = 5): Promise<Float32Array> {
  const pixels = await renderViewSet(await readImage(path), { path, hash }, set, PREP);
  const trunk = await openLowerTrunk(TINY, stage, 'random', 1);
  const a = await trunk.run(pixels, pixels.length / (3 * 32 * 32));
  await trunk.release();
  const h = new Uint16Array(a.length);
  encodeHalf(a, h);
  const out = new Float32Array(a.length);
  decodeHalf(h, out);
  return out;
}

test('miss, then hit from a fresh cache object; reads equal the lower trunk run directly (float16); centre view', async () => {
  const demo = await demoSet();
  const images = demo.loaded.samples.slice(0, 4);
  const dir = await tempDir('dermtl-act-');
  const first = counting(dir);
  assert.deepEqual(first.cache.shape, [32, 2, 2], 'tiny trunk, 32 px: stage 5 input');
  const [tr, ce] = await first.cache.prepare([request(images, TRAIN), request(images.slice(0, 2), CENTER)]);
  await first.cache.close();
  assert.deepEqual(first.cache.stats, { hits: 0, misses: 6 });
  assert.equal(first.asked.count, 1);
  assert.equal(tr.views, 3);
  assert.equal(ce.views, 1);
  const files = await readdir(join(dir, first.cache.id), { recursive: true });
  assert.equal(files.filter((f) => f.endsWith('.f16')).length, 6);

  const second = counting(dir);
  const [tr2, ce2] = await second.cache.prepare([request(images, TRAIN), request(images.slice(0, 2), CENTER)]);
  assert.deepEqual(second.cache.stats, { hits: 6, misses: 0 });
  assert.equal(second.asked.count, 0, 'nothing computed');
  const len = second.cache.viewLength;
  const out = new Float32Array(4 * len);
  await second.cache.read(
    tr2,
    [
      { image: 2, view: 1 },
      { image: 0, view: 2 },
      { image: 2, view: 0 },
    ],
    out,
  );
  const ref2 = await direct(images[2].path, tr2.hashes[2], TRAIN);
  const ref0 = await direct(images[0].path, tr2.hashes[0], TRAIN);
  assert.deepEqual(out.subarray(0, len), ref2.subarray(len, 2 * len));
  assert.deepEqual(out.subarray(len, 2 * len), ref0.subarray(2 * len, 3 * len));
  assert.deepEqual(out.subarray(2 * len, 3 * len), ref2.subarray(0, len));
  assert.ok(out.subarray(0, 3 * len).some((v) => v > 0));
  assert.notDeepEqual(out.subarray(0, len), out.subarray(2 * len, 3 * len), 'views of one image differ');
  await second.cache.read(ce2, [{ image: 1, view: 0 }], out);
  assert.deepEqual(out.subarray(0, len), await direct(images[1].path, ce2.hashes[1], CENTER));
});

test('the key is sensitive to the stage, the views and the preprocessing (each a miss in its own folder)', async () => {
  const demo = await demoSet();
  const images = demo.loaded.samples.slice(4, 6);
  const dir = await tempDir('dermtl-act-');
  const base = counting(dir);
  await base.cache.prepare([request(images, TRAIN)]);
  await base.cache.close();
  const cases = [
    { what: 'stage 4', c: counting(dir, { stage: 4 }), set: TRAIN },
    { what: 'view seed', c: counting(dir), set: { ...TRAIN, seed: 1 } },
    { what: 'jitter', c: counting(dir), set: { ...TRAIN, jitter: { min: 36, max: 40 } } },
    { what: 'preprocessing', c: counting(dir, { prep: { ...PREP, resizeShorter: 40 } }), set: TRAIN },
  ];
  for (const { what, c, set } of cases) {
    await c.cache.prepare([request(images, set)]);
    await c.cache.close();
    assert.deepEqual(c.cache.stats, { hits: 0, misses: 2 }, what);
  }
  assert.deepEqual(cases[0].c.cache.shape, [16, 4, 4], 'tiny trunk, 32 px: stage 4 input');
  assert.notEqual(cases[0].c.cache.id, base.cache.id);
});

test('an entry written for other weights is refused before any work, naming the folder to delete', async () => {
  const demo = await demoSet();
  const [x, y] = demo.loaded.samples.slice(6, 8);
  const dir = await tempDir('dermtl-act-');
  const seed0 = counting(dir);
  await seed0.cache.prepare([request([x], TRAIN)]);
  await seed0.cache.close();
  // the seed-0 entry copied to where the seed-1 trunk's entry for x would be
  const seed1 = counting(dir, { backbone: { ...TINY, seed: 1 } });
  const target = seed1.cache.entryPath(await seed1.cache.contentHash(x.path), TRAIN);
  await mkdir(dirname(target), { recursive: true });
  await copyFile(seed0.cache.entryPath(await seed0.cache.contentHash(x.path), TRAIN), target);
  await assert.rejects(seed1.cache.prepare([request([y], TRAIN), request([x], TRAIN)]), (e: Error) => {
    assert.ok(e instanceof DermtlError);
    assert.match(
      e.message,
      /activation cache under .*tiny-seed1.* holds entries written for other weights, views or preprocessing.*delete that folder/,
    );
    assert.ok(e.message.includes(target));
    return true;
  });
  assert.equal(seed1.asked.count, 0, 'nothing was computed, not even the good image y');
  await assert.rejects(readdir(dirname(seed1.cache.entryPath(await seed1.cache.contentHash(y.path), TRAIN))));
});

test('a damaged entry is recomputed; a stop signal stops after the current image; an entry deleted under training is a clear error', async () => {
  const demo = await demoSet();
  const images = demo.loaded.samples.slice(8, 11);
  const dir = await tempDir('dermtl-act-');
  const first = counting(dir);
  const [c] = await first.cache.prepare([request(images.slice(0, 1), TRAIN)]);
  await first.cache.close();
  const file = first.cache.entryPath(c.hashes[0], TRAIN);
  await writeFile(file, Buffer.from('truncated'));
  const again = counting(dir);
  await again.cache.prepare([request(images.slice(0, 1), TRAIN)]);
  await again.cache.close();
  assert.deepEqual(again.cache.stats, { hits: 0, misses: 1 });

  const ac = new AbortController();
  const stopping = new ActivationCache({
    dir,
    backbone: TINY,
    stage: 5,
    prep: PREP,
    threads: 1,
    signal: ac.signal,
    weights: async () => 'random',
    progress: () => Object.assign((done: number) => (done === 1 ? ac.abort() : undefined), { stop: () => {} }),
  });
  await assert.rejects(stopping.prepare([request(images, TRAIN)]), (e: Error & { exitCode?: number }) => {
    assert.match(e.message, /stopped while caching activations: 1 of 2 image\(s\) done \(they stay cached\)/);
    assert.equal(e.exitCode, 130);
    return true;
  });
  await stopping.close();
  const third = counting(dir);
  const [all] = await third.cache.prepare([request(images, TRAIN)]);
  await third.cache.close();
  assert.deepEqual(third.cache.stats, { hits: 2, misses: 1 });

  await rm(third.cache.entryPath(all.hashes[1], TRAIN));
  await assert.rejects(
    third.cache.read(all, [{ image: 1, view: 0 }], new Float32Array(third.cache.viewLength)),
    /activation cache entry .* is gone \(ENOENT\)/,
  );
});
