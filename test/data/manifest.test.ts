import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifest, manifestHash, splitLesions, writeManifest } from '../../src/data/manifest.ts';
import { DermtlError } from '../../src/util/errors.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'dermtl-manifest-'));
}

/** A folder with images a.jpg, b.jpg, sub/c.jpg (content irrelevant: the loader only checks existence). */
async function withImages(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'sub'));
  for (const f of ['a.jpg', 'b.jpg', 'sub/c.jpg']) await writeFile(join(dir, f), 'x');
  return dir;
}

async function loadErr(dir: string, csv: string, opts = {}): Promise<string> {
  const file = join(dir, 'm.csv');
  await writeFile(file, csv);
  try {
    await loadManifest(file, opts);
  } catch (e) {
    assert.ok(e instanceof DermtlError, `expected DermtlError, got ${e}`);
    return e.message;
  }
  assert.fail('expected the manifest to be refused');
}

test('loads rows, normalises lesions, keeps extra columns and line numbers', async () => {
  const dir = await withImages();
  const file = join(dir, 'm.csv');
  await writeFile(
    file,
    'group,image,diagnosis,lesions,location\ng1,a.jpg,nevus, streaks ; dots;;streaks ,back\ng1,"sub/c.jpg",mel,,head neck\n\ng2,./b.jpg,x,"a;b",chest\n',
  );
  const m = await loadManifest(file);
  assert.equal(m.dir, dir);
  assert.deepEqual(m.extraColumns, ['diagnosis']);
  assert.equal(m.samples.length, 3);
  const [a, c, b] = m.samples;
  assert.deepEqual(a.lesions, ['streaks', 'dots']);
  assert.equal(a.line, 2);
  assert.deepEqual(a.extra, { diagnosis: 'nevus' });
  assert.equal(a.path, join(dir, 'a.jpg'));
  assert.deepEqual(c.lesions, []);
  assert.equal(c.location, 'head neck');
  assert.equal(b.image, 'b.jpg');
  assert.equal(b.line, 5);
  assert.deepEqual(b.lesions, ['a', 'b']);
});

test('CRLF line endings and a UTF-8 BOM are read, cells trimmed', async () => {
  const dir = await withImages();
  const file = join(dir, 'm.csv');
  await writeFile(file, '\ufeffimage,lesions,location,group\r\na.jpg,x, back , g1 \r\n"sub/c.jpg","y;z",face,g2\r\n');
  const m = await loadManifest(file);
  assert.deepEqual(
    m.samples.map((s) => [s.image, s.lesions, s.location, s.group, s.line]),
    [
      ['a.jpg', ['x'], 'back', 'g1', 2],
      ['sub/c.jpg', ['y', 'z'], 'face', 'g2', 3],
    ],
  );
});

test('splitLesions trims, drops empty pieces and dedupes', () => {
  assert.deepEqual(splitLesions(' a ;b;; a;'), ['a', 'b']);
  assert.deepEqual(splitLesions(''), []);
});

test('collects every problem with its line number in one error', async () => {
  const dir = await withImages();
  const msg = await loadErr(
    dir,
    [
      'image,lesions,location,group',
      'a.jpg,x,back,g1', // ok
      'a.jpg,x,back,g2', // 3 duplicate
      ',x,back,g3', // 4 empty image
      'b.jpg,x,,g4', // 5 empty location
      'sub/c.jpg,x,back,', // 6 empty group
      'missing.jpg,x,back,g7', // 7 missing file
      '/etc/passwd,x,back,g8', // 8 absolute
      'sub/../../../etc/passwd,x,back,g9', // 9 traversal
      'b.jpg,x,back,g10,extra', // 10 column count
      'b.jpg,x,"back;chest",g11', // 11 two locations
    ].join('\n') + '\n',
  );
  assert.match(msg, /invalid manifest .*m\.csv \(9 problems\)/);
  assert.match(msg, /line 3: duplicate image "a\.jpg" \(first at line 2\)/);
  assert.match(msg, /line 4: empty image path/);
  assert.match(msg, /line 5: empty location/);
  assert.match(msg, /line 6: empty group/);
  assert.match(msg, /line 7: image file not found: missing\.jpg/);
  assert.match(msg, /line 8: image path "\/etc\/passwd" is absolute/);
  assert.match(msg, /line 9: .*path traversal refused/);
  assert.match(msg, /line 10: expected 4 columns, found 5/);
  assert.match(msg, /line 11: location must be exactly one label/);
  // problems come out in line order
  assert.ok(msg.indexOf('line 3:') < msg.indexOf('line 11:'));
});

test('malformed quoting is reported with the lines it swallowed, other rows still checked', async () => {
  const dir = await withImages();
  const msg = await loadErr(
    dir,
    'image,lesions,location,group\na.jpg,"x,back,g1\nb.jpg,y,back,g2\nsub/c.jpg,z,"back,g3\nb.jpg,y,,g4\n',
  );
  assert.match(msg, /line 2: malformed CSV quoting, record runs on to line 4 \(Invalid Closing Quote/);
  assert.match(msg, /line 4: malformed CSV quoting, record runs on to line 5 \(Quote Not Closed/);
  assert.match(msg, /line 5: empty location/);
  assert.match(msg, /\(3 problems\)/);
});

test('header, empty-manifest and missing-file errors name the file', async () => {
  const dir = await withImages();
  assert.match(
    await loadErr(dir, 'image,labels,location\na.jpg,x,back\n'),
    /line 1: header lacks column\(s\) lesions, group/,
  );
  assert.match(await loadErr(dir, 'image,lesions,location,group\n'), /m\.csv .*header but no rows/s);
  assert.match(await loadErr(dir, ''), /line 1: no header/);
  await assert.rejects(
    loadManifest(join(dir, 'nope.csv')),
    (e: Error) => e instanceof DermtlError && /manifest not found: .*nope\.csv/.test(e.message),
  );
});

test('leading ../ reaches a dataset elsewhere; confine refuses it; checkImages=false skips the file check', async () => {
  const dir = await withImages();
  await mkdir(join(dir, 'out'));
  const file = join(dir, 'out', 'm.csv');
  await writeFile(file, 'image,lesions,location,group\n../a.jpg,x,back,g\n../gone.jpg,x,back,h\n');
  await assert.rejects(loadManifest(file), /line 3: image file not found/);
  const m = await loadManifest(file, { checkImages: false });
  assert.equal(m.samples[0].path, join(dir, 'a.jpg'));
  await assert.rejects(
    loadManifest(file, { confine: true, checkImages: false }),
    /line 2: image path "\.\.\/a\.jpg" leaves the manifest's folder/,
  );
});

test('writeManifest round-trips through loadManifest, quoting commas, atomically', async () => {
  const dir = await withImages();
  const file = join(dir, 'w.csv');
  await writeManifest(file, [
    {
      image: 'a.jpg',
      lesions: ['pigmentation:diffuse irregular', 'x,y'],
      location: 'head neck',
      group: '1',
      extra: { diagnosis: 'clark nevus' },
    },
    { image: 'sub/c.jpg', lesions: [], location: 'back', group: '2' },
  ]);
  const text = await readFile(file, 'utf8');
  assert.equal(text.split('\n')[0], 'image,lesions,location,group,diagnosis');
  const m = await loadManifest(file);
  assert.deepEqual(
    m.samples.map((s) => [s.image, s.lesions, s.location, s.group, s.extra.diagnosis]),
    [
      ['a.jpg', ['pigmentation:diffuse irregular', 'x,y'], 'head neck', '1', 'clark nevus'],
      ['sub/c.jpg', [], 'back', '2', ''],
    ],
  );
  assert.deepEqual(
    (await readdir(dir)).filter((f) => f.startsWith('.tmp')),
    [],
  );
  await assert.rejects(
    writeManifest(file, [{ image: 'a.jpg', lesions: ['a;b'], location: 'x', group: 'g' }]),
    /row 1 \(a\.jpg\): lesion label\(s\) contain ";"/,
  );
  await assert.rejects(
    writeManifest(file, [{ image: 'a.jpg', lesions: [], location: 'x', group: 'g' }], ['dx', 'group']),
    /extra column name\(s\) clash .*: group/,
  );
  // a failed write leaves the previous manifest in place
  assert.equal((await loadManifest(file)).samples.length, 2);
});

test('manifestHash ignores row order and extra columns but sees label changes', async () => {
  const s = (image: string, lesions: string[], location = 'back') => ({
    image,
    path: image,
    lesions,
    location,
    group: 'g',
    line: 0,
    extra: {},
  });
  const h = manifestHash({ samples: [s('a', ['x', 'y']), s('b', [])] });
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(manifestHash({ samples: [s('b', []), s('a', ['y', 'x'])] }), h);
  assert.notEqual(manifestHash({ samples: [s('a', ['x']), s('b', [])] }), h);
  assert.notEqual(manifestHash({ samples: [s('a', ['x', 'y'], 'chest'), s('b', [])] }), h);
});
