import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Rng } from '../../src/util/rng.ts';
import { decodeImage, type RgbImage } from '../../src/image/decode.ts';
import { scaleJitterParams, type CropBox } from '../../src/image/crops.ts';
import { CAFFE_PREPROCESSING, viewLength, writeView, type Preprocessing } from '../../src/image/preprocess.ts';
import { centerCrop, scaleJitter, tenCrop } from '../../src/image/views.ts';
import { DERM7PT, NO_REAL_PHOTOS, patternPixel, patternPng, solid } from './helpers.ts';

const S = 224;
const PLANE = S * S;
const f32 = Math.fround;

/** Value expected at (channel c, row oy, column ox) of a Caffe view cut at `box` from an RGB source. */
function expected(pixel: (x: number, y: number) => number[], box: CropBox, c: number, ox: number, oy: number): number {
  const sx = box.x + (box.flip ? S - 1 - ox : ox);
  const rgb = pixel(sx, box.y + oy);
  return f32(rgb[2 - c] - CAFFE_PREPROCESSING.mean[c]);
}

function checkView(
  data: Float32Array,
  offset: number,
  pixel: (x: number, y: number) => number[],
  box: CropBox,
  what: string,
) {
  for (let c = 0; c < 3; c++) {
    for (let oy = 0; oy < S; oy++) {
      for (let ox = 0; ox < S; ox++) {
        const got = data[offset + c * PLANE + oy * S + ox];
        const want = expected(pixel, box, c, ox, oy);
        if (got !== want) assert.fail(`${what}: channel ${c} (${ox},${oy}) is ${got}, expected ${want}`);
      }
    }
  }
}

const fromImage = (img: RgbImage) => (x: number, y: number) => {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
};

test('CAFFE_PREPROCESSING is the Keras/Caffe ResNet-50 convention', () => {
  assert.deepEqual(
    { ...CAFFE_PREPROCESSING },
    {
      size: 224,
      resizeShorter: 256,
      kernel: 'lanczos3',
      alphaBackground: [255, 255, 255],
      channelOrder: 'BGR',
      mean: [103.939, 116.779, 123.68],
      std: null,
      layout: 'NCHW',
    },
  );
  assert.ok(Object.isFrozen(CAFFE_PREPROCESSING) && Object.isFrozen(CAFFE_PREPROCESSING.mean));
  assert.equal(viewLength(CAFFE_PREPROCESSING), 3 * 224 * 224);
});

test('a solid RGB (200,100,50) image gives B-103.939, G-116.779, R-123.68 in every pixel', async () => {
  const png = await solid(400, 300, [200, 100, 50]).png().toBuffer();
  const { data, params } = await centerCrop(png);
  assert.equal(data.length, 3 * PLANE);
  assert.deepEqual(params, [{ x: 58, y: 16, size: 224, flip: false, width: 341, height: 256 }]); // 400x300 -> 341x256, (341-224)/2 = 58.5
  const want = [f32(50 - 103.939), f32(100 - 116.779), f32(200 - 123.68)];
  for (let c = 0; c < 3; c++) {
    const plane = data.subarray(c * PLANE, (c + 1) * PLANE);
    assert.ok(
      plane.every((v) => v === want[c]),
      `channel ${c}: found ${plane.find((v) => v !== want[c])} instead of ${want[c]}`,
    );
  }
});

test('tenCrop of a 341x256 pattern puts every pixel where the crop and mirror say', async () => {
  const { data, params } = await tenCrop(await patternPng(341, 256)); // already shorter side 256: no resampling
  assert.equal(data.length, 10 * 3 * PLANE);
  assert.deepEqual(
    params.map((p) => [p.x, p.y, p.flip]),
    [
      [0, 0, false],
      [117, 0, false],
      [0, 32, false],
      [117, 32, false],
      [58, 16, false],
      [0, 0, true],
      [117, 0, true],
      [0, 32, true],
      [117, 32, true],
      [58, 16, true],
    ],
  );
  params.forEach((box, k) => checkView(data, k * 3 * PLANE, patternPixel, box, `view ${k}`));
  // spot checks by hand. Channel 2 is R = x mod 256, channel 1 is G = y, channel 0 is B (7 beyond x=255, +1).
  const at = (k: number, c: number, ox: number, oy: number) => data[k * 3 * PLANE + c * PLANE + oy * S + ox];
  assert.equal(at(1, 2, 0, 0), f32(117 - 123.68)); // top-right crop starts at x=117
  assert.equal(at(3, 1, 0, 0), f32(32 - 116.779)); // bottom crops start at y=32
  assert.equal(at(4, 2, 0, 0), f32(58 - 123.68)); // centre x=58
  assert.equal(at(6, 2, 0, 0), f32(340 - 256 - 123.68)); // mirrored top-right: left column is x=340
  assert.equal(at(6, 0, 0, 0), f32(8 - 103.939)); // ... which is beyond x=255
  assert.equal(at(5, 2, 223, 5), f32(0 - 123.68)); // mirrored top-left: right column is x=0
});

test('writeView honours RGB order and std', () => {
  const img: RgbImage = {
    width: 2,
    height: 2,
    data: Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]),
  };
  const prep: Preprocessing = {
    ...CAFFE_PREPROCESSING,
    size: 2,
    channelOrder: 'RGB',
    mean: [10, 20, 30],
    std: [2, 4, 5],
  };
  const out = new Float32Array(12);
  writeView(img, { x: 0, y: 0, size: 2, flip: true }, prep, out, 0);
  // R plane: pixels (1,0)=40, (0,0)=10, (1,1)=100, (0,1)=70, minus 10, over 2
  assert.deepEqual([...out.subarray(0, 4)], [15, 0, 45, 30]);
  assert.deepEqual([...out.subarray(8, 12)], [6, 0, 18, 12]); // B: (60-30)/5, (30-30)/5, (120-30)/5, (90-30)/5
  assert.throws(() => writeView(img, { x: 1, y: 0, size: 2, flip: false }, prep, out, 0), /outside/);
});

test('scaleJitter: recorded parameters match the pure draw, pixels match decode+crop at that scale', async () => {
  const png = await patternPng(341, 256);
  const { data, params } = await scaleJitter(png, Rng.derive(9, 2, 5));
  const again = await scaleJitter(png, Rng.derive(9, 2, 5));
  assert.deepEqual(again.params, params);
  assert.deepEqual(again.data, data);
  assert.deepEqual(params, [scaleJitterParams(Rng.derive(9, 2, 5), 341, 256, 224)]);
  const p = params[0];
  const resized = await decodeImage(png, { shorterSide: p.height });
  assert.deepEqual([resized.width, resized.height], [p.width, p.height]);
  checkView(data, 0, fromImage(resized), p, 'jittered view');
  // over a few seeds both flips and several scales occur
  const draws = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((i) => scaleJitter(png, Rng.derive(9, 2, i))));
  assert.ok(new Set(draws.map((d) => d.params[0].flip)).size === 2);
  assert.ok(new Set(draws.map((d) => d.params[0].height)).size >= 4);
});

test('tenCrop of a real derm7pt photo: view k+5 is the exact mirror of view k', { skip: NO_REAL_PHOTOS }, async () => {
  const { data, params } = await tenCrop(join(DERM7PT, 'NEL/NEL025.JPG'));
  assert.deepEqual([params[0].width, params[0].height], [384, 256]);
  for (let k = 0; k < 5; k++) {
    for (let c = 0; c < 3; c++) {
      for (const oy of [0, 100, 223]) {
        const row = (v: number) =>
          data.subarray(v * 3 * PLANE + c * PLANE + oy * S, v * 3 * PLANE + c * PLANE + (oy + 1) * S);
        assert.deepEqual([...row(k + 5)], [...row(k)].reverse(), `view ${k} channel ${c} row ${oy}`);
      }
    }
  }
  assert.ok(data.every(Number.isFinite));
  assert.ok(data.some((v) => v > 0) && data.some((v) => v < 0));
});
