import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/util/rng.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { ImageLoader, batchOrder, type Batch, type BatchOptions, type LoaderItem } from '../../src/image/loader.ts';
import { renderViews } from '../../src/image/views.ts';
import sharp from 'sharp';
import { DERM7PT, NO_REAL_PHOTOS, patternPng, solid, tempDir } from './helpers.ts';

const tmp = tempDir();
const items: LoaderItem[] = [];
const loaders: ImageLoader[] = [];
const VIEW = 3 * 224 * 224;

function loader(workers: number, prefetch = 2): ImageLoader {
  const l = new ImageLoader({ workers, prefetch });
  loaders.push(l);
  return l;
}

async function collect(l: ImageLoader, list: LoaderItem[], opts: BatchOptions): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of l.batches(list, opts)) out.push(b);
  return out;
}

before(async () => {
  // 7 images of assorted sizes (landscape, portrait, square), plus one real derm7pt photo read in place
  const sizes = [
    [300, 240],
    [240, 320],
    [256, 256],
    [500, 260],
    [230, 300],
    [320, 320],
    [400, 300],
  ];
  for (const [i, [w, h]] of sizes.entries()) {
    const file = join(tmp.dir, `img${i}.png`);
    writeFileSync(file, await patternPng(w, h));
    items.push({ path: file });
  }
  // (a plain clone has no ../shared: a 480x320 JPEG of the pattern stands in, keeping 8 items)
  const photo = join(tmp.dir, 'photo.jpg');
  if (NO_REAL_PHOTOS)
    writeFileSync(
      photo,
      await sharp(await patternPng(480, 320))
        .jpeg()
        .toBuffer(),
    );
  items.push({ path: NO_REAL_PHOTOS ? photo : join(DERM7PT, 'NEL/NEL025.JPG') });
});

after(async () => {
  await Promise.all(loaders.map((l) => l.close()));
  tmp.cleanup();
});

test('batchOrder: shuffles per epoch for training, keeps order for testing, covers every item once', () => {
  const train = batchOrder(10, { mode: 'train', batchSize: 4, seed: 1, epoch: 0 });
  assert.deepEqual(
    train.map((b) => b.length),
    [4, 4, 2],
  );
  assert.deepEqual(
    train.flat().sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.notDeepEqual(train.flat(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual(batchOrder(10, { mode: 'train', batchSize: 4, seed: 1, epoch: 1 }).flat(), train.flat());
  assert.deepEqual(batchOrder(10, { mode: 'train', batchSize: 4, seed: 1, epoch: 0 }), train);
  assert.deepEqual(batchOrder(5, { mode: 'tenCrop', batchSize: 2, seed: 1 }), [[0, 1], [2, 3], [4]]);
  assert.deepEqual(batchOrder(5, { mode: 'center', batchSize: 2, seed: 1, dropLast: true }), [
    [0, 1],
    [2, 3],
  ]);
});

test('1 and 2 workers (and inline) give byte-identical training batches, keyed by Rng.derive(seed, epoch, index)', async () => {
  const opts: BatchOptions = { mode: 'train', batchSize: 3, seed: 11, epoch: 2 };
  const one = await collect(loader(1), items, opts);
  const two = await collect(loader(2, 3), items, opts);
  const inline = await collect(loader(0), items, opts);
  assert.deepEqual(
    one.map((b) => b.indices),
    batchOrder(items.length, opts),
  );
  assert.deepEqual(
    one.map((b) => [b.n, b.views, b.data.length]),
    [
      [3, 1, 3 * VIEW],
      [3, 1, 3 * VIEW],
      [2, 1, 2 * VIEW],
    ],
  );
  for (const other of [two, inline]) {
    assert.deepEqual(
      other.map((b) => b.indices),
      one.map((b) => b.indices),
    );
    assert.deepEqual(
      other.map((b) => b.params),
      one.map((b) => b.params),
    );
    other.forEach((b, i) =>
      assert.ok(Buffer.from(b.data.buffer).equals(Buffer.from(one[i].data.buffer)), `batch ${i} differs`),
    );
  }
  // each image's view is exactly what renderViews gives with Rng.derive(seed, epoch, itemIndex)
  const b = one[1];
  for (let i = 0; i < b.n; i++) {
    const idx = b.indices[i];
    const solo = await renderViews(items[idx].path, 'train', Rng.derive(11, 2, idx));
    assert.deepEqual(b.params[i], solo.params);
    assert.ok(
      b.data.subarray(i * VIEW, (i + 1) * VIEW).every((v, j) => v === solo.data[j]),
      `item ${idx}`,
    );
  }
  // another epoch draws other views
  const next = await collect(loader(1), items, { ...opts, epoch: 3 });
  assert.notDeepEqual(
    next.flatMap((x) => x.params),
    one.flatMap((x) => x.params),
  );
});

test('tenCrop batches hold 10 views per image in item order', async () => {
  const batches = await collect(loader(2), items.slice(0, 3), { mode: 'tenCrop', batchSize: 2, seed: 0 });
  assert.deepEqual(
    batches.map((b) => [b.indices, b.n, b.views, b.data.length]),
    [
      [[0, 1], 2, 10, 20 * VIEW],
      [[2], 1, 10, 10 * VIEW],
    ],
  );
  const solo = await renderViews(items[1].path, 'tenCrop', null);
  assert.ok(Buffer.from(batches[0].data.buffer, 10 * VIEW * 4, 10 * VIEW * 4).equals(Buffer.from(solo.data.buffer)));
  assert.deepEqual(batches[0].params[1], solo.params);
});

test('a bad image in a worker surfaces as a DermtlError naming the file, and the loader stays usable', async () => {
  const bad = join(tmp.dir, 'bad.jpg');
  writeFileSync(bad, 'this is a text file, not a JPEG');
  const missing = join(tmp.dir, 'missing.png');
  const l = loader(2);
  for (const culprit of [bad, missing]) {
    const list = [...items.slice(0, 4), { path: culprit }, ...items.slice(4)];
    await assert.rejects(collect(l, list, { mode: 'center', batchSize: 2, seed: 0 }), (e: unknown) => {
      assert.ok(e instanceof DermtlError, String(e));
      assert.ok(e.message.includes(culprit), e.message);
      return true;
    });
  }
  const ok = await collect(l, items.slice(0, 2), { mode: 'center', batchSize: 2, seed: 0 });
  assert.equal(ok.length, 1);
  assert.equal(ok[0].n, 2);
});

test('breaking out early, then iterating again, works; closing rejects later use', async () => {
  const l = loader(2, 2);
  for await (const b of l.batches(items, { mode: 'center', batchSize: 1, seed: 0 })) {
    assert.deepEqual(b.indices, [0]);
    break;
  }
  const all = await collect(l, items, { mode: 'center', batchSize: 4, seed: 0 });
  assert.deepEqual(
    all.map((b) => b.indices),
    [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ],
  );
  await l.close();
  await assert.rejects(collect(l, items, { mode: 'center', batchSize: 4, seed: 0 }), /closed/);
});

test('bad options are DermtlErrors', async () => {
  const l = loader(0);
  await assert.rejects(collect(l, items, { mode: 'train', batchSize: 0, seed: 0 }), DermtlError);
  await assert.rejects(collect(l, items, { mode: 'nine' as never, batchSize: 2, seed: 0 }), /unknown view mode 'nine'/);
  await assert.rejects(collect(l, [{ path: '' }], { mode: 'center', batchSize: 2, seed: 0 }), /item 0 has no path/);
  assert.throws(() => new ImageLoader({ workers: -1 }), DermtlError);
  assert.throws(() => new ImageLoader({ jitter: { min: 200, max: 300 } }), /scale jitter range/);
});

test('a solid image through the loader gives the Caffe values', async () => {
  const file = join(tmp.dir, 'solid.png');
  writeFileSync(file, await solid(260, 300, [200, 100, 50]).png().toBuffer());
  const [b] = await collect(loader(1), [{ path: file }], { mode: 'train', batchSize: 1, seed: 3 });
  assert.equal(b.data[0], Math.fround(50 - 103.939));
  assert.equal(b.data[VIEW / 3 + 77], Math.fround(100 - 116.779));
  assert.equal(b.data[VIEW - 1], Math.fround(200 - 123.68));
});

test('workers start when tsx was registered by register() (as scripts/dermtl-dev.js does), not by --import', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const script = `
    import { register } from 'tsx/esm/api';
    register();
    const { ImageLoader } = await import('./src/image/loader.ts');
    const loader = new ImageLoader({ workers: 2 });
    const items = ${JSON.stringify(items.slice(0, 3))};
    for await (const b of loader.batches(items, { mode: 'center', batchSize: 2, seed: 0 })) {
      console.log(JSON.stringify([b.indices, b.data.length]));
    }
    await loader.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    [
      [[0, 1], 2 * VIEW],
      [[2], VIEW],
    ],
  );
});
