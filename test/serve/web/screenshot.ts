// Takes a screenshot of the web page classifying one photo (for the README: docs/screenshot.png), with the real
// server. Not a test; run by hand, e.g. with a trained model:
//   node --import tsx test/serve/web/screenshot.ts --model demo/study/models/mtl/fold-0/model --image photo.jpg --out docs/screenshot.png
// Without --model it uses a tiny random model (layout only: its numbers mean nothing).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { loadModel } from '../../../src/serve/api.ts';
import { createServer } from '../../../src/serve/server.ts';
import { CHROMIUM, CHROMIUM_ARGS } from './browser.ts';
import { saveTinyModel } from './fixture.ts';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string' },
    image: {
      type: 'string',
      default: new URL('../../../../shared/images/imagenet-samples/dog.jpg', import.meta.url).pathname,
    },
    out: { type: 'string', default: 'test-output/screenshot.png' },
    browser: { type: 'boolean', default: false },
    tta: { type: 'string', default: 'center' },
    width: { type: 'string', default: '1100' },
    height: { type: 'string', default: '760' },
    dark: { type: 'boolean', default: false },
  },
});

const tmp = o.model ? null : await mkdtemp(join(tmpdir(), 'dermtl-shot-'));
if (tmp) await saveTinyModel(join(tmp, 'model'));
const model = await loadModel(o.model ?? join(tmp!, 'model'));
const app = createServer({ model });
const url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/`;
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({
    viewport: { width: Number(o.width), height: Number(o.height) },
    colorScheme: o.dark ? 'dark' : 'light',
  });
  await page.goto(url);
  if (o.browser) await page.check('#in-browser');
  if (o.tta !== 'center') await page.selectOption('#tta', o.tta!);
  await page.setInputFiles('#file', o.image!);
  await page.waitForFunction(
    () => ['done', 'error'].includes(document.getElementById('results')!.dataset.state ?? ''),
    null,
    { timeout: 120_000 },
  );
  await page.locator('#file').blur();
  await page.screenshot({ path: o.out, fullPage: true });
  console.log(
    `${o.out}: ${(await page.textContent('#engine')) || 'error'} ${(await page.textContent('#timing')) ?? ''}`,
  );
} finally {
  await browser.close();
  await app.close();
  await model.dispose();
  if (tmp) await rm(tmp, { recursive: true, force: true });
}
