import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage, type RgbImage } from '../../src/image/decode.ts';
import { DermtlError } from '../../src/util/errors.ts';
import {
  DERM7PT,
  IMAGENET,
  NO_REAL_PHOTOS,
  jpegClaiming,
  patternPng,
  patternRaw,
  pngBomb,
  solid,
  tempDir,
} from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

function px(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

function near(actual: number[], expected: number[], tol: number, what: string): void {
  assert.ok(
    actual.every((v, i) => Math.abs(v - expected[i]) <= tol),
    `${what}: got [${actual}], expected [${expected}] +-${tol}`,
  );
}

async function rejectsNaming(p: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DermtlError, `expected DermtlError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message does not name ${file}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('PNG decodes losslessly to 8-bit RGB, from a path and from a Buffer', async () => {
  const png = await patternPng(300, 270);
  const file = join(tmp.dir, 'pattern.png');
  writeFileSync(file, png);
  for (const input of [file, png]) {
    const img = await decodeImage(input);
    assert.equal(img.width, 300);
    assert.equal(img.height, 270);
    assert.equal(img.data.length, 300 * 270 * 3);
    assert.deepEqual(Buffer.from(img.data), patternRaw(300, 270));
  }
});

test('JPEG and WebP decode to the colour they were written with', async () => {
  for (const [fmt, buf] of [
    ['jpeg', await solid(64, 48, [200, 100, 50]).jpeg({ quality: 95 }).toBuffer()],
    ['webp', await solid(64, 48, [200, 100, 50]).webp({ quality: 95 }).toBuffer()],
    ['webp-lossless', await solid(64, 48, [200, 100, 50]).webp({ lossless: true }).toBuffer()],
  ] as const) {
    const img = await decodeImage(buf, { name: fmt });
    assert.deepEqual([img.width, img.height], [64, 48], fmt);
    near(px(img, 10, 10), [200, 100, 50], fmt === 'webp-lossless' ? 0 : 4, fmt);
  }
});

test('greyscale becomes three equal channels', async () => {
  const grey = await solid(20, 10, [90, 90, 90]).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 1);
  const img = await decodeImage(grey);
  assert.equal(img.data.length, 20 * 10 * 3);
  assert.deepEqual(px(img, 5, 5), [90, 90, 90]);
});

test('16-bit PNG is reduced to 8 bits per channel', async () => {
  const png16 = await solid(8, 8, [200, 100, 50]).toColourspace('rgb16').png().toBuffer();
  const meta = await sharp(png16).metadata();
  assert.equal(meta.depth, 'ushort');
  const img = await decodeImage(png16);
  assert.equal(img.data.length, 8 * 8 * 3);
  assert.deepEqual(px(img, 3, 3), [200, 100, 50]);
});

test('CMYK JPEG is converted to sRGB', async () => {
  const cmyk = await solid(16, 16, [200, 100, 50]).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const img = await decodeImage(cmyk);
  assert.equal(img.data.length, 16 * 16 * 3);
  // the CMYK round trip through libvips' fallback profile is not exact
  near(px(img, 8, 8), [200, 100, 50], 35, 'cmyk');
});

test('alpha is flattened onto white (or the colour asked for)', async () => {
  const rgba = await sharp({
    create: { width: 4, height: 2, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } },
  })
    .composite([
      {
        input: { create: { width: 2, height: 2, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 1 } } },
        left: 0,
        top: 0,
      },
    ])
    .png()
    .toBuffer();
  const white = await decodeImage(rgba);
  assert.deepEqual(px(white, 0, 0), [255, 0, 0]); // opaque red stays red
  assert.deepEqual(px(white, 3, 1), [255, 255, 255]); // transparent -> white
  const black = await decodeImage(rgba, { background: [0, 0, 0] });
  assert.deepEqual(px(black, 3, 1), [0, 0, 0]);
  const half = await sharp({
    create: { width: 2, height: 2, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } },
  })
    .png()
    .toBuffer();
  near(px(await decodeImage(half), 0, 0), [128, 128, 255], 1, 'half-transparent blue on white');
});

test('EXIF orientation 6 is applied: width and height swap, left half ends on top', async () => {
  // stored 40x20: left half red, right half blue; orientation 6 = rotate 90 degrees clockwise to display
  const jpg = await solid(40, 20, [0, 0, 255])
    .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: '#ff0000' } }, left: 0, top: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const meta = await sharp(jpg).metadata();
  assert.deepEqual([meta.width, meta.height, meta.orientation], [40, 20, 6]);
  const img = await decodeImage(jpg);
  assert.deepEqual([img.width, img.height], [20, 40]);
  near(px(img, 10, 5), [255, 0, 0], 6, 'top is red');
  near(px(img, 10, 35), [0, 0, 255], 6, 'bottom is blue');
  // and the resize honours the rotated size
  const small = await decodeImage(jpg, { shorterSide: 10 });
  assert.deepEqual([small.width, small.height], [10, 20]);
});

test('shorterSide resize rounds the longer side to nearest', async () => {
  const png = await patternPng(480, 321);
  const img = await decodeImage(png, { shorterSide: 256 });
  assert.deepEqual([img.width, img.height], [383, 256]); // 480 * 256 / 321 = 382.8
  const tall = await decodeImage(await patternPng(100, 150), { shorterSide: 256 });
  assert.deepEqual([tall.width, tall.height], [256, 384]);
});

test('real photos decode: derm7pt clinical JPEG and an ImageNet sample', { skip: NO_REAL_PHOTOS }, async () => {
  const clinic = await decodeImage(join(DERM7PT, 'NEL/NEL025.JPG'));
  assert.deepEqual([clinic.width, clinic.height], [480, 320]);
  const dog = await decodeImage(join(IMAGENET, 'dog.jpg'), { shorterSide: 256 });
  assert.deepEqual([dog.width, dog.height], [341, 256]); // 768x576 -> 341.33
  const mean = dog.data.reduce((a, b) => a + b, 0) / dog.data.length;
  assert.ok(mean > 40 && mean < 220, `implausible mean ${mean}`);
});

test('missing, empty, directory, truncated and non-image files give a DermtlError naming the file', async () => {
  const missing = join(tmp.dir, 'nope.jpg');
  await rejectsNaming(decodeImage(missing), missing, /not found/);

  const empty = join(tmp.dir, 'empty.jpg');
  writeFileSync(empty, '');
  await rejectsNaming(decodeImage(empty), empty, /empty/);

  const dir = join(tmp.dir, 'folder.jpg');
  mkdirSync(dir);
  await rejectsNaming(decodeImage(dir), dir, /not a file/);

  const text = join(tmp.dir, 'notes.jpg');
  writeFileSync(text, 'lesion notes, definitely not a JPEG\n');
  await rejectsNaming(decodeImage(text), text, /not a readable image/);

  const jpg = await solid(300, 200, [10, 200, 30]).jpeg().toBuffer();
  const truncated = join(tmp.dir, 'truncated.jpg');
  writeFileSync(truncated, jpg.subarray(0, Math.floor(jpg.length / 2)));
  await rejectsNaming(decodeImage(truncated), truncated, /cannot decode/);

  const png = await patternPng(64, 64);
  const truncPng = join(tmp.dir, 'truncated.png');
  writeFileSync(truncPng, png.subarray(0, Math.floor(png.length * 0.6)));
  await rejectsNaming(decodeImage(truncPng), truncPng, /cannot decode/);

  await rejectsNaming(decodeImage(Buffer.alloc(0), { name: 'upload.png' }), 'upload.png', /empty/);
  await rejectsNaming(
    decodeImage(Buffer.from('GIF? no'), { name: 'upload.png' }),
    'upload.png',
    /not a readable image/,
  );
});

test('huge images and decompression bombs are refused from the header, before decoding', async () => {
  const huge = join(tmp.dir, 'huge.jpg');
  writeFileSync(huge, await jpegClaiming(20000, 20000));
  await rejectsNaming(decodeImage(huge), huge, /20000x20000 .*limit of 50000000 pixels/);

  const bomb = pngBomb(30000, 30000);
  assert.ok(bomb.length < 1000, 'the bomb is tiny on disk');
  await rejectsNaming(decodeImage(bomb, { name: 'bomb.png' }), 'bomb.png', /30000x30000.*refusing/);
});

test('the pixel limit is configurable and also bounds the resized image', async () => {
  const png = await patternPng(600, 400);
  await rejectsNaming(decodeImage(png, { name: 'a.png', maxPixels: 200_000 }), 'a.png', /600x400.*limit of 200000/);
  assert.equal((await decodeImage(png, { maxPixels: 240_000 })).width, 600);
  // a 4000x2 strip is small, but a 256-pixel shorter side would make it 512000x256
  const strip = await solid(4000, 2, [1, 2, 3]).png().toBuffer();
  await rejectsNaming(decodeImage(strip, { name: 'strip.png', shorterSide: 256 }), 'strip.png', /512000x256/);
});
