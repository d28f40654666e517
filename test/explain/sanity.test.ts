// Grad-CAM sanity checks on a real model: the ImageNet ResNet-50 trunk with lesion and location heads fitted here on
// synthetic demo photos (logistic regression on the pooled conv5_x features, folded into ordinary heads), then
// - the maps of held-out photos fall on the drawn lesions: their mass inside each lesion's box (the generator knows
//   where it drew it) is well above chance (a flat map over the view) and above a centre prior;
// - Adebayo et al. (NeurIPS 2018) model randomisation: the same model with re-drawn head weights gives clearly other
//   maps (rank correlation near 0) that fall less on the lesions.
// Needs the ImageNet weights (the dermtl cache, fetched once by the suite); skipped, saying so, when they cannot be had.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoLesionBoxes, generateDemo } from '../../src/data/demo/generate.ts';
import { planDemo } from '../../src/data/demo/plan.ts';
import { LESIONS, SITES } from '../../src/data/demo/table.ts';
import { lesionBoxShares, spearman, summarise, type BoxShare } from '../../src/explain/boxCheck.ts';
import { CAFFE_PREPROCESSING, renderViews } from '../../src/image/index.ts';
import { loadModel as loadFolder, saveModel } from '../../src/models/modelFile.ts';
import type { NetworkSpec } from '../../src/models/network.ts';
import { ensurePretrainedResNet50, RegistryUnreachableError } from '../../src/models/pretrained.ts';
import { loadModel } from '../../src/serve/api.ts';
import { Rng } from '../../src/util/rng.ts';

const SIZE = 256;
const DEMO = { n: 150, seed: 21, size: SIZE };
const SPEC: NetworkSpec = {
  trunk: { depth: 50 },
  imageSize: 224,
  heads: { lesion: LESIONS.length, location: SITES.length, shared: null },
  seed: 0,
};
const LABELS = { lesion: [...LESIONS], location: [...SITES] };

let offline: string | false = false;
try {
  await ensurePretrainedResNet50();
} catch (e) {
  if (!(e instanceof RegistryUnreachableError)) throw e;
  offline = `the ImageNet ResNet-50 weights are not cached and the registry is unreachable (${e.message})`;
}
if (offline) console.log(`SKIPPED the Grad-CAM sanity test: ${offline}`);

test('Grad-CAM on a fitted ImageNet model: maps on the drawn lesions, and not so after randomising the heads', {
  skip: offline,
}, async () => {
  const root = await mkdtemp(join(tmpdir(), 'dermtl-cam-sanity-'));
  try {
    const data = join(root, 'data');
    await generateDemo(data, DEMO);
    const scenes = planDemo(DEMO.n, DEMO.seed);
    // held out: every third scene (all its photos)
    const rows = scenes.flatMap((s) =>
      s.views.map((v) => ({
        image: v.image,
        lesions: s.lesions as string[],
        site: s.site as string,
        test: s.index % 3 === 0,
      })),
    );
    const train = rows.filter((r) => !r.test),
      heldOut = rows.filter((r) => r.test);

    // pooled conv5_x features of the training photos' centre crops, through model.onnx's conv5_x output
    const prep = { ...CAFFE_PREPROCESSING };
    const d = 2048;
    const start = randomHeads(new Map(), 1);
    await saveModel(
      join(root, 'start'),
      { network: SPEC, params: start, labels: LABELS, preprocessing: prep },
      { trunk: 'reference' },
    );
    const trunk = await loadFolder(join(root, 'start'), { threads: 2 });
    const features = new Float64Array(train.length * d);
    for (const [i, r] of train.entries()) {
      const v = await renderViews(join(data, r.image), 'center', null, { prep });
      const a = (await trunk.predict(v.data, 1, { conv5: true })).conv5!;
      for (let c = 0; c < d; c++) {
        let s = 0;
        for (let p = 0; p < 49; p++) s += a[c * 49 + p];
        features[i * d + c] = s / 49;
      }
    }
    await trunk.release();

    const fitted = fitHeads(
      features,
      train.map((r) => r.lesions),
      train.map((r) => r.site),
      d,
    );
    await saveModel(
      join(root, 'fitted'),
      { network: SPEC, params: fitted, labels: LABELS, preprocessing: prep },
      { trunk: 'reference' },
    );
    await saveModel(
      join(root, 'random'),
      { network: SPEC, params: randomHeads(fitted, 2), labels: LABELS, preprocessing: prep },
      { trunk: 'reference' },
    );

    const boxes = demoLesionBoxes(DEMO, new Set(heldOut.map((r) => r.image)));
    const explain = async (dir: string) => {
      const model = await loadModel(dir, { threads: 2 });
      const shares: BoxShare[] = [];
      const maps = new Map<string, number[]>();
      for (const r of heldOut) {
        const e = (await model.predict(join(data, r.image), { explain: true })).explanation!;
        const height = Math.round(SIZE * scenes.flatMap((s) => s.views).find((v) => v.image === r.image)!.aspect);
        shares.push(...lesionBoxShares(r.image, e, boxes.get(r.image)!, SIZE, height).shares);
        for (const m of e.lesions) if (r.lesions.includes(m.label)) maps.set(`${r.image}|${m.label}`, m.map);
      }
      await model.dispose();
      return { summary: summarise(shares), maps };
    };
    const trained = await explain(join(root, 'fitted'));
    const random = await explain(join(root, 'random'));
    const rhos = [...trained.maps].map(([k, m]) => spearman(m, random.maps.get(k)!)).filter(Number.isFinite);
    const meanRho = rhos.reduce((a, b) => a + b, 0) / rhos.length;
    const t = trained.summary,
      r = random.summary;
    console.log(
      `# Grad-CAM on ${heldOut.length} held-out demo photos, ${t.n} (photo, drawn lesion) pairs: mass in the lesion box ` +
        `${t.share.toFixed(3)} (chance ${t.chance.toFixed(3)}, centre prior ${t.centre.toFixed(3)}, above chance in ${(100 * t.aboveChance).toFixed(0)}%); ` +
        `randomised heads ${r.share.toFixed(3)} (${r.n} pairs); trained vs randomised maps: mean Spearman rho ${meanRho.toFixed(3)} over ${rhos.length} maps`,
    );
    assert.ok(t.n >= 20, `only ${t.n} (photo, lesion) pairs with a map`);
    assert.ok(t.share > 2 * t.chance, `mass in box ${t.share} is not clearly above chance ${t.chance}`);
    assert.ok(t.share > t.centre, `mass in box ${t.share} is not above the centre prior ${t.centre}`);
    assert.ok(t.aboveChance > 0.75, `above chance in only ${t.aboveChance} of the pairs`);
    // measured: rho 0.29 for these linear heads (both maps lean on the strongly active conv5_x positions), 0.01 for the
    // demo study's MTL model (shared hidden layer); the box share falls from 0.56 to 0.32
    assert.ok(meanRho < 0.5, `randomised-head maps correlate ${meanRho} with the fitted model's`);
    assert.ok(r.share < t.share - 0.1, `randomised heads put ${r.share} in the box, the fitted model ${t.share}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/**
 * One-vs-rest logistic regression per lesion label and softmax regression over sites on standardised features
 * (L2, full-batch gradient descent), folded into the heads: W' = W / sd, b' = b - W' mean.
 */
function fitHeads(x: Float64Array, lesions: string[][], sites: string[], d: number): Map<string, Float32Array> {
  const n = lesions.length;
  const mean = new Float64Array(d),
    sd = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] += x[i * d + c] / n;
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) sd[c] += (x[i * d + c] - mean[c]) ** 2 / n;
  for (let c = 0; c < d; c++) sd[c] = Math.sqrt(sd[c]) + 1e-6;
  const z = x.map((v, i) => (v - mean[i % d]) / sd[i % d]);
  const fit = (k: number, target: (i: number) => Float64Array, softmax: boolean) => {
    const w = new Float64Array(k * d),
      b = new Float64Array(k);
    const lr = 0.05,
      l2 = 0.05;
    for (let it = 0; it < 150; it++) {
      const gw = new Float64Array(k * d),
        gb = new Float64Array(k);
      for (let i = 0; i < n; i++) {
        const s = Array.from({ length: k }, (_, j) => {
          let v = b[j];
          for (let c = 0; c < d; c++) v += w[j * d + c] * z[i * d + c];
          return v;
        });
        const m = Math.max(...s),
          e = s.map((v) => Math.exp(v - m)),
          total = e.reduce((a, q) => a + q, 0);
        const p = softmax ? e.map((v) => v / total) : s.map((v) => 1 / (1 + Math.exp(-v)));
        const t = target(i);
        for (let j = 0; j < k; j++) {
          const g = (p[j] - t[j]) / n;
          gb[j] += g;
          for (let c = 0; c < d; c++) gw[j * d + c] += g * z[i * d + c];
        }
      }
      for (let q = 0; q < w.length; q++) w[q] -= lr * (gw[q] + l2 * w[q]);
      for (let j = 0; j < k; j++) b[j] -= lr * gb[j];
    }
    const wf = new Float32Array(k * d),
      bf = new Float32Array(k);
    for (let j = 0; j < k; j++) {
      let shift = b[j];
      for (let c = 0; c < d; c++) {
        wf[j * d + c] = w[j * d + c] / sd[c];
        shift -= (w[j * d + c] * mean[c]) / sd[c];
      }
      bf[j] = shift;
    }
    return { w: wf, b: bf };
  };
  const les = fit(LESIONS.length, (i) => Float64Array.from(LESIONS, (l) => +lesions[i].includes(l)), false);
  const loc = fit(SITES.length, (i) => Float64Array.from(SITES, (s) => +(sites[i] === s)), true);
  return new Map([
    ['heads/lesion/weight', les.w],
    ['heads/lesion/bias', les.b],
    ['heads/location/weight', loc.w],
    ['heads/location/bias', loc.b],
  ]);
}

/** The heads with every weight re-drawn from a normal of the same spread (biases kept; zeros where none are given). */
function randomHeads(from: ReadonlyMap<string, Float32Array>, seed: number): Map<string, Float32Array> {
  const r = Rng.seeded(seed);
  const shapes = {
    'heads/lesion/weight': LESIONS.length * 2048,
    'heads/lesion/bias': LESIONS.length,
    'heads/location/weight': SITES.length * 2048,
    'heads/location/bias': SITES.length,
  };
  return new Map(
    Object.entries(shapes).map(([k, len]) => {
      const v = from.get(k);
      if (k.endsWith('/bias')) return [k, v ?? new Float32Array(len)];
      const sd = v ? Math.sqrt(v.reduce((a, x) => a + x * x, 0) / len) : 0.02;
      return [k, Float32Array.from({ length: len }, () => r.normal(0, sd))];
    }),
  );
}
