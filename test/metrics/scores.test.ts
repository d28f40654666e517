import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import {
  formatScores,
  loadScores,
  matchManifest,
  parseScoreColumn,
  parseScores,
  readScores,
  writeScores,
  type ScoreTable,
} from '../../src/metrics/scores.ts';
import { DermtlError } from '../../src/util/errors.ts';
import { manifestOf, sample } from '../eval/helpers.ts';

const awkward: ScoreTable = {
  images: ['img/a b.jpg', 'img/"quoted",c.jpg', 'd.jpg'],
  lesionLabels: ['streaks:irregular', 'blue, white veil', 'say "hi"', 'pigment network: atypical'],
  locationLabels: ['upper limbs', 'head:neck'],
  lesion: [
    Float64Array.of(0.1, 1 / 3, -2.5e-10, 0),
    Float64Array.of(1, 0, 0.5, 1e-300),
    Float64Array.of(0.2, 0.2, 0.2, 0.2),
  ],
  location: [Float64Array.of(0.9, 0.1), Float64Array.of(-3.75, 12), Float64Array.of(Math.PI, Math.E)],
};

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'dermtl-eval-'));
}

test('score columns split at the first colon', () => {
  assert.deepEqual(parseScoreColumn('lesion:streaks:irregular'), { kind: 'lesion', label: 'streaks:irregular' });
  assert.deepEqual(parseScoreColumn('location:head:neck'), { kind: 'location', label: 'head:neck' });
  assert.equal(parseScoreColumn('lesion:'), undefined);
  assert.equal(parseScoreColumn('diagnosis:nevus'), undefined);
  assert.equal(parseScoreColumn('lesion'), undefined);
});

test('CSV round trip with awkward labels and image names is exact, and the write is atomic', async () => {
  const dir = await tempDir();
  const file = join(dir, 's.csv');
  await writeScores(file, awkward);
  assert.deepEqual(await readdir(dir), ['s.csv'], 'no temp file left behind');
  const text = await readFile(file, 'utf8');
  assert.match(
    text.split('\n')[0],
    /^image,lesion:streaks:irregular,"lesion:blue, white veil","lesion:say ""hi""",lesion:pigment network: atypical,location:upper limbs,location:head:neck$/,
  );
  const back = await readScores(file);
  assert.deepEqual(back.images, awkward.images);
  assert.deepEqual(back.lesionLabels, awkward.lesionLabels);
  assert.deepEqual(back.locationLabels, awkward.locationLabels);
  assert.deepEqual(back.lesion, awkward.lesion);
  assert.deepEqual(back.location, awkward.location);
  assert.deepEqual(back.lines, [2, 3, 4]);
});

test('a header cell is trimmed as a whole (manifest labels never have outer spaces), inner spaces stay', () => {
  const t = parseScores('image , lesion: x \na.jpg,0.5\n', 's.csv');
  assert.deepEqual(t.lesionLabels, [' x']);
  assert.deepEqual(t.images, ['a.jpg']);
});

test('formatScores refuses a broken in-memory table', () => {
  assert.throws(() => formatScores({ ...awkward, images: ['x', 'x', 'y'] }), /duplicate image\(s\): x/);
  assert.throws(
    () => formatScores({ ...awkward, lesion: [Float64Array.of(1), ...awkward.lesion.slice(1)] }),
    /lesion row 0 \(img\/a b\.jpg\) has 1 scores for 4 labels/,
  );
  assert.throws(
    () => formatScores({ ...awkward, location: [Float64Array.of(NaN, 1), ...awkward.location.slice(1)] }),
    /not a finite number/,
  );
});

/** The DermtlError message of parsing `text`. */
function parseError(text: string): string {
  try {
    parseScores(text, 'bad.csv');
  } catch (e) {
    assert.ok(e instanceof DermtlError, `expected a DermtlError, got ${e}`);
    return e.message;
  }
  assert.fail('no error');
}

test('bad score files: every problem named with file, line and column', () => {
  const msg = parseError(
    [
      'image,lesion:a,location:x',
      'a.jpg,0.5,1',
      'b.jpg,abc,1',
      'a.jpg,0.1,0.2',
      'c.jpg,,nan',
      'd.jpg,0x1f,Infinity',
      'e.jpg,1e999,1',
      'f.jpg,1',
    ].join('\n'),
  );
  assert.match(msg, /^invalid score file bad\.csv \(8 problems\)/);
  assert.match(msg, /line 3, column "lesion:a": "abc" is not a finite number/);
  assert.match(msg, /line 4: duplicate image "a\.jpg" \(first at line 2\)/);
  assert.match(msg, /line 5, column "lesion:a": empty score/);
  assert.match(msg, /line 5, column "location:x": "nan" is not a finite number/);
  assert.match(msg, /line 6, column "lesion:a": "0x1f" is not a finite number/);
  assert.match(msg, /line 6, column "location:x": "Infinity" is not a finite number/);
  assert.match(msg, /line 7, column "lesion:a": "1e999" is not a finite number/);
  assert.match(msg, /line 8: expected 3 columns, found 2/);
});

test('bad score-file headers', () => {
  assert.match(parseError(''), /bad\.csv: it is empty/);
  assert.match(parseError('image,lesion:a\n'), /line 1: a header but no rows/);
  assert.match(parseError('img,lesion:a\nx,1\n'), /line 1: no "image" column[\s\S]*column "img" is neither/);
  assert.match(parseError('image\nx\n'), /line 1: no score columns/);
  assert.match(parseError('image,lesion:a,lesion:a\nx,1,2\n'), /line 1: duplicate column "lesion:a"/);
  assert.match(
    parseError('image,diagnosis:nevus,lesion:\nx,1,2\n'),
    /column "diagnosis:nevus" is neither[\s\S]*column "lesion:" is neither/,
  );
  assert.match(
    parseError('image,lesion:a\n"x,1\ny,2\n'),
    /invalid score file bad\.csv: malformed CSV \(Quote Not Closed/,
  );
  assert.match(parseError('image,lesion:a\n,1\n'), /line 2: empty image/);
});

test('line numbers skip blank lines and follow quoted cells that span lines; BOM and CRLF are fine', () => {
  const t = parseScores('\ufeffimage,lesion:a\r\n\r\n"two\nlines.jpg",0.5\r\nb.jpg,0.25\r\n', 's.csv');
  assert.deepEqual(t.images, ['two\nlines.jpg', 'b.jpg']);
  assert.deepEqual(t.lines, [3, 5]);
  assert.deepEqual(t.lesion, [Float64Array.of(0.5), Float64Array.of(0.25)]);
});

test('a missing score file is a user error naming it', async () => {
  await assert.rejects(
    readScores('/nonexistent/s.csv'),
    (e: unknown) => e instanceof DermtlError && e.message === 'score file not found: /nonexistent/s.csv',
  );
  await assert.rejects(readScores(tmpdir()), /score file is a folder/);
});

const manifest = () =>
  manifestOf([
    sample('a.jpg', ['streaks:irregular', 'dots'], 'upper limbs'),
    sample('b.jpg', ['dots'], 'head:neck'),
    sample('c.jpg', [], 'back'),
    sample('d.jpg', ['veil'], 'back'),
  ]);
const header =
  'image,lesion:streaks:irregular,lesion:dots,lesion:veil,location:upper limbs,location:head:neck,location:back';

function matchError(text: string, images: Parameters<typeof matchManifest>[2] = 'all'): string {
  try {
    matchManifest(parseScores(text, 's.csv'), manifest(), images);
  } catch (e) {
    assert.ok(e instanceof DermtlError, `expected a DermtlError, got ${e}`);
    return e.message;
  }
  assert.fail('no error');
}

test('matching a score file to the manifest: every image, ./ paths normalised, rows aligned with samples', () => {
  const text = [header, 'd.jpg,0,0,1,0,0,1', './b.jpg,0,1,0,0,1,0', 'a.jpg,1,1,0,1,0,0', 'c.jpg,0,0,0,0,0,1'].join(
    '\n',
  );
  const m = matchManifest(parseScores(text, 's.csv'), manifest());
  assert.deepEqual(
    m.samples.map((s) => s.image),
    ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'],
  );
  assert.deepEqual(m.table.images, ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg']);
  assert.deepEqual(m.table.lesion[3], Float64Array.of(0, 0, 1));
  assert.deepEqual(m.table.location[0], Float64Array.of(1, 0, 0));
  assert.deepEqual(m.unscoredLesions, []);
  assert.deepEqual(m.notes, []);
});

test('matching: a subset is an error by default, fine with "present" or an explicit list', () => {
  const text = [header, 'b.jpg,0,1,0,0,1,0', 'a.jpg,1,1,0,1,0,0'].join('\n');
  assert.match(matchError(text), /2 manifest image\(s\) have no scores: c\.jpg, d\.jpg/);
  const present = matchManifest(parseScores(text, 's.csv'), manifest(), 'present');
  assert.deepEqual(
    present.samples.map((s) => s.image),
    ['b.jpg', 'a.jpg'],
  );
  const listed = matchManifest(parseScores(text, 's.csv'), manifest(), ['a.jpg']);
  assert.deepEqual(listed.table.images, ['a.jpg']);
  assert.deepEqual(listed.table.lesion, [Float64Array.of(1, 1, 0)]);
  assert.match(listed.notes.join('\n'), /1 row\(s\) of the score file are not among the requested images/);
  assert.match(matchError(text, ['a.jpg', 'c.jpg']), /1 manifest image\(s\) have no scores: c\.jpg/);
  assert.match(matchError(text, ['a.jpg', 'zzz.jpg']), /requested image\(s\) not in manifest[\s\S]*- zzz\.jpg/);
});

test('matching: images and labels the manifest lacks are errors, listed together', () => {
  const text = [
    'image,lesion:dots,lesion:globules,location:upper limbs,location:head:neck,location:back,location:palm',
    'a.jpg,1,0,1,0,0,0',
    'x.jpg,0,0,0,0,0,0',
    'y/z.jpg,0,0,0,0,0,0',
  ].join('\n');
  const msg = matchError(text, 'present');
  assert.match(msg, /^score file s\.csv does not match manifest \/data\/m\.csv \(4 problems\)/);
  assert.match(msg, /line 3: image "x\.jpg" is not in manifest/);
  assert.match(msg, /line 4: image "y\/z\.jpg" is not in manifest/);
  assert.match(msg, /column "lesion:globules": "globules" is not a lesion label of the manifest/);
  assert.match(msg, /column "location:palm": "palm" is not a location label of the manifest/);
});

test('matching: a missing lesion column is noted and skipped; a missing location column is an error', () => {
  const noVeil = [
    'image,lesion:dots,lesion:streaks:irregular,location:upper limbs,location:head:neck,location:back',
    'a.jpg,1,0,1,0,0',
  ].join('\n');
  const m = matchManifest(parseScores(noVeil, 's.csv'), manifest(), 'present');
  assert.deepEqual(m.unscoredLesions, ['veil']);
  assert.match(m.notes[0], /no score column, not evaluated: veil/);
  assert.deepEqual(m.table.lesionLabels, ['dots', 'streaks:irregular']);
  const noBack = ['image,lesion:dots,location:upper limbs,location:head:neck', 'a.jpg,1,1,0'].join('\n');
  assert.match(
    matchError(noBack, 'present'),
    /location label\(s\) of the manifest with no score column \(top-k needs every location\): location:back/,
  );
  // no location column at all: location is simply not evaluated
  const lesionOnly = matchManifest(parseScores('image,lesion:dots\na.jpg,1\n', 's.csv'), manifest(), 'present');
  assert.deepEqual(lesionOnly.table.locationLabels, []);
  assert.deepEqual(lesionOnly.unscoredLesions, ['streaks:irregular', 'veil']);
});

test('loadScores reads and matches in one call', async () => {
  const file = join(await tempDir(), 's.csv');
  await writeFile(file, [header, 'a.jpg,1,1,0,1,0,0'].join('\n'));
  const m = await loadScores(file, manifest(), 'present');
  assert.deepEqual(m.table.images, ['a.jpg']);
  await assert.rejects(loadScores(file, manifest()), /3 manifest image\(s\) have no scores/);
});
