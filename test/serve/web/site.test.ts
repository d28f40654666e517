// The web page with a model that takes the body site (late fusion, issue 9): a "body site" select listing the model's
// locations (absent for other models: page.test.ts), the server path sends ?location=, the in-browser path
// (onnxruntime-web) feeds the site inputs itself and agrees with the server, and Grad-CAM on both paths uses the
// site of the prediction shown. Real Chromium against the real server, as page.test.ts; skipped the same way.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { CAFFE_PREPROCESSING } from '../../../src/image/index.ts';
import { SITE_WEIGHT } from '../../../src/models/fusion.ts';
import { saveModel } from '../../../src/models/modelFile.ts';
import { buildNetwork, collectParams, type NetworkSpec } from '../../../src/models/network.ts';
import { Rng } from '../../../src/util/rng.ts';
import { OUT, PHOTO, skipReason, startPage, type WebPage } from './browser.ts';
import { TINY_LABELS, TINY_SPEC } from './fixture.ts';

/** In-browser vs server probability (the canvas resize is not sharp's lanczos3): as page.test.ts. */
const PATH_TOLERANCE = 0.04;

const skip = skipReason('web page body-site test');

const FUSION_SPEC: NetworkSpec = { ...TINY_SPEC, heads: { ...TINY_SPEC.heads, fusion: true } };

/** The page fixture's tiny random model with the site term, its weights drawn large enough to move the bars. */
async function saveFusionModel(dir: string): Promise<void> {
  const net = buildNetwork(FUSION_SPEC, { batch: 1, mode: 'inference', weights: 'random' });
  const r = Rng.seeded(7);
  const params = collectParams(net.graph);
  for (const [name, v] of params) {
    if (name === SITE_WEIGHT)
      params.set(
        name,
        v.map(() => 2 * r.normal()),
      );
    else if (/lesion|location/.test(name) && /bias/.test(name))
      params.set(
        name,
        v.map((x) => x + 0.5 * r.normal()),
      );
  }
  await saveModel(dir, {
    network: FUSION_SPEC,
    params,
    labels: TINY_LABELS,
    preprocessing: { ...CAFFE_PREPROCESSING },
  });
}

type Scored = { label: string; p: number };

describe('web page body site in Chromium', { skip }, () => {
  let web: WebPage;

  before(async () => {
    web = await startPage({ prefix: 'dermtl-web-site-', save: saveFusionModel });
  });

  after(async () => {
    await web?.close();
  });

  /** Waits for a result of `engine` computed with `site` ('' = unknown); returns its lesion bars. */
  async function result(page: Page, engine: 'server' | 'browser', site: string): Promise<Scored[]> {
    const state = await page.waitForFunction(
      ([e, s]) => {
        const r = document.getElementById('results')!.dataset;
        return r.state === 'error' ? 'error' : r.state === 'done' && r.engine === e && r.site === s ? 'done' : false;
      },
      [engine, site],
      { timeout: 90_000 },
    );
    if ((await state.jsonValue()) === 'error')
      assert.fail(`the page shows an error: ${await page.textContent('#error')}`);
    return page.$$eval('#lesions li', (items) =>
      items.map((li) => ({
        label: li.querySelector('.bar-label')!.textContent!,
        p: Number((li as HTMLElement).dataset.p),
      })),
    );
  }

  async function apiPredict(site: string): Promise<Scored[]> {
    const res = await fetch(
      `${web.url}api/predict?top=${TINY_LABELS.lesion.length}${site ? `&location=${site}` : ''}`,
      {
        method: 'POST',
        body: await readFile(PHOTO),
        headers: { 'content-type': 'image/jpeg' },
      },
    );
    assert.equal(res.status, 200);
    return ((await res.json()) as { lesions: Scored[] }).lesions;
  }

  /** Clicks the bar of `label` and waits for its map (or fails with the page's error). */
  async function showMap(page: Page, label: string): Promise<void> {
    await page.click(`#lesions li[data-label="${label}"]`);
    await page.waitForFunction(
      (l) => {
        const c = document.getElementById('cam')!;
        return (!c.hidden && c.dataset.label === l) || !document.getElementById('error')!.hidden;
      },
      label,
      { timeout: 90_000 },
    );
    assert.equal(await page.isHidden('#error'), true, (await page.textContent('#error')) ?? '');
  }

  test("the site select lists the model's locations; server and in-browser paths use the chosen site, Grad-CAM too", async () => {
    const page = await web.browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('pageerror', (e) => web.pageErrors.push(e.message));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(new URL(r.url()).pathname + new URL(r.url()).search));
    await page.goto(web.url);
    await page.waitForFunction(() => document.getElementById('model-info')?.textContent !== '');
    assert.equal(await page.isVisible('#site'), true, 'a fusion model offers the body site');
    assert.deepEqual(await page.$$eval('#site option', (o) => o.map((x) => (x as HTMLOptionElement).value)), [
      '',
      ...TINY_LABELS.location,
    ]);

    await page.setInputFiles('#file', PHOTO);
    const unknown = await result(page, 'server', '');
    assert.deepEqual(
      unknown,
      (await apiPredict('')).map(({ label, p }) => ({ label, p })),
    );
    assert.match((await page.textContent('#site-note'))!, /Body site not given/);
    await page.selectOption('#site', 'arm');
    const arm = await result(page, 'server', 'arm');
    assert.deepEqual(
      arm,
      (await apiPredict('arm')).map(({ label, p }) => ({ label, p })),
    );
    assert.notDeepEqual(arm, unknown, 'the site changes the lesion bars');
    assert.equal(await page.textContent('#site-note'), 'Lesion types scored knowing the body site: arm.');
    assert.ok(
      requests.some((r) => r.startsWith('/api/predict?') && r.includes('location=arm')),
      requests.join(' '),
    );
    await showMap(page, arm[0].label);
    assert.ok(
      requests.some((r) => r.startsWith('/api/explain?') && r.includes('location=arm')),
      "the map is the prediction's: same site",
    );
    await page.screenshot({ path: join(OUT, 'page-site-server.png'), fullPage: true });

    await page.check('#in-browser');
    const local = await result(page, 'browser', 'arm');
    const server = new Map(arm.map((s) => [s.label, s.p]));
    for (const b of local)
      assert.ok(
        Math.abs(b.p - server.get(b.label)!) <= PATH_TOLERANCE,
        `${b.label}: browser ${b.p} vs server ${server.get(b.label)}`,
      );
    await showMap(page, local[0].label);
    await page.selectOption('#site', '');
    const localUnknown = await result(page, 'browser', '');
    const serverUnknown = new Map(unknown.map((s) => [s.label, s.p]));
    for (const b of localUnknown)
      assert.ok(
        Math.abs(b.p - serverUnknown.get(b.label)!) <= PATH_TOLERANCE,
        `${b.label} (site unknown): browser ${b.p} vs server ${serverUnknown.get(b.label)}`,
      );
    assert.ok(
      !requests.some((r) => r.startsWith('/api/explain') && !r.includes('location=arm')),
      'in-browser maps upload nothing',
    );
    await page.close();
  });
});
