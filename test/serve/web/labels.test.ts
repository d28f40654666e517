// Long label names on the page (issue 10 item 4): with derm7pt's 22 lesion labels (`vascular_structures:linear
// irregular`, `pigment_network:typical` / `:atypical`, ...) every name is shown whole, wrapped rather than cut, at
// desktop width and at 360 px. Real Chromium against the real server, as page.test.ts; skipped the same way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CAFFE_PREPROCESSING } from '../../../src/image/index.ts';
import { saveModel } from '../../../src/models/modelFile.ts';
import { buildNetwork, collectParams, type NetworkSpec } from '../../../src/models/network.ts';
import { OUT, PHOTO, skipReason, startPage, type WebPage } from './browser.ts';

const skip = skipReason('long-label page test');

/** derm7pt's refined labels (min count 10). */
const LABELS = {
  lesion: [
    'blue_whitish_veil:present',
    'dots_and_globules:irregular',
    'dots_and_globules:regular',
    'elevation:flat',
    'elevation:nodular',
    'elevation:palpable',
    'pigment_network:atypical',
    'pigment_network:typical',
    'pigmentation:diffuse irregular',
    'pigmentation:diffuse regular',
    'pigmentation:localized irregular',
    'regression_structures:blue areas',
    'regression_structures:combinations',
    'regression_structures:white areas',
    'streaks:irregular',
    'streaks:regular',
    'vascular_structures:arborizing',
    'vascular_structures:comma',
    'vascular_structures:dotted',
    'vascular_structures:hairpin',
    'vascular_structures:linear irregular',
    'vascular_structures:within regression',
  ],
  location: ['abdomen', 'acral', 'back', 'buttocks', 'chest', 'head neck', 'lower limbs', 'upper limbs'],
};

describe('long label names on the page', { skip }, () => {
  let web: WebPage;

  before(async () => {
    const spec: NetworkSpec = {
      trunk: { depth: 'tiny' },
      imageSize: 224,
      seed: 3,
      heads: { lesion: LABELS.lesion.length, location: LABELS.location.length },
    };
    const params = collectParams(buildNetwork(spec, { batch: 1, mode: 'inference', weights: 'random' }).graph);
    web = await startPage({
      prefix: 'dermtl-labels-',
      save: (dir) =>
        saveModel(dir, { network: spec, params, labels: LABELS, preprocessing: { ...CAFFE_PREPROCESSING } }),
    });
  });

  after(async () => {
    await web?.close();
  });

  for (const width of [1100, 360]) {
    test(`every lesion name whole at ${width} px: the text is the label, nothing is clipped, no label runs into its bar`, async () => {
      const page = await web.browser.newPage({ viewport: { width, height: 900 } });
      await page.goto(web.url);
      await page.setInputFiles('#file', PHOTO);
      await page.waitForFunction(() => document.getElementById('results')!.dataset.state === 'done', undefined, {
        timeout: 60_000,
      });
      const shown = await page.$$eval('#lesions li', (items) =>
        items.map((li) => {
          const label = li.querySelector('.bar-label') as HTMLElement;
          const track = li.querySelector('.bar-track')!.getBoundingClientRect();
          const box = label.getBoundingClientRect();
          return {
            text: label.textContent!,
            scroll: label.scrollWidth,
            client: label.clientWidth,
            right: box.right,
            bottom: box.bottom,
            trackLeft: track.left,
            trackTop: track.top,
          };
        }),
      );
      assert.deepEqual(shown.map((s) => s.text).sort(), [...LABELS.lesion].sort());
      for (const s of shown) {
        assert.ok(s.scroll <= s.client + 1, `${s.text}: ${s.scroll}px of text in a ${s.client}px box (cut)`);
        // beside its bar (wide) or above it (narrow), never on top of it
        assert.ok(s.right <= s.trackLeft + 1 || s.bottom <= s.trackTop + 1, `${s.text} overlaps its bar`);
      }
      assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= width, 'no horizontal scrolling');
      // each lesion bar carries the server's decision: present = p >= the label's threshold (0.5 here: no calibration)
      const decisions = await page.$$eval('#lesions li', (items) =>
        items.map((li) => ({ p: Number((li as HTMLElement).dataset.p), present: (li as HTMLElement).dataset.present })),
      );
      for (const d of decisions) assert.equal(d.present, String(d.p >= 0.5));
      await page.screenshot({ path: join(OUT, `page-long-labels-${width}.png`), fullPage: true });
      await page.close();
    });
  }
});
