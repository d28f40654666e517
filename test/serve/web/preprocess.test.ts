// The page's in-browser preprocessing against the server's pipeline (src/image via sharp), with the resize taken
// out of the comparison: an image whose shorter side already is 256 is not resampled, so the tensors must be equal.
// Also the page's file checks, the ten-crop average and the bar percentages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { CAFFE_PREPROCESSING, centerCrop, tenCrop } from '../../../src/image/index.ts';
import { percent } from '../../../src/serve/web/app/bars.ts';
import { checkFile, contentType, MAX_BYTES } from '../../../src/serve/web/app/files.ts';
import { meanOverViews, rgbaToRgb, viewsTensor } from '../../../src/serve/web/app/preprocess.ts';
import { Rng } from '../../../src/util/rng.ts';

/** A W x H photo-like RGBA image (smooth gradients plus noise, opaque) and its PNG. */
async function photo(width: number, height: number) {
  const r = Rng.seeded(21);
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      rgba[i] = (x * 255) / width;
      rgba[i + 1] = (y * 255) / height;
      rgba[i + 2] = r.int(0, 255);
      rgba[i + 3] = 255;
    }
  }
  const png = await sharp(Buffer.from(rgba), { raw: { width, height, channels: 4 } })
    .png()
    .toBuffer();
  return { rgba, png };
}

test('rgbaToRgb drops alpha and keeps pixel order; a wrong length is an error', () => {
  const rgb = rgbaToRgb(new Uint8ClampedArray([1, 2, 3, 255, 4, 5, 6, 128]), 2, 1);
  assert.deepEqual([...rgb.data], [1, 2, 3, 4, 5, 6]);
  assert.equal(rgb.width, 2);
  assert.equal(rgb.height, 1);
  assert.throws(() => rgbaToRgb(new Uint8Array(7), 2, 1), /expected 8 RGBA bytes, got 7/);
});

test('in-browser tensor = server tensor (centre crop and ten crops) for a 300x256 image that needs no resize', async () => {
  const { rgba, png } = await photo(300, 256);
  const img = rgbaToRgb(rgba, 300, 256);
  const prep = { ...CAFFE_PREPROCESSING };
  const center = viewsTensor(img, prep, 'center');
  assert.equal(center.views, 1);
  assert.equal(center.data.length, 3 * 224 * 224);
  const server = await centerCrop(png);
  assert.deepEqual(
    server.params.map((p) => [p.x, p.y, p.width, p.height]),
    [[38, 16, 300, 256]],
  );
  assert.deepEqual(center.data, server.data);
  // Spot check of the layout: channel 0 is blue minus 103.939 at crop pixel (0,0) = image pixel (38,16).
  assert.ok(Math.abs(center.data[0] - (rgba[(16 * 300 + 38) * 4 + 2] - 103.939)) < 1e-4);
  const ten = viewsTensor(img, prep, '10crop');
  assert.equal(ten.views, 10);
  assert.deepEqual(ten.data, (await tenCrop(png)).data);
});

test('meanOverViews averages [views, k] per label', () => {
  const probs = Float32Array.from([0.1, 0.9, 0.3, 0.5, 0.2, 0.4]);
  const m = meanOverViews(probs, 3);
  assert.equal(m.length, 2);
  assert.ok(Math.abs(m[0] - 0.2) < 1e-7 && Math.abs(m[1] - 0.6) < 1e-7, `${m[0]} ${m[1]}`);
  assert.deepEqual([...meanOverViews(Float32Array.from([0.25, 0.75]), 1)], [0.25, 0.75]);
});

test('checkFile: JPEG/PNG/WebP up to 10 MB (type or, when the browser gives none, the name); contentType follows', () => {
  assert.equal(checkFile({ name: 'a.jpg', type: 'image/jpeg', size: 1000 }), null);
  assert.equal(checkFile({ name: 'a.webp', type: 'image/webp', size: MAX_BYTES }), null);
  assert.equal(checkFile({ name: 'A.PNG', type: '', size: 10 }), null);
  assert.equal(
    checkFile({ name: 'notes.txt', type: 'text/plain', size: 10 }),
    '"notes.txt" is not a JPEG, PNG or WebP image (its type is text/plain). Please choose a photo.',
  );
  assert.equal(
    checkFile({ name: 'scan.tiff', type: '', size: 10 }),
    '"scan.tiff" is not a JPEG, PNG or WebP image. Please choose a photo.',
  );
  assert.equal(
    checkFile({ name: 'big.jpg', type: 'image/jpeg', size: MAX_BYTES + 1 }),
    '"big.jpg" is 10.0 MB; photos up to 10 MB are accepted.',
  );
  assert.equal(checkFile({ name: 'e.png', type: 'image/png', size: 0 }), '"e.png" is empty.');
  assert.equal(MAX_BYTES, 10 * 1024 * 1024);
  assert.equal(contentType({ name: 'x.JPEG', type: '' }), 'image/jpeg');
  assert.equal(contentType({ name: 'x.bin', type: 'image/png' }), 'image/png');
  assert.equal(contentType({ name: 'x', type: '' }), 'application/octet-stream');
});

test('percent: whole percentages, one decimal below 1% so small values do not read as 0', () => {
  assert.deepEqual([0, 0.004, 0.0123, 0.5, 0.7251, 0.999, 1].map(percent), [
    '0%',
    '0.4%',
    '1%',
    '50%',
    '73%',
    '100%',
    '100%',
  ]);
});
