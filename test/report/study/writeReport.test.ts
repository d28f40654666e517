import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  escapeHtml,
  formatSeconds,
  inlineSvg,
  locationVerdict,
  pairedSentence,
  reportHtml,
} from '../../../src/report/study/html.ts';
import { readResults, type StudyResults } from '../../../src/eval/studyResults.ts';
import { rewriteStudyReport, writeStudyReport } from '../../../src/report/study/writeReport.ts';
import { syntheticResults } from './fixture.ts';

const SCRIPT = '<script>alert("x")</script>';

/** The fixture with a hostile lesion label (in the tables and in Figure 1) and command. */
function hostile(): StudyResults {
  const r = syntheticResults();
  r.lesionLabels[3] = `vascular ${SCRIPT}`;
  r.dataset.cooccurrence.lesions[2] = `df ${SCRIPT}`;
  r.command += ` --note '${SCRIPT}' && echo "a&b"`;
  return r;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dermtl-study-'));
  try {
    await fn(join(dir, 'study'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('writeStudyReport writes results.json, table1.md, both figures and report.html, and nothing else', async () => {
  await withDir(async (dir) => {
    const written = await writeStudyReport(dir, hostile());
    const files = [
      'figure1.png',
      'figure1.svg',
      'figure3.png',
      'figure3.svg',
      'report.html',
      'results.json',
      'table1.md',
    ];
    assert.deepEqual((await readdir(dir)).sort(), files); // no temp files left
    assert.deepEqual(written.map((p) => p.slice(dir.length + 1)).sort(), files);
    assert.deepEqual(await readResults(join(dir, 'results.json')), JSON.parse(JSON.stringify(hostile())));
    assert.match(
      await readFile(join(dir, 'table1.md'), 'utf8'),
      /^\| nevus +\| +120 \| +0\.820 +\| 0\.840 +\| \*\*0\.845\*\* \| 0\.790 +\| 0\.470 +\|$/m,
    );
    const svg1 = await readFile(join(dir, 'figure1.svg'), 'utf8');
    for (const label of ['nevus (120)', 'melanoma (33)', 'back', 'hand']) assert.ok(svg1.includes(`>${label}<`), label);
    assert.ok(!svg1.includes('<script'), 'figure 1 escapes labels');
    const svg3 = await readFile(join(dir, 'figure3.svg'), 'utf8');
    for (const label of ['Location-only', 'MTL', 'Linear', 'Prior', 'top-1', 'top-3'])
      assert.ok(svg3.includes(`>${label}<`), label);
    const png = await sharp(join(dir, 'figure3.png')).metadata();
    assert.equal(png.format, 'png');
    assert.ok(png.width! > 900, `figure 3 PNG is ${png.width} px wide`); // 2x the SVG
    // re-rendering from results.json gives the same page
    const html = await readFile(join(dir, 'report.html'), 'utf8');
    await rewriteStudyReport(dir);
    assert.equal(await readFile(join(dir, 'report.html'), 'utf8'), html);
  });
});

test('invalid results are refused before anything is written', async () => {
  await withDir(async (dir) => {
    const r = syntheticResults() as any;
    r.models.lesion.folds[0].ap.nevus = Number.NaN;
    await assert.rejects(writeStudyReport(dir, r), /invalid study results.*\n.*models\.lesion\.folds\.0\.ap\.nevus/);
    await assert.rejects(stat(dir), /ENOENT/);
    await assert.rejects(
      writeStudyReport(dir, { ...syntheticResults(), version: 1 } as any),
      /results version 1 is not supported/,
    );
  });
});

test('report.html is self-contained: inline SVG and CSS, no script, no external URL', () => {
  const html = reportHtml(hostile(), {
    figure1:
      '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 100 50"><defs><linearGradient id="gradient_0"/></defs><rect fill="url(#gradient_0)"/></svg>',
    figure3: null,
  });
  assert.match(html, /^<!DOCTYPE html>/);
  assert.ok(!/<script/i.test(html), 'no script element');
  assert.ok(!/\s(src|href|action|poster)\s*=\s*["']?\s*(https?:)?\/\//i.test(html), 'no external src/href');
  assert.ok(!/<link|@import|url\(\s*["']?(https?:)?\/\//i.test(html), 'no stylesheet link or remote url()');
  assert.equal((html.match(/<style>/g) ?? []).length, 1);
  // figure ids are scoped, the figure scales with the page
  assert.match(html, /<linearGradient id="fig1-0"\/><\/defs><rect fill="url\(#fig1-0\)"\/>/);
  assert.match(
    html,
    /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="120" height="60" style="max-width:100%;height:auto" viewBox/,
  );
  assert.match(html, /No model has body-location results\./);
});

test('report.html escapes labels and the command, and shows them', () => {
  const html = reportHtml(hostile(), { figure1: null, figure3: null });
  const escaped = '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;';
  assert.ok(html.includes(`<th scope="row">vascular ${escaped}</th>`), 'label in Table 1');
  assert.ok(html.includes(`--note &#39;${escaped}&#39; &amp;&amp; echo &quot;a&amp;b&quot;</code></pre>`), 'command');
  assert.ok(html.includes('&quot;scaleJitter&quot;: [\n    256,\n    288\n  ]'), 'config as indented JSON');
  assert.ok(html.includes('No image of the manifest has a lesion label'), 'missing figure 1 explained');
  assert.equal(escapeHtml(`<a href='x'>&"`), '&lt;a href=&#39;x&#39;&gt;&amp;&quot;');
});

test('report.html has the tables, the paired differences with their 95% CIs, skipped models and timing', () => {
  const r = syntheticResults();
  const html = reportHtml(r, { figure1: null, figure3: null });
  // Table 1: bold best, per-fold mean ± std, summary rows
  assert.match(
    html,
    /<th scope="row">nevus<\/th><td class="num">120<\/td><td class="num">0\.820<\/td><td class="num">0\.840<\/td><td class="num"><b>0\.845<\/b><\/td><td class="num">0\.790<\/td><td class="num">0\.470<\/td><td class="num split">0\.820 ± 0\.013<\/td>/,
  );
  assert.match(html, /<tr class="summary first"><th scope="row">mAP-class<\/th>/);
  assert.match(
    html,
    /<th scope="row">top-1<\/th><td class="num">0\.500<\/td><td class="num"><b>0\.520<\/b><\/td><td class="num">0\.450<\/td><td class="num">0\.300<\/td><td class="num split">0\.497 ± 0\.018 \(2\)<\/td>/,
  );
  // paired: per-fold differences, mean, CI, and what the CI says; MTL - lesion-only first
  assert.match(
    html,
    /<tr class="group-start"><td>MTL − lesion-only<\/td><th scope="row">mAP-class<\/th><td class="num">\+0\.0300<\/td><td class="num">-0\.0050<\/td><td class="num">\+0\.0200<\/td><td class="num split"><b>\+0\.0150<\/b><\/td><td class="num">-0\.0298 to \+0\.0598<\/td>/,
  );
  assert.match(html, /\+0\.0085 to \+0\.0135/);
  assert.match(
    html,
    /The 95% interval for the mAP-class difference MTL − lesion-only, -0\.0298 to \+0\.0598, includes 0: over these 3 folds the data are consistent with no difference between MTL and the lesion-only model/,
  );
  assert.match(
    html,
    /The 95% interval for the mAP-image difference MTL − lesion-only, \+0\.0085 to \+0\.0135, lies above 0: in these 3 folds MTL&#39;s mAP-image was higher/,
  );
  // against the linear baseline: MTL (mAP-class, mAP-image, top-1), lesion-only (mAP-class, mAP-image), location-only (top-1, 2 folds)
  assert.match(
    html,
    /<tr class="group-start"><td>MTL − linear<\/td><th scope="row">mAP-class<\/th><td class="num">\+0\.0600<\/td><td class="num">\+0\.0250<\/td><td class="num">\+0\.0500<\/td>/,
  );
  assert.match(html, /<tr><td><\/td><th scope="row">top-1<\/th><td class="num">\+0\.0900<\/td>/);
  assert.match(html, /<tr class="group-start"><td>lesion-only − linear<\/td><th scope="row">mAP-class<\/th>/);
  assert.match(
    html,
    /<tr class="group-start"><td>location-only − linear<\/td><th scope="row">top-1<\/th><td class="num">\+0\.0700<\/td><td class="num">\+0\.0200<\/td><td class="num">–<\/td>/,
  );
  assert.match(
    html,
    /The 95% interval for the top-1 difference MTL − linear, .* in these 3 folds MTL&#39;s top-1 was higher than the linear baseline&#39;s/,
  );
  // the baselines: what they are, and the lambdas per fold
  assert.match(html, /<section id="baselines">/);
  assert.match(
    html,
    /<tr><th scope="row">0<\/th><td class="num">0\.3<\/td><td class="num">1<\/td><td>validation \(12 images\)<\/td><\/tr>/,
  );
  assert.match(
    html,
    /<tr><th scope="row">2<\/th><td class="num">0\.1<\/td><td class="num">0\.1<\/td><td>default: validation\.fraction is 0<\/td><\/tr>/,
  );
  assert.match(html, /λ runs down 10, 3, 1, 0\.3, 0\.1, 0\.03, 0\.01, 0\.003, 0\.001, 0\.0003, 0\.0001 until/);
  assert.match(
    html,
    /<tr><td>location-only<\/td><td class="num">2<\/td><td>the training part of fold 2 has a single location label<\/td><\/tr>/,
  );
  assert.match(html, /Whole study: <b>1 h 30 min<\/b>/);
  assert.match(
    html,
    /<th scope="row">location-only<\/th><td class="num">9 min 40 s<\/td><td class="num">9 min 35 s<\/td><td class="num">skipped<\/td><td class="num split">19 min 15 s<\/td>/,
  );
  assert.ok(html.includes(r.dataset.manifestHash));
});

test('paired sentences: below 0, and too few folds', () => {
  const p = {
    folds: [0, 1],
    k: 2,
    differences: [-0.02, -0.03],
    mean: -0.025,
    std: 0.007,
    level: 0.95,
    t: 12.7,
    halfWidth: 0.0049,
    ci: [-0.0299, -0.0201] as [number, number],
  };
  assert.match(
    pairedSentence('mapImage', p),
    /-0\.0299 to -0\.0201, lies below 0: in these 2 folds MTL's mAP-image was lower than the lesion-only model's/,
  );
  assert.match(
    pairedSentence('top1', p, 'lesion', 'linear'),
    /top-1 difference lesion-only − linear, .* the lesion-only model's top-1 was lower than the linear baseline's/,
  );
  assert.equal(
    pairedSentence('mapClass', null),
    'mAP-class: not computed, fewer than 2 folds have a mAP-class for both MTL and the lesion-only model.',
  );
  const html = reportHtml(
    { ...syntheticResults(), paired: { mapClass: null, mapImage: null } },
    { figure1: null, figure3: null },
  );
  assert.match(
    html,
    /<tr><td><\/td><th scope="row">mAP-image<\/th><td class="num">–<\/td><td class="num">–<\/td><td class="num">–<\/td><td class="num split">–<\/td>/,
  );
});

test('locationVerdict: the variants whose mAP-class interval lies above 0, else the largest mean; never the ensemble', () => {
  const paired = (mean: number, lo: number, hi: number) => ({
    folds: [0, 1, 2],
    k: 3,
    differences: [lo, mean, hi],
    mean,
    std: 0.01,
    level: 0.95,
    t: 4.3,
    halfWidth: (hi - lo) / 2,
    ci: [lo, hi] as [number, number],
  });
  const v = (mean: number, lo: number, hi: number) => ({
    mapClass: paired(mean, lo, hi),
    mapImage: null,
    apChange: {},
  });
  const none = locationVerdict([
    ['mtl', v(-0.001, -0.011, 0.009)],
    ['mtl-uw', v(-0.055, -0.092, -0.018)],
    ['fusion', v(0.0072, -0.009, 0.024)],
    ['ensemble', v(0.03, 0.01, 0.05)],
  ]);
  assert.match(
    none,
    /^No way of using the body location beats lesion-only .* the largest mean difference is fusion \(site\) \+0\.0072 \[-0\.0090, \+0\.0240\]\./,
  );
  assert.match(none, /Below 0: MTL-UW -0\.0550 \[-0\.0920, -0\.0180\]\.$/);
  assert.doesNotMatch(none, /ensemble/);
  const some = locationVerdict([
    ['fusion', v(0.03, 0.01, 0.05)],
    ['lesion-site', v(0.013, 0.005, 0.021)],
    ['mtl', v(0.04, -0.01, 0.09)],
  ]);
  assert.match(
    some,
    /interval of the paired difference above 0: fusion \(site\) \+0\.0300 .*; lesion-only \+ site \+0\.0130 \[\+0\.0050, \+0\.0210\]\.$/,
  );
  assert.doesNotMatch(some, /MTL/);
  assert.match(locationVerdict([]), /could be computed/);
});

test('formatSeconds and inlineSvg', () => {
  assert.deepEqual([12.34, 605, 5432.1].map(formatSeconds), ['12.3 s', '10 min 05 s', '1 h 30 min']);
  assert.equal(
    inlineSvg(
      '<svg a="1" width="10" height="20"><use href="#x"/><g id="x"/><g id="clip7"/><path clip-path="url(#clip7)"/><use href="#other"/></svg>',
      'p',
      2,
    ),
    '<svg a="1" width="20" height="40" style="max-width:100%;height:auto"><use href="#p-0"/><g id="p-0"/><g id="p-1"/><path clip-path="url(#p-1)"/><use href="#other"/></svg>',
  );
});
