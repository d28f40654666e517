// The web page's Grad-CAM in a real browser (Debian's Chromium via playwright-core, the real dermtl server, a tiny
// random model at 224): clicking a lesion or location bar shows its map over the photo, on the server path and on
// the in-browser (onnxruntime-web) path, the two maps agree, and a second click hides it. Screenshots in test-output/.
// Skipped, saying so, where /usr/bin/chromium is absent (scripts/install-chromium.sh installs it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { OUT, PHOTO, skipReason, startPage, type WebPage } from './browser.ts';
import { saveTinyModel } from './fixture.ts';

const skip = skipReason('web page Grad-CAM test');

describe('web page Grad-CAM in Chromium', { skip }, () => {
  let web: WebPage;
  /** The lesion and location labels whose maps (centre view of the photo) have the most mass: not empty. */
  let lesion: string, location: string;

  before(async () => {
    web = await startPage({ prefix: 'dermtl-web-cam-', save: saveTinyModel });
    const e = (await web.model.predict(PHOTO, { explain: true })).explanation!;
    const strongest = (maps: { label: string; max: number }[]) => maps.reduce((a, b) => (b.max > a.max ? b : a)).label;
    lesion = strongest(e.lesions);
    location = strongest(e.location);
  });

  after(async () => {
    await web?.close();
  });

  async function open(inBrowser: boolean): Promise<Page> {
    const page = await web.open({ viewport: { width: 1100, height: 900 } });
    if (inBrowser) await page.check('#in-browser');
    await page.setInputFiles('#file', PHOTO);
    const engine = inBrowser ? 'browser' : 'server';
    await page.waitForFunction(
      (e) => {
        const r = document.getElementById('results')!.dataset;
        return r.state === 'error' || (r.state === 'done' && r.engine === e);
      },
      engine,
      { timeout: 90_000 },
    );
    assert.equal(await page.getAttribute('#results', 'data-state'), 'done', (await page.textContent('#error')) ?? '');
    return page;
  }

  /** Clicks the bar of `label` and waits for its map; returns the canvas' alpha channel (the map's shape). */
  async function clickBar(page: Page, list: 'lesions' | 'locations', label: string): Promise<number[]> {
    await page.click(`#${list} li[data-label="${label}"]`);
    await page.waitForFunction(
      (l) => {
        const c = document.getElementById('cam')!;
        return (!c.hidden && c.dataset.label === l) || !document.getElementById('error')!.hidden;
      },
      label,
      { timeout: 90_000 },
    );
    assert.equal(await page.isHidden('#error'), true, (await page.textContent('#error')) ?? '');
    assert.equal(await page.getAttribute(`#${list} li[data-label="${label}"]`, 'aria-pressed'), 'true');
    const box = await page.locator('#cam').boundingBox();
    const img = await page.locator('#preview').boundingBox();
    assert.ok(
      box && img && Math.abs(box.width - img.width) < 1 && Math.abs(box.height - img.height) < 1,
      'the map covers the photo exactly',
    );
    return page.$eval('#cam', (c) => {
      const canvas = c as HTMLCanvasElement;
      const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      return Array.from({ length: d.length / 4 }, (_, i) => d[i * 4 + 3]);
    });
  }

  const correlation = (a: number[], b: number[]) => {
    const n = a.length,
      ma = a.reduce((s, v) => s + v) / n,
      mb = b.reduce((s, v) => s + v) / n;
    let ab = 0,
      aa = 0,
      bb = 0;
    for (let i = 0; i < n; i++) {
      ab += (a[i] - ma) * (b[i] - mb);
      aa += (a[i] - ma) ** 2;
      bb += (b[i] - mb) ** 2;
    }
    return ab / Math.sqrt(aa * bb);
  };

  test('click a bar: its map over the photo (server and in-browser alike, the same map), click again: gone', async () => {
    const server = await open(false);
    const serverLesion = await clickBar(server, 'lesions', lesion);
    assert.ok(serverLesion.filter((a) => a > 0).length > serverLesion.length * 0.05, 'the map is visible');
    assert.match((await server.textContent('#cam-note'))!, new RegExp(`where the model looked for ${lesion}`));
    await server.screenshot({ path: join(OUT, 'page-explain-server.png'), fullPage: true });
    const serverLocation = await clickBar(server, 'locations', location);
    assert.equal(
      await server.getAttribute(`#lesions li[data-label="${lesion}"]`, 'aria-pressed'),
      'false',
      'one map at a time',
    );
    await server.click(`#locations li[data-label="${location}"]`);
    assert.equal(await server.isHidden('#cam'), true, 'a second click hides the map');
    assert.equal(await server.isHidden('#cam-note'), true);
    // keyboard: Enter on a focused bar
    await server.focus(`#lesions li[data-label="${lesion}"]`);
    await server.keyboard.press('Enter');
    await server.waitForFunction(() => !document.getElementById('cam')!.hidden);
    await server.close();

    const local = await open(true);
    const requests: string[] = [];
    local.on('request', (r) => requests.push(new URL(r.url()).pathname));
    const localLesion = await clickBar(local, 'lesions', lesion);
    assert.ok(requests.includes('/explain.onnx'), 'the in-browser path fetches explain.onnx');
    assert.ok(!requests.includes('/api/explain'), 'and never sends the photo');
    assert.equal(await local.getAttribute('#cam', 'data-engine'), 'browser');
    await local.screenshot({ path: join(OUT, 'page-explain-browser.png'), fullPage: true });
    const localLocation = await clickBar(local, 'locations', location);
    await local.close();
    // the in-browser resize is the canvas', not sharp's lanczos3: the maps agree closely, not bit for bit
    for (const [a, b, what] of [
      [serverLesion, localLesion, lesion],
      [serverLocation, localLocation, location],
    ] as const) {
      assert.equal(a.length, b.length);
      assert.ok(
        correlation(a, b) > 0.9,
        `${what}: server and in-browser maps correlate ${correlation(a, b).toFixed(3)}`,
      );
    }
  });
});
