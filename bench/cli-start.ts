// Start-up time of the dermtl command: the median (and min, max) wall time of N runs each of `--version` and
// `--help`, each run a fresh Node process, after one untimed warm-up run of each. Usage:
//   node --import tsx bench/cli-start.ts [--runs 10] [--entry bin/dermtl.js] [--json out.json]
// --entry is the script Node runs (default bin/dermtl.js, the built CLI: `npm run build` first). The machine's load
// average is printed with the times: on a shared machine start-up times drift with it.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    entry: { type: 'string', default: 'bin/dermtl.js' },
    json: { type: 'string' },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number >= 1, got '${values.runs}'`);
const entry = values.entry!;

function once(arg: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [entry, arg], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${entry} ${arg} exited with ${r.status}: ${r.stderr}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const loadBefore = loadavg()[0];
const result: Record<string, { median_ms: number; min_ms: number; max_ms: number; runs: number }> = {};
for (const arg of ['--version', '--help']) {
  once(arg); // warm-up: the file system cache
  const ms = Array.from({ length: runs }, () => once(arg));
  result[arg] = { median_ms: median(ms), min_ms: Math.min(...ms), max_ms: Math.max(...ms), runs };
  console.log(
    `node ${entry} ${arg}: median ${median(ms).toFixed(0)} ms (min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)}; ${runs} runs)`,
  );
}
const loadAfter = loadavg()[0];
console.log(
  `load average (1 min): ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after; node ${process.version}`,
);
if (values.json) {
  writeFileSync(
    values.json,
    JSON.stringify({ entry, node: process.version, load: [loadBefore, loadAfter], ...result }, null, 2) + '\n',
  );
}
