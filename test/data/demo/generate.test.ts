import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { generateDemo } from '../../../src/data/demo/generate.ts';
import { LESIONS, SITES } from '../../../src/data/demo/table.ts';
import { loadManifest } from '../../../src/data/manifest.ts';
import { DermtlError } from '../../../src/util/errors.ts';
import { centroid, siteFeatures } from './siteFeatures.ts';

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'dermtl-demo-'));
}

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const p = join(e.parentPath, e.name);
      out.set(p.slice(dir.length), await readFile(p));
    }
  }
  return out;
}

test('same seed gives byte-identical files, another seed other files', async () => {
  const root = await tmp();
  try {
    await generateDemo(join(root, 'a'), { n: 7, seed: 5, size: 96 });
    await generateDemo(join(root, 'b'), { n: 7, seed: 5, size: 96 });
    await generateDemo(join(root, 'c'), { n: 7, seed: 6, size: 96 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((d) => filesOf(join(root, d))));
    assert.equal(a.size, 7 + 3); // images + manifest, README, marker
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs between two runs with seed 5`);
    assert.ok(!a.get('/images/demo-0001-1.jpg')!.equals(c.get('/images/demo-0001-1.jpg')!));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the manifest is valid and describes the images; README says synthetic', async () => {
  const root = await tmp();
  try {
    const r = await generateDemo(join(root, 'd'), { n: 12, seed: 1, size: 100 });
    assert.equal(r.images, 12);
    const header = (await readFile(r.manifest, 'utf8')).split('\n')[0];
    assert.equal(header, 'image,lesions,location,group');
    const m = await loadManifest(r.manifest); // also checks every image exists
    assert.equal(m.samples.length, 12);
    const groups = new Map<string, number>();
    for (const s of m.samples) {
      assert.ok((SITES as readonly string[]).includes(s.location), s.location);
      assert.ok(
        s.lesions.every((l) => (LESIONS as readonly string[]).includes(l)),
        s.lesions.join(),
      );
      groups.set(s.group, (groups.get(s.group) ?? 0) + 1);
      const meta = await sharp(s.path).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.equal(meta.width, 100);
      assert.ok(meta.height! >= 75 && meta.height! <= 100, `height ${meta.height}`);
    }
    assert.equal(groups.size, r.groups);
    assert.ok([...groups.values()].every((k) => k >= 1 && k <= 3));
    // images of one group show the same scene: same labels
    const sceneOf = new Map<string, string>();
    for (const s of m.samples) {
      const scene = `${s.location}|${s.lesions}`;
      assert.equal(sceneOf.get(s.group) ?? scene, scene, s.group);
      sceneOf.set(s.group, scene);
    }
    assert.match(await readFile(join(r.dir, 'README.txt'), 'utf8'), /^SYNTHETIC DEMO DATA/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('refuses a non-empty folder that is not a demo folder, and leaves it untouched', async () => {
  const root = await tmp();
  try {
    const precious = join(root, 'real');
    await mkdir(precious);
    await writeFile(join(precious, 'photo.jpg'), 'patient data');
    await assert.rejects(generateDemo(precious, { n: 2, seed: 0, size: 64 }), (e: unknown) => {
      assert.ok(e instanceof DermtlError);
      assert.match(e.message, /not empty.*refusing/);
      return true;
    });
    assert.equal(await readFile(join(precious, 'photo.jpg'), 'utf8'), 'patient data');
    assert.deepEqual(await readdir(root), ['real']); // no temp folder left behind
    // a previous demo folder is replaced as a whole
    const demo = join(root, 'demo');
    await generateDemo(demo, { n: 5, seed: 0, size: 64 });
    await generateDemo(demo, { n: 2, seed: 0, size: 64 });
    assert.equal((await readdir(join(demo, 'images'))).length, 2);
    await assert.rejects(generateDemo(join(root, 'x'), { n: 0, seed: 0, size: 64 }), /--n must be/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the skin alone shows the body site: colour, hair and texture differ by site', () => {
  const K = 6,
    size = 160;
  const feats = SITES.map((site, si) => Array.from({ length: K }, (_, k) => siteFeatures(site, si * 100 + k, size)));
  const c = Object.fromEntries(SITES.map((s, si) => [s, centroid(feats[si])]));
  const [R, G, , , DARK, DETAIL] = [0, 1, 2, 3, 4, 5];
  // dense dark hair on the scalp, none on back, palms or soles
  for (const bare of ['back', 'hand', 'foot']) assert.ok(c.scalp[DARK] > 4 * c[bare][DARK], `scalp vs ${bare}`);
  // the sole is yellower (more green, less red) than the pink palm
  assert.ok(c.foot[G] > c.hand[G] + 0.02 && c.foot[R] < c.hand[R], 'foot vs hand colour');
  // palm ridges give more fine detail than the smooth back
  assert.ok(c.hand[DETAIL] > 1.4 * c.back[DETAIL], 'hand vs back texture');
  // leave-one-out nearest centroid on z-scored features: far above chance (1/8), not necessarily perfect
  const all = feats.flat(),
    mu = centroid(all);
  const sd = mu.map((m, q) => Math.sqrt(all.reduce((s, r) => s + (r[q] - m) ** 2, 0) / all.length));
  const z = feats.map((rows) => rows.map((r) => r.map((v, q) => (v - mu[q]) / sd[q])));
  let correct = 0;
  z.forEach((rows, si) =>
    rows.forEach((row, k) => {
      const dist = z.map((other, sj) => {
        const cen = centroid(other.filter((_, kk) => sj !== si || kk !== k));
        return cen.reduce((s, v, q) => s + (v - row[q]) ** 2, 0);
      });
      if (dist.indexOf(Math.min(...dist)) === si) correct++;
    }),
  );
  assert.ok(correct / all.length >= 0.45, `nearest-centroid accuracy ${correct / all.length}`);
});
