import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/util/rng.ts';
import {
  centerBox,
  drawJitterCrop,
  HE_SCALE_JITTER,
  scaleJitterParams,
  shorterSideSize,
  tenCropBoxes,
} from '../../src/image/crops.ts';

test('shorterSideSize: shorter side exact, longer rounded to nearest', () => {
  assert.deepEqual(shorterSideSize(480, 320, 256), { width: 384, height: 256 });
  assert.deepEqual(shorterSideSize(768, 576, 256), { width: 341, height: 256 }); // 341.33
  assert.deepEqual(shorterSideSize(100, 150, 256), { width: 256, height: 384 });
  assert.deepEqual(shorterSideSize(3, 5, 256), { width: 256, height: 427 }); // 426.67
  assert.deepEqual(shorterSideSize(500, 500, 480), { width: 480, height: 480 });
});

test('tenCropBoxes of a 341x256 image: exact corners, centre with floor, then the mirrors', () => {
  const boxes = tenCropBoxes(341, 256, 224);
  const five = [
    { x: 0, y: 0 }, // top-left
    { x: 117, y: 0 }, // top-right: 341 - 224
    { x: 0, y: 32 }, // bottom-left: 256 - 224
    { x: 117, y: 32 }, // bottom-right
    { x: 58, y: 16 }, // centre: floor(117 / 2), 32 / 2
  ];
  assert.equal(boxes.length, 10);
  assert.deepEqual(boxes, [
    ...five.map((b) => ({ ...b, size: 224, flip: false })),
    ...five.map((b) => ({ ...b, size: 224, flip: true })),
  ]);
});

test('tenCropBoxes of a tall 256x383 image and of an exact 224 square', () => {
  const tall = tenCropBoxes(256, 383, 224);
  assert.deepEqual(
    tall.slice(0, 5).map((b) => [b.x, b.y]),
    [
      [0, 0],
      [32, 0],
      [0, 159],
      [32, 159],
      [16, 79],
    ],
  );
  const exact = tenCropBoxes(224, 224, 224);
  assert.ok(exact.every((b) => b.x === 0 && b.y === 0));
  assert.deepEqual(
    exact.map((b) => b.flip),
    [false, false, false, false, false, true, true, true, true, true],
  );
});

test('centerBox floors odd margins', () => {
  assert.deepEqual(centerBox(341, 256, 224), { x: 58, y: 16, size: 224, flip: false });
  assert.deepEqual(centerBox(225, 227, 224), { x: 0, y: 1, size: 224, flip: false });
  assert.throws(() => centerBox(200, 300, 224), /does not fit/);
});

test('scaleJitter draws the shorter side uniformly in [256, 480], hitting both ends', () => {
  const seen = new Set<number>();
  let flips = 0;
  for (let i = 0; i < 4000; i++) {
    const p = scaleJitterParams(Rng.derive(1, 0, i), 480, 320, 224);
    const shorter = Math.min(p.width, p.height);
    assert.ok(shorter >= 256 && shorter <= 480, `shorter side ${shorter}`);
    assert.equal(p.height, shorter); // landscape stays landscape
    assert.equal(p.width, Math.round((480 * shorter) / 320));
    assert.ok(p.x >= 0 && p.x <= p.width - 224 && p.y >= 0 && p.y <= p.height - 224, JSON.stringify(p));
    seen.add(shorter);
    if (p.flip) flips++;
  }
  assert.ok(seen.has(HE_SCALE_JITTER.min) && seen.has(HE_SCALE_JITTER.max));
  assert.ok(seen.size > 200, `only ${seen.size} distinct scales`); // 225 possible values
  assert.ok(flips > 1800 && flips < 2200, `${flips} flips of 4000`);
});

test('scaleJitter is reproducible from its Rng and differs between images', () => {
  const a = scaleJitterParams(Rng.derive(42, 3, 17), 480, 320, 224);
  assert.deepEqual(scaleJitterParams(Rng.derive(42, 3, 17), 480, 320, 224), a);
  const others = [18, 19, 20, 21].map((i) => scaleJitterParams(Rng.derive(42, 3, i), 480, 320, 224));
  assert.ok(others.some((o) => JSON.stringify(o) !== JSON.stringify(a)));
});

test('drawJitterCrop covers the whole range of positions', () => {
  const rng = Rng.seeded(5);
  const xs = new Set<number>();
  const ys = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const b = drawJitterCrop(rng, 230, 226, 224);
    xs.add(b.x);
    ys.add(b.y);
  }
  assert.deepEqual([...xs].sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...ys].sort(), [0, 1, 2]);
});
