// Does Grad-CAM fall on the drawn lesion? On a synthetic demo dataset (dermtl demo-data: its demo.json gives n, seed
// and size, so the generator can redraw where each lesion is), every test-fold photo's lesion labels are explained
// with the model and the share of each map's mass inside its lesion's box is compared with chance (a flat map) and a
// centre prior (explain/boxCheck.ts). Also times one predict + explain.
//   node --import tsx bench/cam-box.ts --model demo/study/models/mtl/fold-0/model --data demo/data --folds demo/study/folds.json --fold 0 [--random-heads]
// --random-heads: the same model with every head weight re-drawn (Adebayo et al. 2018: a map that survives this
// does not explain the model); prints the rank correlation of the two models' maps.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { demoLesionBoxes } from '../src/data/demo/generate.ts';
import { lesionBoxShares, spearman, summarise, type BoxShare } from '../src/explain/boxCheck.ts';
import { loadModel as loadFolder, saveModel } from '../src/models/modelFile.ts';
import { loadModel } from '../src/serve/api.ts';
import { Rng } from '../src/util/rng.ts';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string' },
    data: { type: 'string' },
    folds: { type: 'string' },
    fold: { type: 'string', default: '0' },
    'random-heads': { type: 'boolean', default: false },
    limit: { type: 'string' },
  },
});
if (!o.model || !o.data) throw new Error('--model DIR and --data DEMO_DIR are required');
const demo = JSON.parse(await readFile(join(o.data, 'demo.json'), 'utf8')) as { n: number; seed: number; size: number };
const rows = (await readFile(join(o.data, 'manifest.csv'), 'utf8'))
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split(','));
let images = rows.map((r) => ({ image: r[0], group: r[3] }));
if (o.folds) {
  const folds = JSON.parse(await readFile(o.folds, 'utf8')) as { splits: { fold: number; test: string[] }[] };
  const test = new Set(folds.splits.find((f) => f.fold === Number(o.fold))?.test ?? []);
  images = images.filter((i) => test.has(i.image));
}
if (o.limit) images = images.slice(0, Number(o.limit));
const boxes = demoLesionBoxes(demo, new Set(images.map((i) => i.image)));

async function run(modelDir: string) {
  const model = await loadModel(modelDir);
  const shares: BoxShare[] = [];
  const maps = new Map<string, number[]>();
  let empty = 0;
  const times: number[] = [];
  for (const { image } of images) {
    const path = join(o.data!, image);
    const meta = await sharp(path).metadata();
    const t0 = performance.now();
    const p = await model.predict(path, { explain: true });
    times.push(performance.now() - t0);
    const r = lesionBoxShares(image, p.explanation!, boxes.get(image) ?? [], meta.width!, meta.height!);
    shares.push(...r.shares);
    empty += r.empty;
    for (const m of p.explanation!.lesions) maps.set(`${image}|${m.label}`, m.map);
  }
  await model.dispose();
  times.sort((a, b) => a - b);
  return { shares, empty, maps, medianMs: times[Math.floor(times.length / 2)] };
}

const fmt = (s: ReturnType<typeof summarise>) =>
  `${s.n} (photo, lesion) pairs: mass in box ${s.share.toFixed(3)}, chance ${s.chance.toFixed(3)}, centre prior ${s.centre.toFixed(3)}, above chance in ${(100 * s.aboveChance).toFixed(0)}%`;
const trained = await run(o.model);
console.log(
  `${images.length} photos; trained model: ${fmt(summarise(trained.shares))}; ${trained.empty} empty maps; predict + explain median ${trained.medianMs.toFixed(0)} ms`,
);

if (o['random-heads']) {
  const tmp = await mkdtemp(join(tmpdir(), 'dermtl-cam-random-'));
  try {
    const loaded = await loadFolder(o.model, { session: false });
    const r = Rng.seeded(12345);
    const params = loaded.params();
    // re-draw every head weight with the trained one's own spread (biases kept), the cascading test's last step
    for (const [k, v] of params) {
      if (!k.startsWith('heads/') || !k.endsWith('/weight')) continue;
      const sd = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
      params.set(
        k,
        v.map(() => r.normal(0, sd)),
      );
    }
    await saveModel(
      join(tmp, 'm'),
      { network: loaded.network, params, labels: loaded.labels, preprocessing: loaded.preprocessing },
      { trunk: loaded.manifest.trunk ? 'reference' : 'embed' },
    );
    const random = await run(join(tmp, 'm'));
    console.log(`randomised heads: ${fmt(summarise(random.shares))}; ${random.empty} empty maps`);
    const rhos = [...trained.maps].map(([k, a]) => spearman(a, random.maps.get(k)!)).filter((v) => Number.isFinite(v));
    console.log(
      `rank correlation trained vs randomised maps: mean ${mean(rhos).toFixed(3)}, mean |rho| ${mean(rhos.map(Math.abs)).toFixed(3)} over ${rhos.length} maps`,
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function mean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
}
