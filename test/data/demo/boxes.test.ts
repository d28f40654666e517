// The demo generator's lesion boxes: a box of scene pixels maps into a photo exactly where renderView puts those
// pixels, and every lesion of a scene gets a box inside the photo that holds pixels unlike the plain skin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Canvas } from '../../../src/data/demo/canvas.ts';
import { demoLesionBoxes } from '../../../src/data/demo/generate.ts';
import { planDemo, type DemoView } from '../../../src/data/demo/plan.ts';
import { renderView, sceneBoxInView } from '../../../src/data/demo/scene.ts';
import { Rng } from '../../../src/util/rng.ts';

test('sceneBoxInView: the box of a white rectangle rendered by renderView (rotated, zoomed, flipped, off-centre)', () => {
  const size = 120,
    side = 180;
  const box = { x0: 70, y0: 60, x1: 99, y1: 79 };
  const canvas = new Canvas(side, side);
  for (let y = box.y0; y <= box.y1; y++) for (let x = box.x0; x <= box.x1; x++) canvas.blend(x, y, [255, 255, 255], 1);
  const plain = {
    gain: 1,
    tint: [1, 1, 1],
    gradientAngle: 0,
    gradientAmount: 0,
    noise: 0,
    blur: 0,
    quality: 90,
    image: 'x',
  } as const;
  for (const v of [
    { rotation: 0, zoom: 1, dx: 0, dy: 0, flip: false, aspect: 1 },
    { rotation: 0.7, zoom: 1.2, dx: 0.05, dy: -0.03, flip: true, aspect: 0.8 },
    { rotation: -2.5, zoom: 1.05, dx: -0.04, dy: 0.02, flip: false, aspect: 1 },
  ]) {
    const view = { ...plain, ...v, tint: [1, 1, 1] } as DemoView;
    const raw = renderView(canvas, view, size, Rng.seeded(1));
    let x0 = Infinity,
      y0 = Infinity,
      x1 = -Infinity,
      y1 = -Infinity;
    for (let y = 0; y < raw.height; y++) {
      for (let x = 0; x < raw.width; x++) {
        if (raw.data[(y * raw.width + x) * 3] < 128) continue;
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x + 1);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y + 1);
      }
    }
    const b = sceneBoxInView(box, view, size, side)!;
    // the rendered pixels fill the rotated rectangle, whose bounding box is the mapped one (to within a pixel)
    for (const [got, want] of [
      [x0, b.x0],
      [y0, b.y0],
      [x1, b.x1],
      [y1, b.y1],
    ])
      assert.ok(Math.abs(got - want) <= 1.5, `${JSON.stringify(v)}: ${[x0, y0, x1, y1]} vs ${JSON.stringify(b)}`);
  }
});

test('demoLesionBoxes: one box per drawn lesion of each photo, inside the photo, same answer every time', () => {
  const opts = { n: 12, seed: 3, size: 160 };
  const boxes = demoLesionBoxes(opts);
  const scenes = planDemo(opts.n, opts.seed);
  assert.equal(boxes.size, 12);
  for (const s of scenes) {
    for (const v of s.views) {
      const list = boxes.get(v.image)!;
      assert.deepEqual(
        list.map((b) => b.lesion),
        s.lesions,
        v.image,
      );
      for (const { box } of list) {
        assert.ok(box.x0 >= 0 && box.y0 >= 0 && box.x1 <= 160 && box.x0 < box.x1 && box.y0 < box.y1);
        assert.ok(
          (box.x1 - box.x0) * (box.y1 - box.y0) < 0.5 * 160 * 160,
          `${v.image}: a lesion box covers half the photo`,
        );
      }
    }
  }
  assert.deepEqual(demoLesionBoxes(opts), boxes);
});
