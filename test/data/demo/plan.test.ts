import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planDemo } from '../../../src/data/demo/plan.ts';
import {
  LESION_COUNT_WEIGHTS,
  LESION_WEIGHTS,
  LESIONS,
  SITES,
  mostLikelyLesion,
  type Lesion,
  type Site,
} from '../../../src/data/demo/table.ts';

test('plan has exactly n images in groups of 1-3, with unique ids and paths', () => {
  const scenes = planDemo(101, 4);
  assert.equal(
    scenes.reduce((s, sc) => s + sc.views.length, 0),
    101,
  );
  assert.ok(scenes.every((s) => s.views.length >= 1 && s.views.length <= 3));
  assert.equal(new Set(scenes.map((s) => s.group)).size, scenes.length);
  const images = scenes.flatMap((s) => s.views.map((v) => v.image));
  assert.equal(new Set(images).size, 101);
  assert.match(images[0], /^images\/demo-0001-1\.jpg$/);
  // several group sizes occur
  assert.deepEqual(new Set(scenes.slice(0, -1).map((s) => s.views.length)), new Set([1, 2, 3]));
});

test('labels do not depend on n: a longer plan starts with the same scenes', () => {
  const a = planDemo(30, 9),
    b = planDemo(300, 9);
  for (let i = 0; i < a.length - 1; i++) {
    assert.equal(a[i].site, b[i].site);
    assert.deepEqual(a[i].lesions, b[i].lesions);
  }
});

/**
 * Exact probability that a lesion is among those drawn on a site: sum over the number of draws k and over
 * every ordered sequence of k distinct lesions drawn without replacement with the row's weights.
 */
function inclusionProbability(site: Site, lesion: Lesion): number {
  const w = LESION_WEIGHTS[site];
  // probability that `lesion` is among k draws from `left`
  const among = (left: Lesion[], k: number): number => {
    if (k === 0) return 0;
    const total = left.reduce((s, l) => s + w[l], 0);
    return left.reduce(
      (p, l) =>
        p +
        (w[l] / total) *
          (l === lesion
            ? 1
            : among(
                left.filter((x) => x !== l),
                k - 1,
              )),
      0,
    );
  };
  const norm = LESION_COUNT_WEIGHTS.reduce((a, b) => a + b, 0);
  return LESION_COUNT_WEIGHTS.reduce((p, pk, k) => p + (pk / norm) * among([...LESIONS], k), 0);
}

test('lesion frequencies per site follow the site x lesion table', () => {
  const scenes = planDemo(8000, 1);
  for (const site of SITES) {
    const here = scenes.filter((s) => s.site === site);
    assert.ok(here.length > 250, `${site}: ${here.length} scenes`);
    for (const lesion of LESIONS) {
      const expected = inclusionProbability(site, lesion);
      const seen = here.filter((s) => s.lesions.includes(lesion)).length / here.length;
      const sd = Math.sqrt((expected * (1 - expected)) / here.length);
      assert.ok(
        Math.abs(seen - expected) < 4.5 * sd + 1e-9,
        `${site}/${lesion}: seen ${seen.toFixed(3)}, expected ${expected.toFixed(3)}`,
      );
    }
  }
});

test('the most frequent lesion of a site is the one its row favours (where the table is clear)', () => {
  const scenes = planDemo(8000, 2);
  const checked: string[] = [];
  for (const site of SITES) {
    const sorted = Object.values(LESION_WEIGHTS[site]).sort((a, b) => b - a);
    if (sorted[0] < 1.3 * sorted[1]) continue; // too close to call on a sample
    const here = scenes.filter((s) => s.site === site);
    const counts = LESIONS.map((l) => here.filter((s) => s.lesions.includes(l)).length);
    assert.equal(LESIONS[counts.indexOf(Math.max(...counts))], mostLikelyLesion(site), site);
    checked.push(site);
  }
  assert.ok(checked.includes('scalp') && checked.includes('hand') && checked.includes('back'), checked.join());
  // concretely: scales on the scalp, vesicles on the hands, macules on the back, ulcers on the legs
  assert.deepEqual(
    ['scalp', 'hand', 'back', 'leg'].map((s) => mostLikelyLesion(s as Site)),
    ['scale', 'vesicle', 'macule', 'ulcer'],
  );
});

test('images without any lesion are rare, several lesion types per image are common', () => {
  const scenes = planDemo(4000, 3);
  const none = scenes.filter((s) => s.lesions.length === 0).length / scenes.length;
  const multi = scenes.filter((s) => s.lesions.length >= 2).length / scenes.length;
  assert.ok(none > 0 && none < 0.05, `none ${none}`);
  assert.ok(multi > 0.3 && multi < 0.45, `multi ${multi}`);
});
