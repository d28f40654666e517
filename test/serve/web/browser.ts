// The set-up the web-page tests share: Debian's Chromium driven by playwright-core against the real dermtl server
// (createServer) with a model saved in a temp folder. Skipped, saying so, where /usr/bin/chromium or ../shared (the
// photo) is absent (scripts/install-chromium.sh installs Chromium).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { loadModel, type DermtlModel } from '../../../src/serve/api.ts';
import { createServer } from '../../../src/serve/server.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
export const PHOTO = new URL('../../../../shared/images/imagenet-samples/dog.jpg', import.meta.url).pathname;
/** Where the tests save their screenshots. */
export const OUT = 'test-output';

/** Why the browser tests cannot run here (for describe's `skip`, and logged as "SKIPPED the `what`: ..."), or false. */
export function skipReason(what: string): string | false {
  const skip = !existsSync(CHROMIUM)
    ? `${CHROMIUM} is absent: run scripts/install-chromium.sh (as root) to test the web page in a browser`
    : !existsSync(PHOTO)
      ? `${PHOTO} not found (../shared is absent)`
      : false;
  if (skip) console.log(`SKIPPED the ${what}: ${skip}`);
  return skip;
}

export interface WebPage {
  /** The page's address on the server, ending in '/'. */
  url: string;
  browser: Browser;
  model: DermtlModel;
  /** The temp folder; the model is in root/model. */
  root: string;
  /** Uncaught errors in the pages opened with open() (or recorded by the test): close() asserts there are none. */
  pageErrors: string[];
  /** A new page at `url` that records its uncaught errors, once it shows the model's info. */
  open(options?: BrowserContextOptions): Promise<Page>;
  /** Closes the browser, the server and the model, removes the temp folder, then asserts no uncaught page errors. */
  close(): Promise<void>;
}

/**
 * Saves a model with `save` to a temp folder (`prefix`...), loads it, serves it on a free port and launches Chromium;
 * a failure part way closes what was already started.
 */
export async function startPage(opts: { prefix: string; save: (dir: string) => Promise<unknown> }): Promise<WebPage> {
  let browser: Browser | undefined;
  let app: ReturnType<typeof createServer> | undefined;
  let model: DermtlModel | undefined;
  let root: string | undefined;
  const pageErrors: string[] = [];
  const close = async () => {
    await browser?.close();
    await app?.close();
    await model?.dispose();
    if (root) await rm(root, { recursive: true, force: true });
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  };
  try {
    const { chromium } = await import('playwright-core');
    root = await mkdtemp(join(tmpdir(), opts.prefix));
    await opts.save(join(root, 'model'));
    model = await loadModel(join(root, 'model'), { threads: 1 });
    app = createServer({ model });
    const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    await mkdir(OUT, { recursive: true });
    const b = browser;
    const open = async (options?: BrowserContextOptions) => {
      const page = await b.newPage(options);
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(url);
      await page.waitForFunction(() => document.getElementById('model-info')?.textContent !== '');
      return page;
    };
    return { url, browser, model, root, pageErrors, open, close };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
