// Load test of `dermtl serve`: n requests at concurrency c, a share of them bad inputs, against a server this
// script starts itself (--model, in a child process so its memory is its own) or an already running one (--url).
//   node --import tsx bench/load.ts --model DIR [--n 500] [--c 8] [--bad 0.1] [--tta center|10crop]
//                                   [--images DIR] [--threads N] [--queue 8] [--concurrency 2] [--seed 0]
//   node --import tsx bench/load.ts --url http://127.0.0.1:8080 [--n 500] [--c 8]
// Prints throughput, p50/p99 latency (good and bad requests apart), answers by status and error code, the
// server's own decode/inference times, and the server's peak RSS (from /healthz). Not a test: run it on an
// otherwise idle machine. Exit status 1 when anything other than the expected answers came back.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { Rng } from '../src/util/rng.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    url: { type: 'string' },
    n: { type: 'string', default: '500' },
    c: { type: 'string', default: '8' },
    bad: { type: 'string', default: '0.1' },
    tta: { type: 'string', default: 'center' },
    images: { type: 'string' },
    threads: { type: 'string' },
    queue: { type: 'string' },
    concurrency: { type: 'string' },
    seed: { type: 'string', default: '0' },
    'serve-child': { type: 'boolean', default: false },
  },
});

// ---------------------------------------------------------------- the server child

if (values['serve-child']) {
  const { serveModel } = await import('../src/serve/run.ts');
  await serveModel({
    modelPath: values.model!,
    port: 0,
    host: '127.0.0.1',
    threads: values.threads ? Number(values.threads) : undefined,
    queueSize: values.queue ? Number(values.queue) : undefined,
    concurrency: values.concurrency ? Number(values.concurrency) : undefined,
    onListen: (url) => process.stdout.write(`LISTEN ${url}\n`),
  });
  process.exit(0);
}

// ---------------------------------------------------------------- inputs

interface Input {
  kind: string;
  body: Uint8Array;
  type: string;
  /** Status and error code the server must answer for this input (a 503 'busy' is always allowed). */
  expect: number;
  expectCode?: string;
}

const n = Number(values.n);
const c = Number(values.c);
const badShare = Number(values.bad);
if (!(Number.isInteger(n) && n > 0 && Number.isInteger(c) && c > 0 && badShare >= 0 && badShare <= 1))
  throw new Error('bad --n / --c / --bad');
if (!values.model === !values.url) throw new Error('give exactly one of --model DIR and --url URL');

/** Good images: those of --images, or synthetic 480x320 JPEGs (the size of the derm7pt clinical photos). */
async function goodImages(): Promise<Input[]> {
  if (values.images) {
    const files = (await readdir(values.images))
      .filter((f) => ['.jpg', '.jpeg', '.png', '.webp'].includes(extname(f).toLowerCase()))
      .sort()
      .slice(0, 50);
    if (!files.length) throw new Error(`no images in ${values.images}`);
    return Promise.all(
      files.map(async (f) => ({
        kind: 'good',
        body: await readFile(join(values.images!, f)),
        type: 'application/octet-stream',
        expect: 200,
      })),
    );
  }
  const rng = Rng.seeded(Number(values.seed));
  return Promise.all(
    Array.from({ length: 8 }, async () => {
      const [w, h] = [480, 320];
      const data = Buffer.alloc(w * h * 3);
      const base = [rng.int(120, 230), rng.int(80, 180), rng.int(60, 160)];
      for (let i = 0; i < w * h; i++)
        for (let k = 0; k < 3; k++) data[i * 3 + k] = Math.max(0, Math.min(255, base[k] + rng.normal(0, 20)));
      return {
        kind: 'good',
        body: await sharp(data, { raw: { width: w, height: h, channels: 3 } })
          .jpeg({ quality: 88 })
          .toBuffer(),
        type: 'image/jpeg',
        expect: 200,
      };
    }),
  );
}

/** The bad inputs, one of each kind, with the status each must get. */
function badInputs(good: Uint8Array): Input[] {
  return [
    {
      kind: 'truncated jpeg',
      body: good.subarray(0, Math.floor(good.length / 3)),
      type: 'image/jpeg',
      expect: 422,
      expectCode: 'bad_image',
    },
    {
      kind: 'text as jpeg',
      body: Buffer.from('not an image\n'.repeat(50)),
      type: 'image/jpeg',
      expect: 422,
      expectCode: 'bad_image',
    },
    { kind: 'empty body', body: new Uint8Array(0), type: 'image/jpeg', expect: 400, expectCode: 'empty_body' },
    {
      kind: 'huge png header',
      body: hugePng(30000, 30000),
      type: 'image/png',
      expect: 422,
      expectCode: 'image_too_large',
    },
  ];
}

function hugePng(w: number, h: number): Buffer {
  // IHDR only needs to parse; the CRC is checked by libpng, so compute it.
  const crcTable = Array.from({ length: 256 }, (_, k) => {
    let v = k;
    for (let i = 0; i < 8; i++) v = v & 1 ? 0xedb88320 ^ (v >>> 1) : v >>> 1;
    return v >>> 0;
  });
  const crc = (b: Buffer) => {
    let v = 0xffffffff;
    for (const x of b) v = crcTable[(v ^ x) & 0xff] ^ (v >>> 8);
    return (v ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    td.copy(out, 4);
    out.writeUInt32BE(crc(td), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const idat = chunk('IDAT', deflateSync(Buffer.alloc(1000)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    idat,
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---------------------------------------------------------------- running

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const args = ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve-child', '--model', values.model!];
  for (const k of ['threads', 'queue', 'concurrency'] as const) if (values[k]) args.push(`--${k}`, values[k]!);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /LISTEN (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
  return { url, child };
}

interface Result {
  kind: string;
  status: number | string;
  code: string;
  ms: number;
  expected: boolean;
  timing?: { decodeMs: number; inferenceMs: number };
}

async function one(url: string, input: Input): Promise<Result> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/api/predict?tta=${values.tta}`, {
      method: 'POST',
      body: input.body as BodyInit,
      headers: { 'content-type': input.type },
    });
    const json = (await res.json()) as { error?: { code: string }; timing?: { decodeMs: number; inferenceMs: number } };
    const ms = performance.now() - t0;
    const code = json.error?.code ?? 'ok';
    const expected = (res.status === input.expect && (input.expectCode ?? 'ok') === code) || code === 'busy';
    return { kind: input.kind, status: res.status, code, ms, expected, timing: json.timing };
  } catch (e) {
    return {
      kind: input.kind,
      status: 'network',
      code: (e as Error).message,
      ms: performance.now() - t0,
      expected: false,
    };
  }
}

const percentile = (xs: number[], q: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

const good = await goodImages();
const bad = badInputs(good[0].body);
const rng = Rng.seeded(Number(values.seed) + 1);
const plan: Input[] = Array.from({ length: n }, () =>
  rng.bool(badShare) ? bad[rng.int(0, bad.length - 1)] : good[rng.int(0, good.length - 1)],
);

const server = values.model ? await startServer() : null;
const url = server?.url ?? values.url!.replace(/\/$/, '');
try {
  // Warm-up (ORT's first run allocates; sharp loads codecs), not timed.
  for (const g of good.slice(0, 3)) await one(url, g);
  const results: Result[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < plan.length) results.push(await one(url, plan[next++]));
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const health = (await (await fetch(`${url}/healthz`)).json()) as {
    memory?: { peakRssBytes: number; rssBytes: number };
  };

  const goodMs = results.filter((r) => r.kind === 'good' && r.status === 200).map((r) => r.ms);
  const badMs = results.filter((r) => r.kind !== 'good' && r.code !== 'busy').map((r) => r.ms);
  const f = (x: number) => x.toFixed(1);
  console.log(
    `dermtl serve load: ${n} requests, concurrency ${c}, ${Math.round(badShare * 100)}% bad inputs, tta ${values.tta}, ${values.model ? `model ${values.model}` : url}`,
  );
  console.log(
    `  wall ${wallS.toFixed(2)} s, throughput ${f(n / wallS)} req/s (${f(goodMs.length / wallS)} good predictions/s)`,
  );
  console.log(
    `  latency good: p50 ${f(percentile(goodMs, 0.5))} ms, p99 ${f(percentile(goodMs, 0.99))} ms, max ${f(Math.max(...goodMs))} ms (n=${goodMs.length})`,
  );
  console.log(
    `  latency bad:  p50 ${f(percentile(badMs, 0.5))} ms, p99 ${f(percentile(badMs, 0.99))} ms (n=${badMs.length}; 503 busy answers not counted)`,
  );
  const timings = results.filter((r) => r.timing).map((r) => r.timing!);
  if (timings.length) {
    console.log(
      `  server time per good request: decode ${f(timings.reduce((s, t) => s + t.decodeMs, 0) / timings.length)} ms, ` +
        `inference ${f(timings.reduce((s, t) => s + t.inferenceMs, 0) / timings.length)} ms (means)`,
    );
  }
  const byKind = new Map<string, number>();
  for (const r of results)
    byKind.set(`${r.kind} -> ${r.status} ${r.code}`, (byKind.get(`${r.kind} -> ${r.status} ${r.code}`) ?? 0) + 1);
  console.log('  answers by input kind:');
  for (const [k, v] of [...byKind].sort()) console.log(`    ${String(v).padStart(5)}  ${k}`);
  if (health.memory)
    console.log(
      `  server RSS: peak ${f(health.memory.peakRssBytes / 1e6)} MB, now ${f(health.memory.rssBytes / 1e6)} MB`,
    );
  const unexpected = results.filter((r) => !r.expected);
  if (unexpected.length) {
    console.log(`  UNEXPECTED answers: ${unexpected.length}`);
    process.exitCode = 1;
  }
} finally {
  server?.child.kill('SIGTERM');
}
