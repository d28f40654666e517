// fusion.init 'cooccurrence': the site layer starts at the training part's site log-odds (trainContext.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph } from '../../src/graph/index.ts';
import { SITE_WEIGHT } from '../../src/models/fusion.ts';
import { buildHeads } from '../../src/models/heads.ts';
import { resolveConfig } from '../../src/train/config.ts';
import { initSiteLayer, siteLogOdds } from '../../src/train/trainContext.ts';
import type { Sample } from '../../src/data/types.ts';

const labels = { lesion: ['a', 'b'], location: ['arm', 'leg'] };
const sample = (lesions: string[], location: string): Sample =>
  ({ image: `${location}.jpg`, path: '/x', lesions, location, group: '1' }) as Sample;

test('siteLogOdds: logit P(i | j) - logit P(i), P(i | j) shrunk towards P(i) by 10 pseudo-images, P(i) add-one', () => {
  // 4 arm images all with a, 2 leg images with b only; one without lesions and one of an unknown site are left out
  const samples = [...Array(4)]
    .map(() => sample(['a'], 'arm'))
    .concat([sample(['b'], 'leg'), sample(['b'], 'leg'), sample([], 'arm'), sample(['a'], 'head')]);
  const u = siteLogOdds(samples, labels);
  const logit = (x: number) => Math.log(x / (1 - x));
  const pa = (4 + 1) / (6 + 2);
  const pb = (2 + 1) / (6 + 2);
  const expect = [
    logit((4 + 10 * pa) / (4 + 10)) - logit(pa),
    logit((0 + 10 * pa) / (2 + 10)) - logit(pa),
    logit((0 + 10 * pb) / (4 + 10)) - logit(pb),
    logit((2 + 10 * pb) / (2 + 10)) - logit(pb),
  ];
  u.forEach((v, k) => assert.ok(Math.abs(v - expect[k]) < 1e-6, `U[${k}] ${v} vs ${expect[k]}`));
  assert.ok(u[0] > 0 && u[1] < 0 && u[2] < 0 && u[3] > 0, 'a site raises the labels seen there and lowers the others');
});

test('initSiteLayer writes the log-odds into the fusion graph (init cooccurrence) and leaves zero otherwise', () => {
  const samples = [sample(['a'], 'arm'), sample(['b'], 'leg'), sample(['a', 'b'], 'arm')];
  const build = () => {
    const g = new Graph();
    const f = g.input('features', [2, 3]);
    buildHeads(g, f, { lesion: 2, location: 2, seed: 0, training: true, fusion: true });
    return g;
  };
  const site = (g: Graph) => g.params({ trainable: true }).find((p) => p.name === SITE_WEIGHT)!.data;
  const on = build();
  initSiteLayer({ config: resolveConfig({ fusion: { enabled: true } }, { task: 'mtl' }), train: samples, labels }, on);
  assert.deepEqual([...site(on)], [...siteLogOdds(samples, labels)]);
  const off = build();
  initSiteLayer(
    { config: resolveConfig({ fusion: { enabled: true, init: 'zero' } }, { task: 'mtl' }), train: samples, labels },
    off,
  );
  assert.deepEqual([...site(off)], [0, 0, 0, 0]);
});
