// The web page in a real browser: Debian's Chromium driven by playwright-core against the real dermtl server
// (createServer) with a tiny random model. Checks the bars and labels for the server path and the in-browser
// (onnxruntime-web) path, that both paths agree, the in-page errors, and a narrow screen; saves screenshots in
// test-output/. Skipped, saying so, where /usr/bin/chromium is absent (scripts/install-chromium.sh installs it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { percent } from '../../../src/serve/web/app/bars.ts';
import { OUT, PHOTO, skipReason, startPage, type WebPage } from './browser.ts';
import { saveTinyModel, TINY_LABELS } from './fixture.ts';

/**
 * In-browser vs server probability: the canvas resize is not sharp's lanczos3. Measured on dog.jpg: at most 0.025
 * (centre and ten crops); an in-browser RGB instead of BGR gives 0.06, which this tolerance still catches.
 */
const PATH_TOLERANCE = 0.04;
/** A duration as the page writes it: "38 ms" or "1.2 s" (no-break space). */
const T = '\\d+(\\.\\d)?\u00a0m?s';

const skip = skipReason('web page browser test');

interface Bar {
  label: string;
  p: number;
  text: string;
  fillPx: number;
  trackPx: number;
}
type Scored = { label: string; p: number };

describe('web page in Chromium', { skip }, () => {
  let web: WebPage;

  before(async () => {
    web = await startPage({ prefix: 'dermtl-web-', save: saveTinyModel });
  });

  after(async () => {
    await web?.close();
  });

  function open(viewport = { width: 1100, height: 900 }, colorScheme: 'light' | 'dark' = 'light'): Promise<Page> {
    return web.open({ viewport, colorScheme });
  }

  /** Waits until the page shows a result of `engine` for `tta` (or fails with the page's error message). */
  async function result(
    page: Page,
    engine: 'server' | 'browser',
    tta = 'center',
  ): Promise<{ lesions: Bar[]; locations: Bar[] }> {
    const state = await page.waitForFunction(
      ([e, t]) => {
        const r = document.getElementById('results')!.dataset;
        return r.state === 'error' ? 'error' : r.state === 'done' && r.engine === e && r.tta === t ? 'done' : false;
      },
      [engine, tta],
      { timeout: 60_000 },
    );
    if ((await state.jsonValue()) === 'error')
      assert.fail(`the page shows an error: ${await page.textContent('#error')}`);
    const bars = (id: string) =>
      page.$$eval(`#${id} li`, (items) =>
        items.map((li) => ({
          label: li.querySelector('.bar-label')!.textContent!,
          p: Number((li as HTMLElement).dataset.p),
          text: li.querySelector('.bar-value')!.textContent!,
          fillPx: li.querySelector('.bar-fill')!.getBoundingClientRect().width,
          trackPx: li.querySelector('.bar-track')!.getBoundingClientRect().width,
        })),
      );
    return { lesions: await bars('lesions'), locations: await bars('locations') };
  }

  /** What the server's API itself answers for the photo (the page's server path must show exactly this). */
  async function apiPredict(tta: string): Promise<{ lesions: Scored[]; location: Scored[] }> {
    const res = await fetch(`${web.url}api/predict?tta=${tta}&top=${TINY_LABELS.lesion.length}`, {
      method: 'POST',
      body: await readFile(PHOTO),
      headers: { 'content-type': 'image/jpeg' },
    });
    assert.equal(res.status, 200);
    return (await res.json()) as { lesions: Scored[]; location: Scored[] };
  }

  function checkBars(bars: Bar[], labels: string[], count: number): void {
    assert.equal(bars.length, count);
    assert.ok(
      bars.every((b) => labels.includes(b.label)),
      bars.map((b) => b.label).join(),
    );
    assert.equal(new Set(bars.map((b) => b.label)).size, count);
    for (let i = 1; i < bars.length; i++) assert.ok(bars[i - 1].p >= bars[i].p, 'bars sorted by probability');
    for (const b of bars) {
      assert.ok(b.p >= 0 && b.p <= 1, `${b.label} p=${b.p}`);
      assert.equal(b.text, percent(b.p));
      assert.ok(b.trackPx > 200, `bar track ${b.trackPx}px wide`);
      assert.ok(
        Math.abs(b.fillPx - b.p * b.trackPx) <= 2,
        `${b.label}: bar ${b.fillPx}px for p=${b.p} of ${b.trackPx}px`,
      );
    }
  }

  const byLabel = (s: Scored[]) => new Map(s.map((x) => [x.label, x.p]));

  test('server path: bars for every lesion label and the top-3 locations, exactly the API answer', async () => {
    const page = await open();
    await page.setInputFiles('#file', PHOTO);
    const shown = await result(page, 'server');
    const api = await apiPredict('center');
    checkBars(shown.lesions, TINY_LABELS.lesion, TINY_LABELS.lesion.length);
    checkBars(shown.locations, TINY_LABELS.location, 3);
    assert.deepEqual(
      shown.lesions.map(({ label, p }) => ({ label, p })),
      api.lesions.map(({ label, p }) => ({ label, p })),
    );
    assert.deepEqual(
      shown.locations.map(({ label, p }) => ({ label, p })),
      api.location.slice(0, 3),
    );
    assert.ok(shown.lesions[0].p - shown.lesions.at(-1)!.p > 0.5, 'the tiny model spreads its probabilities');
    assert.equal(await page.textContent('#engine'), 'server');
    assert.match(
      (await page.textContent('#timing'))!,
      new RegExp(`^${T} \\(model ${T}, decoding ${T}\\); ${T} including the upload$`),
    );
    assert.match((await page.getAttribute('#preview', 'src'))!, /^blob:/);
    assert.ok(await page.isVisible('#crop'), 'the centre crop is outlined on the photo');
    assert.equal(await page.isVisible('#site'), false, 'no body-site select for a model that does not take one');
    assert.equal(await page.isVisible('#site-note'), false);
    await page.screenshot({ path: join(OUT, 'page-server.png'), fullPage: true });
    await page.close();
  });

  test("in-browser path (switch by keyboard): onnxruntime-web gives the server's answer within the resize tolerance, centre and ten crops", async () => {
    const page = await open();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
    await page.focus('#in-browser');
    await page.keyboard.press('Space');
    assert.equal(await page.isChecked('#in-browser'), true);
    await page.setInputFiles('#file', PHOTO);
    for (const tta of ['center', '10crop']) {
      if (tta !== 'center') await page.selectOption('#tta', tta);
      const shown = await result(page, 'browser', tta);
      checkBars(shown.lesions, TINY_LABELS.lesion, TINY_LABELS.lesion.length);
      checkBars(shown.locations, TINY_LABELS.location, 3);
      const api = await apiPredict(tta);
      const server = { lesion: byLabel(api.lesions), location: byLabel(api.location) };
      for (const b of shown.lesions)
        assert.ok(
          Math.abs(b.p - server.lesion.get(b.label)!) <= PATH_TOLERANCE,
          `${tta} ${b.label}: browser ${b.p} vs server ${server.lesion.get(b.label)}`,
        );
      for (const b of shown.locations)
        assert.ok(
          Math.abs(b.p - server.location.get(b.label)!) <= PATH_TOLERANCE,
          `${tta} ${b.label}: browser ${b.p} vs server ${server.location.get(b.label)}`,
        );
      assert.equal(shown.lesions[0].label, api.lesions[0].label, 'same top lesion');
      assert.equal(shown.locations[0].label, api.location[0].label, 'same top location');
      assert.equal(await page.textContent('#engine'), 'in your browser');
      assert.match(
        (await page.textContent('#timing'))!,
        new RegExp(`^${T} \\(model ${T}, preprocessing ${T}; WebAssembly, \\d threads?\\)`),
      );
      if (tta === 'center') await page.screenshot({ path: join(OUT, 'page-browser.png'), fullPage: true });
    }
    assert.equal(await page.isVisible('#crop'), false, 'ten crops cover the whole photo: no outline');
    // Everything came from this server (ORT's module and wasm included), and the photo was never uploaded.
    assert.ok(
      requests.includes('/model.onnx') && requests.includes('/ort/ort-wasm-simd-threaded.wasm'),
      requests.join(' '),
    );
    assert.ok(!requests.includes('/api/predict'), 'in-browser inference uploads nothing');
    await page.close();
  });

  test("errors in the page: a text file, a photo over 10 MB (no upload), and the server's message for a broken JPEG", async () => {
    const page = await open();
    const uploads: string[] = [];
    page.on('request', (r) => r.url().includes('/api/predict') && uploads.push(r.url()));
    const shownError = async () => {
      await page.waitForSelector('#error:not([hidden])');
      assert.equal(await page.getAttribute('#results', 'data-state'), 'error');
      assert.equal(await page.isVisible('#output'), false);
      return (await page.textContent('#error'))!;
    };
    await page.setInputFiles('#file', {
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('not a photo'),
    });
    assert.equal(
      await shownError(),
      '"notes.txt" is not a JPEG, PNG or WebP image (its type is text/plain). Please choose a photo.',
    );
    await page.setInputFiles('#file', {
      name: 'huge.jpg',
      mimeType: 'image/jpeg',
      buffer: Buffer.alloc(10 * 1024 * 1024 + 1),
    });
    assert.equal(await shownError(), '"huge.jpg" is 10.0 MB; photos up to 10 MB are accepted.');
    assert.deepEqual(uploads, [], 'refused files are not uploaded');

    const broken = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]);
    await page.setInputFiles('#file', { name: 'broken.jpg', mimeType: 'image/jpeg', buffer: broken });
    await page.waitForFunction(() => document.getElementById('results')!.dataset.state === 'error');
    const res = await fetch(`${web.url}api/predict?tta=center`, {
      method: 'POST',
      body: broken,
      headers: { 'content-type': 'image/jpeg' },
    });
    assert.ok(res.status >= 400 && res.status < 500, `server status ${res.status}`);
    const { error } = (await res.json()) as { error: { message: string } };
    assert.equal(await shownError(), error.message);
    assert.equal(uploads.length, 1);
    await page.screenshot({ path: join(OUT, 'page-error.png'), fullPage: true });
    await page.close();
  });

  test('narrow dark screen (360 px), photo dropped on the drop zone: one column, nothing wider than the screen, bars readable', async () => {
    const page = await open({ width: 360, height: 800 }, 'dark');
    // A drag-and-drop as the browser delivers it: dragover, then drop with the file in a DataTransfer.
    const b64 = (await readFile(PHOTO)).toString('base64');
    const transfer = await page.evaluateHandle((data) => {
      const dt = new DataTransfer();
      dt.items.add(
        new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], 'dropped.jpg', { type: 'image/jpeg' }),
      );
      return dt;
    }, b64);
    await page.dispatchEvent('#drop', 'dragover', { dataTransfer: transfer });
    assert.equal(
      await page.evaluate(() => document.getElementById('drop')!.classList.contains('dragging')),
      true,
      'drop zone highlighted',
    );
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
    const shown = await result(page, 'server');
    checkBars(shown.lesions, TINY_LABELS.lesion, TINY_LABELS.lesion.length);
    assert.deepEqual(
      shown.lesions.map((b) => b.p),
      (await apiPredict('center')).lesions.map((l) => l.p),
      'the dropped photo was classified',
    );
    assert.equal(await page.getAttribute('#preview', 'alt'), 'Your photo: dropped.jpg');
    assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 360, 'no horizontal scrolling');
    const photo = (await page.locator('.photo').boundingBox())!;
    const results = (await page.locator('#results').boundingBox())!;
    assert.ok(results.y >= photo.y + photo.height, 'results below the photo');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(18, 22, 28)', 'dark colours');
    await page.screenshot({ path: join(OUT, 'page-narrow-dark.png'), fullPage: true });
    await page.close();
  });
});
