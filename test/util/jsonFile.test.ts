// readJsonWith: every failure names the file; a schema failure lists each problem with its key path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonWith } from '../../src/util/jsonFile.ts';
import { DermtlError } from '../../src/util/errors.ts';

const root = await mkdtemp(join(tmpdir(), 'dermtl-json-'));
test.after(() => rm(root, { recursive: true, force: true }));
const Schema = z.object({ a: z.number(), b: z.object({ c: z.string() }) }).strict();

const fails = (p: Promise<unknown>, re: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof DermtlError && re.test(e.message));

test('a valid file is parsed and typed', async () => {
  const f = join(root, 'ok.json');
  await writeFile(f, '{"a": 1, "b": {"c": "x"}}');
  assert.deepEqual(await readJsonWith(Schema, f), { a: 1, b: { c: 'x' } });
});

test('missing, not JSON, or not matching: a DermtlError naming the file (and each key)', async () => {
  const none = join(root, 'none.json');
  await fails(readJsonWith(Schema, none), /none\.json: no such file/);
  await fails(readJsonWith(Schema, none, { missing: 'give --x' }), /^give --x$/);
  const bad = join(root, 'bad.json');
  await writeFile(bad, '{"a": ');
  await fails(readJsonWith(Schema, bad), /bad\.json: not valid JSON \(/);
  const wrong = join(root, 'wrong.json');
  await writeFile(wrong, '{"a": "1", "b": {"c": 2}, "d": 0}');
  await fails(
    readJsonWith(Schema, wrong),
    /wrong\.json: unexpected content \(3 problems\):\n  - a: .*\n  - b\.c: .*\n  - \(top level\): .*"d"/,
  );
  await fails(readJsonWith(Schema, wrong, { invalid: 'invalid thing' }), /^invalid thing \(3 problems\)/);
});
