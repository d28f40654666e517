// The compute-engine benchmark: ResNet-50 (224x224, folded BN, MTL heads) on onnxruntime-node, and the same network
// in PyTorch when it is installed, on the same machine in one run.
//
//   npm run bench [-- --quick] [-- --out bench.json] [-- --profile] [-- --rounds R] [-- --no-pytorch] [-- --threads N]
//
// (a) forward of the INFERENCE export (weights as initializers, dynamic batch, as saveModel writes it), ms/image at
//     batch 1 and 20, beside other ORT session settings on the same bytes (fixed batch, ORT's offline-optimised
//     model, optimisation level, arena, executor, spinning): forward_ratio_vs_ort_best = ours / best of those;
// (b) one training step at batch 20 through the project's Trainer (graph run + finite checks + Caffe SGD update),
//     whole network trainable, in a child process so that (c) its peak RSS is the step's own;
// (d) PyTorch (bench/pytorch_resnet50.py, same layout, same thread count), forward b20 and training step b20.
// Every figure is the median of --runs timed runs after --warmup runs (ORT's arena grows during the first two).
// --rounds R repeats the training comparison R times, alternating ours and PyTorch's training steps, and takes the
// medians over all rounds: host speed on these shared machines drifts by several % within minutes, and alternating
// lets the drift hit both sides alike.
// --profile adds one ORT-profiled training step (top op types and slowest nodes). --size changes the image side
// (smoke checks only: the JSON keys still say b1/b20 but image_size records it).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { buildTrainingGraph, GraphSession } from '../src/graph/index.ts';
import { loadFoldedResNet50, type FoldedResNet50 } from '../src/models/foldBatchNorm.ts';
import { serializeInference } from '../src/models/modelFile.ts';
import { buildNetwork, type NetworkSpec } from '../src/models/network.ts';
import { ensurePretrainedResNet50 } from '../src/models/pretrained.ts';
import { resolveConfig } from '../src/train/config.ts';
import { Trainer, type Feeds } from '../src/train/step.ts';
import { multipliersOf } from '../src/train/trainTask.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { Rng } from '../src/util/rng.ts';
import { formatProfile, summarizeProfile, type ProfileSummary } from './engineProfile.ts';

const HERE = fileURLToPath(import.meta.url);
const BATCH = 20;

const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    quick: { type: 'boolean', default: false },
    warmup: { type: 'string' },
    runs: { type: 'string' },
    rounds: { type: 'string' },
    threads: { type: 'string' },
    size: { type: 'string', default: '224' },
    lesion: { type: 'string', default: '24' },
    location: { type: 'string', default: '9' },
    profile: { type: 'boolean', default: false },
    'no-pytorch': { type: 'boolean', default: false },
    python: { type: 'string' },
    'random-weights': { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});

const count = (v: string | undefined, dflt: number, what: string, min = 1): number => {
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${what} must be a whole number >= ${min}, got ${v}`);
  return n;
};
// Quick keeps 2 warm-up runs for the training step: with 1, its first timed run still pays for the arena growth.
const cfg = {
  warmup: count(args.warmup, 2, 'warmup', 0),
  runs: count(args.runs, args.quick ? 2 : 5, 'runs'),
  rounds: count(args.rounds, 1, 'rounds'),
  threads: count(args.threads, os.availableParallelism(), 'threads'),
  size: count(args.size, 224, 'size', 32),
  lesion: count(args.lesion, 24, 'lesion'),
  location: count(args.location, 9, 'location', 2),
  randomWeights: args['random-weights'],
};
const spec: NetworkSpec = {
  trunk: { depth: 50 },
  imageSize: cfg.size,
  heads: { lesion: cfg.lesion, location: cfg.location },
  seed: 1,
};

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const log = (line: string) => process.stderr.write(`${line}\n`);
const kbToMb = (kb: number) => kb / 1024;

/** Peak and current RSS in MB from /proc (VmHWM / VmRSS); falls back to resourceUsage where /proc is missing. */
function memory(): { peakMb: number; rssMb: number } {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
    return { peakMb: kbToMb(field('VmHWM')), rssMb: kbToMb(field('VmRSS')) };
  } catch {
    return { peakMb: kbToMb(process.resourceUsage().maxRSS), rssMb: process.memoryUsage().rss / 2 ** 20 };
  }
}

/** The pretrained trunk (times do not depend on the values, but this is what training starts from), else random. */
async function trunkWeights(): Promise<{ weights: FoldedResNet50 | 'random'; source: string }> {
  if (cfg.randomWeights) return { weights: 'random', source: 'random' };
  try {
    return {
      weights: await loadFoldedResNet50(await ensurePretrainedResNet50({ progress: false })),
      source: 'pretrained',
    };
  } catch (e) {
    log(`bench: no pretrained weights (${(e as Error).message.split('\n')[0]}); timing with random weights instead`);
    return { weights: 'random', source: 'random' };
  }
}

function randomImages(batch: number, seed: number): Float32Array {
  const r = Rng.seeded(seed);
  return Float32Array.from({ length: batch * 3 * cfg.size * cfg.size }, () => r.normal(0, 58));
}

// ------------------------------------------------------------------------------------------------- (a) forward

interface Runner {
  run(image: Float32Array, dims: number[]): Promise<unknown>;
  release(): Promise<void>;
}
interface Variant {
  name: string;
  open(batch: number): Promise<Runner>;
}

/** The session options runtime.ts uses for inference, spelled out for the raw-ORT variants to start from. */
function oursOptions(): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: cfg.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableMemPattern: true,
  };
}

function rawOrt(model: Uint8Array | string, opts: ort.InferenceSession.SessionOptions): Promise<Runner> {
  const create =
    typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
  return create.then((s) => ({
    run: (data, dims) => s.run({ image: new ort.Tensor('float32', data, dims) }),
    release: () => s.release(),
  }));
}

/** Ours (GraphSession on the exported bytes, feed checks off) and the ORT settings it is compared with. */
async function forwardVariants(bytes: Uint8Array, tmp: string): Promise<Variant[]> {
  const optimized = join(tmp, 'resnet50-ort-optimized.onnx');
  const s = await ort.InferenceSession.create(bytes, {
    ...oursOptions(),
    optimizedModelFilePath: optimized,
    logSeverityLevel: 3,
  });
  // (severity 3: ORT warns that an 'all'-level optimised file is specific to this CPU, which is the point here)
  await s.release();
  const raw = (
    name: string,
    opts: ort.InferenceSession.SessionOptions,
    model: Uint8Array | string = bytes,
  ): Variant => ({ name, open: () => rawOrt(model, { ...oursOptions(), ...opts }) });
  const variants: Variant[] = [
    {
      name: 'ours (GraphSession)',
      open: async () => {
        const g = await GraphSession.fromBytes(bytes, { threads: cfg.threads, checkFinite: false });
        return { run: (data, dims) => g.run({ image: { data, dims } }), release: () => g.release() };
      },
    },
    { name: 'ORT default options', open: () => rawOrt(bytes, {}) },
    {
      name: 'fixed batch (freeDimensionOverrides)',
      open: (batch) => rawOrt(bytes, { ...oursOptions(), freeDimensionOverrides: { N: batch } }),
    },
    raw('ORT offline-optimised model', {}, optimized),
    raw('graphOptimizationLevel extended', { graphOptimizationLevel: 'extended' }),
    raw('enableCpuMemArena false', { enableCpuMemArena: false }),
    raw(`parallel executor, ${cfg.threads} inter-op`, { executionMode: 'parallel', interOpNumThreads: cfg.threads }),
    raw('intra-op spinning off', { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
  ];
  if (cfg.threads >= 4)
    variants.push(raw(`${cfg.threads >> 1} intra-op threads`, { intraOpNumThreads: cfg.threads >> 1 }));
  return variants;
}

/** Median ms/image per variant; timed runs alternate between the variants so load drift hits all of them alike. */
async function timeVariants(
  variants: Variant[],
  batch: number,
  warmup: number,
  runs: number,
): Promise<Record<string, { msPerImage: number; ms: number[] }>> {
  const image = randomImages(batch, batch);
  const dims = [batch, 3, cfg.size, cfg.size];
  const open: [string, Runner][] = [];
  for (const v of variants) open.push([v.name, await v.open(batch)]);
  try {
    for (const [, r] of open) for (let i = 0; i < warmup; i++) await r.run(image, dims);
    const ms = new Map(open.map(([n]) => [n, [] as number[]]));
    for (let i = 0; i < runs; i++) {
      for (const [n, r] of open) {
        const t0 = performance.now();
        await r.run(image, dims);
        ms.get(n)!.push(performance.now() - t0);
      }
    }
    return Object.fromEntries([...ms].map(([n, m]) => [n, { msPerImage: median(m) / batch, ms: m }]));
  } finally {
    for (const [, r] of open) await r.release();
  }
}

async function forwardBench(weights: FoldedResNet50 | 'random') {
  const net = buildNetwork(spec, { batch: 1, mode: 'inference', weights });
  const bytes = serializeInference(net.graph);
  const tmp = mkdtempSync(join(os.tmpdir(), 'dermtl-bench-'));
  try {
    const variants = await forwardVariants(bytes, tmp);
    // Batch 1 runs are short: more of them for the same confidence.
    log(`forward batch 1: ${variants.length} session settings`);
    const b1 = await timeVariants(variants, 1, cfg.warmup + 1, cfg.runs * 4);
    log(`forward batch ${BATCH}: ${variants.length} session settings`);
    const b20 = await timeVariants(variants, BATCH, cfg.warmup, cfg.runs);
    return { b1, b20, modelMb: bytes.length / 1e6 };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------- (b, c) training step

function trainFeeds(batch: number): Feeds {
  const r = Rng.seeded(7);
  return {
    image: { data: randomImages(batch, 3), dims: [batch, 3, cfg.size, cfg.size] },
    lesion_targets: Float32Array.from({ length: batch * cfg.lesion }, () => (r.uniform(0, 1) < 0.3 ? 1 : 0)),
    lesion_weights: new Float32Array(batch).fill(1),
    location_targets: BigInt64Array.from({ length: batch }, () => BigInt(r.int(0, cfg.location - 1))),
    location_weights: new Float32Array(batch).fill(1),
  };
}

/** Child process: Trainer steps at batch 20; prints timings and this process's peak memory. */
async function trainChild() {
  const { weights } = await trunkWeights();
  const net = buildNetwork(spec, { batch: BATCH, mode: 'train', weights });
  const before = memory();
  const trainer = await Trainer.create({
    forward: net.graph,
    losses: net.losses.map((l) => ({ name: l.tensor.name, weight: l.weight })),
    // Random weights (no BatchNorm to tame them) diverge to NaN within ~5 steps at lr 1e-3, which would abort the
    // run: train them at lr 0. The update runs the same kernel over the same arrays either way, so times agree.
    sgd: { lr: weights === 'random' ? 0 : 1e-3, momentum: 0.9, weightDecay: 1e-4 },
    multipliers: multipliersOf(net.graph, resolveConfig()),
    threads: cfg.threads,
  });
  // Time the optimizer inside the step without a second code path: wrap its update.
  const sgd = trainer.optimizer;
  const update = sgd.update.bind(sgd);
  let updateMs = 0;
  sgd.update = (p, g) => {
    const t0 = performance.now();
    update(p, g);
    updateMs += performance.now() - t0;
  };
  const feeds = trainFeeds(BATCH);
  const ms: number[] = [];
  const updates: number[] = [];
  const losses: Record<string, number>[] = [];
  for (let i = 0; i < cfg.warmup + cfg.runs; i++) {
    updateMs = 0;
    const t0 = performance.now();
    const r = await trainer.step(feeds);
    const t = performance.now() - t0;
    log(`  training step ${i + 1}/${cfg.warmup + cfg.runs}${i < cfg.warmup ? ' (warm-up)' : ''}: ${t.toFixed(0)} ms`);
    losses.push(r.losses);
    if (i >= cfg.warmup) {
      ms.push(t);
      updates.push(updateMs);
    }
  }
  const after = memory();
  await trainer.release();
  return {
    ms,
    updateMs: updates,
    msPerImage: median(ms) / BATCH,
    updateMsMedian: median(updates),
    peakRssMb: after.peakMb,
    maxRssMb: kbToMb(process.resourceUsage().maxRSS),
    rssBeforeSessionMb: before.rssMb,
    peakBeforeSessionMb: before.peakMb,
    params: sgd.params.length,
    firstLosses: losses[0],
    lastLosses: losses[losses.length - 1],
  };
}

/** Child process: one ORT-profiled step of the same training graph, after warm-up. */
async function profileChild(): Promise<ProfileSummary> {
  const { weights } = await trunkWeights();
  const net = buildNetwork(spec, { batch: BATCH, mode: 'train', weights });
  const tg = buildTrainingGraph(net.graph, net.losses);
  const dir = mkdtempSync(join(os.tmpdir(), 'dermtl-profile-'));
  try {
    const s = await GraphSession.fromGraph(tg, {
      training: true,
      threads: cfg.threads,
      checkFinite: false,
      profilePrefix: join(dir, 'train'),
    });
    const feeds: Feeds = {
      ...trainFeeds(BATCH),
      ...Object.fromEntries(net.graph.params({ trainable: true }).map((p) => [p.name, p.data])),
    };
    for (let i = 0; i < Math.max(2, cfg.warmup) + 1; i++) await s.run(feeds);
    await s.profileEnd();
    await s.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`ORT wrote no profile into ${dir}`);
    return summarizeProfile(join(dir, file), net.graph.nodes.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a command whose stdout's last line starting with `marker` is JSON; its stderr passes through. */
function runJson<T>(cmd: string, argv: string[], marker = ''): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out
        .split('\n')
        .filter((l) => l.startsWith(marker) && l.trim())
        .pop();
      if (code !== 0 || !line)
        reject(new Error(`${cmd} ${argv.join(' ')} exited with ${code}${line ? '' : ' and no result'}`));
      else resolve(JSON.parse(line.slice(marker.length)) as T);
    });
  });
}

const MARKER = 'BENCH_RESULT ';
function nodeChild<T>(kind: 'train' | 'profile'): Promise<T> {
  const pass = [
    '--warmup',
    String(cfg.warmup),
    '--runs',
    String(cfg.runs),
    '--threads',
    String(cfg.threads),
    '--size',
    String(cfg.size),
    '--lesion',
    String(cfg.lesion),
    '--location',
    String(cfg.location),
    ...(cfg.randomWeights ? ['--random-weights'] : []),
  ];
  return runJson<T>(process.execPath, [...process.execArgv, HERE, '--child', kind, ...pass], MARKER);
}

// ------------------------------------------------------------------------------------------------- (d) PyTorch

interface TorchResult {
  mode: string;
  ms: number[];
  median_ms_per_image: number;
  peak_rss_mb: number;
  threads: number;
  torch: string;
  memory_format: string;
}
const TORCH_FORMATS = ['contiguous', 'channels_last'] as const;

/** The first python that imports torch: --python, else python3 on PATH, else Debian's /usr/bin/python3 (python3-torch). */
function findPython(): string | undefined {
  const candidates = args.python ? [args.python] : ['python3', '/usr/bin/python3'];
  return candidates.find(
    (c) => spawnSync(c, ['-c', 'import torch'], { stdio: 'ignore', timeout: 120_000 }).status === 0,
  );
}

/**
 * Forward and training step in PyTorch, each in its own process (so a training peak RSS is its own), in both NCHW
 * and channels_last (oneDNN's preferred layout): the comparison is against the faster of the two.
 */
/** Both memory formats of one PyTorch mode, each in its own process. */
async function torchMode(python: string, mode: 'forward' | 'train'): Promise<TorchResult[]> {
  const script = join(HERE, '..', 'pytorch_resnet50.py');
  const common = [
    '--batch',
    String(BATCH),
    '--size',
    String(cfg.size),
    '--threads',
    String(cfg.threads),
    '--warmup',
    String(cfg.warmup),
    '--runs',
    String(cfg.runs),
    '--lesion',
    String(cfg.lesion),
    '--location',
    String(cfg.location),
  ];
  const all: TorchResult[] = [];
  for (const format of TORCH_FORMATS) {
    log(`PyTorch (${python}): ${mode} batch ${BATCH}, ${format}`);
    all.push(await runJson<TorchResult>(python, [script, '--mode', mode, '--memory-format', format, ...common]));
  }
  return all;
}

/** One result per memory format from several rounds: all timed runs pooled, median of the pool, largest peak. */
function poolTorch(rounds: readonly TorchResult[][]): TorchResult[] {
  return TORCH_FORMATS.map((format) => {
    const runs = rounds.map((r) => r.find((x) => x.memory_format === format)!);
    const ms = runs.flatMap((r) => r.ms);
    return {
      ...runs[0],
      ms,
      median_ms_per_image: median(ms) / BATCH,
      peak_rss_mb: Math.max(...runs.map((r) => r.peak_rss_mb)),
    };
  });
}

const fastest = (all: readonly TorchResult[]) =>
  all.reduce((a, b) => (b.median_ms_per_image < a.median_ms_per_image ? b : a));

/** Our training child's results over several rounds: timed runs pooled, the largest peak RSS. */
function poolTrain(rounds: readonly ChildTrain[]): ChildTrain {
  const ms = rounds.flatMap((r) => r.ms);
  const updateMs = rounds.flatMap((r) => r.updateMs);
  return {
    ...rounds[0],
    ms,
    updateMs,
    msPerImage: median(ms) / BATCH,
    updateMsMedian: median(updateMs),
    peakRssMb: Math.max(...rounds.map((r) => r.peakRssMb)),
    maxRssMb: Math.max(...rounds.map((r) => r.maxRssMb)),
    lastLosses: rounds[rounds.length - 1].lastLosses,
  };
}

// --------------------------------------------------------------------------------------------------- report

type ChildTrain = Awaited<ReturnType<typeof trainChild>>;
const f1 = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(1));
const f2 = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2));

function table(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  ')).join('\n');
}

async function main() {
  const ortVersion = (ort.env.versions as { node?: string }).node ?? 'unknown';
  const loadStart = os.loadavg()[0];
  log(
    `ResNet-50 ${cfg.size}x${cfg.size}, heads P=${cfg.lesion} Q=${cfg.location}; ${cfg.threads} threads; warm-up ${cfg.warmup}, timed ${cfg.runs}${cfg.rounds > 1 ? `, ${cfg.rounds} alternating training rounds` : ''}; ` +
      `node ${process.version}, onnxruntime-node ${ortVersion}; load average ${loadStart.toFixed(2)} on ${os.cpus().length} CPUs`,
  );
  const { weights, source } = await trunkWeights();
  const fwd = await forwardBench(weights);
  const python = args['no-pytorch'] ? undefined : findPython();
  if (!args['no-pytorch'] && !python)
    log('PyTorch: no python3 that imports torch (apt-get install python3-torch); skipped');
  let torchOk = python !== undefined;
  const torchFailed = (e: Error) => {
    log(`PyTorch failed (${e.message}); reported without it`);
    torchOk = false;
    return [] as TorchResult[];
  };
  const trainRounds: ChildTrain[] = [];
  const torchTrainRounds: TorchResult[][] = [];
  for (let r = 1; r <= cfg.rounds; r++) {
    log(`training step batch ${BATCH} (child process)${cfg.rounds > 1 ? `, round ${r}/${cfg.rounds}` : ''}`);
    trainRounds.push(await nodeChild<ChildTrain>('train'));
    if (torchOk) torchTrainRounds.push(await torchMode(python!, 'train').catch(torchFailed));
  }
  const train = poolTrain(trainRounds);
  const profile = args.profile
    ? (log('profiled training step (child process)'), await nodeChild<ProfileSummary>('profile'))
    : undefined;
  const torchForward = torchOk ? await torchMode(python!, 'forward').catch(torchFailed) : [];
  const torchTrain = torchOk ? poolTorch(torchTrainRounds) : [];
  const torch = torchOk
    ? {
        python: python!,
        forward: fastest(torchForward),
        train: fastest(torchTrain),
        all: [...torchForward, ...torchTrain],
      }
    : undefined;
  const loadEnd = os.loadavg()[0];

  const ours = 'ours (GraphSession)';
  const best = (set: typeof fwd.b20) => Object.entries(set).sort((a, b) => a[1].msPerImage - b[1].msPerImage)[0];
  const [bestName, bestB20] = best(fwd.b20);
  const [bestNameB1, bestB1] = best(fwd.b1);
  const result = {
    date: new Date().toISOString(),
    quick: args.quick,
    warmup: cfg.warmup,
    runs: cfg.runs,
    rounds: cfg.rounds,
    threads: cfg.threads,
    image_size: cfg.size,
    batch: BATCH,
    heads: { lesion: cfg.lesion, location: cfg.location },
    weights: source,
    node: process.version,
    onnxruntime: ortVersion,
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    load_average_start: loadStart,
    load_average_end: loadEnd,
    forward_ms_per_image_b1: fwd.b1[ours].msPerImage,
    forward_ms_per_image_b20: fwd.b20[ours].msPerImage,
    train_ms_per_image_b20: train.msPerImage,
    train_update_ms_b20: train.updateMsMedian,
    ...(cfg.rounds > 1 && {
      train_round_ms_per_image_b20: trainRounds.map((r) => r.msPerImage),
      ...(torch && {
        pytorch_train_round_ms_per_image_b20: Object.fromEntries(
          TORCH_FORMATS.map((f) => [
            f,
            torchTrainRounds.map((r) => r.find((x) => x.memory_format === f)?.median_ms_per_image),
          ]),
        ),
      }),
    }),
    peak_rss_mb: train.peakRssMb,
    rss_before_training_session_mb: train.rssBeforeSessionMb,
    forward_ratio_vs_ort_best: fwd.b20[ours].msPerImage / bestB20.msPerImage,
    ort_best_setting_b20: bestName,
    forward_ratio_vs_ort_best_b1: fwd.b1[ours].msPerImage / bestB1.msPerImage,
    ort_best_setting_b1: bestNameB1,
    forward_settings_ms_per_image: Object.fromEntries(
      Object.keys(fwd.b20).map((k) => [k, { b1: fwd.b1[k].msPerImage, b20: fwd.b20[k].msPerImage }]),
    ),
    ...(torch && {
      pytorch: torch.forward.torch,
      python: torch.python,
      pytorch_threads: torch.train.threads,
      pytorch_forward_ms_per_image_b20: torch.forward.median_ms_per_image,
      pytorch_train_ms_per_image_b20: torch.train.median_ms_per_image,
      pytorch_train_peak_rss_mb: torch.train.peak_rss_mb,
      pytorch_memory_format: { forward: torch.forward.memory_format, train: torch.train.memory_format },
      pytorch_runs: torch.all.map((r) => ({
        mode: r.mode,
        memory_format: r.memory_format,
        ms_per_image: r.median_ms_per_image,
        ms: r.ms,
        peak_rss_mb: r.peak_rss_mb,
      })),
      forward_ratio_vs_pytorch: fwd.b20[ours].msPerImage / torch.forward.median_ms_per_image,
      train_ratio_vs_pytorch: train.msPerImage / torch.train.median_ms_per_image,
    }),
    raw_ms: {
      train_b20: train.ms,
      train_update_b20: train.updateMs,
      forward_b1: fwd.b1[ours].ms,
      forward_b20: fwd.b20[ours].ms,
      ...(torch && { pytorch_forward_b20: torch.forward.ms, pytorch_train_b20: torch.train.ms }),
    },
    ...(profile && {
      train_profile: {
        run_ms: profile.runMs,
        kernel_ms_by_pass: profile.byPass,
        top_ops: profile.byOp.slice(0, 8),
        top_nodes: profile.topNodes,
      },
    }),
  };

  const tf = torch?.forward.median_ms_per_image;
  const tt = torch?.train.median_ms_per_image;
  console.log(
    `\nResNet-50 ${cfg.size}x${cfg.size}, MTL heads P=${cfg.lesion} Q=${cfg.location}, ${cfg.threads} threads, ${result.cpu}; ` +
      `load average ${loadStart.toFixed(2)} -> ${loadEnd.toFixed(2)}${args.quick ? ' (--quick: smoke check)' : ''}`,
  );
  console.log(
    table([
      [
        '',
        'onnxruntime-node ' + ortVersion,
        torch ? `PyTorch ${torch.forward.torch} (best layout)` : 'PyTorch',
        'ours / PyTorch',
      ],
      ['forward batch 1, ms/image', f1(result.forward_ms_per_image_b1), '-', '-'],
      [
        `forward batch ${BATCH}, ms/image`,
        f1(result.forward_ms_per_image_b20),
        f1(tf),
        f2(tf && result.forward_ms_per_image_b20 / tf),
      ],
      [`training step batch ${BATCH}, ms/image`, f1(train.msPerImage), f1(tt), f2(tt && train.msPerImage / tt)],
      [`  of which SGD update, ms/step`, f1(train.updateMsMedian), '-', '-'],
      [`training step peak RSS, MB`, train.peakRssMb.toFixed(0), torch ? torch.train.peak_rss_mb.toFixed(0) : '-', '-'],
    ]),
  );
  if (cfg.rounds > 1) {
    const per = (xs: readonly (number | undefined)[]) => xs.map((x) => f1(x)).join(' / ');
    console.log(
      `(training ms/image per round, ours: ${per(trainRounds.map((r) => r.msPerImage))}` +
        (torch
          ? `; PyTorch ${torch.train.memory_format}: ${per(torchTrainRounds.map((r) => r.find((x) => x.memory_format === torch.train.memory_format)?.median_ms_per_image))}`
          : '') +
        ')',
    );
  }
  if (torch)
    console.log(
      `(PyTorch ms/image, NCHW / channels_last: ${['forward', 'train']
        .map(
          (m) =>
            `${m} ${torch.all
              .filter((r) => r.mode === m)
              .map((r) => f1(r.median_ms_per_image))
              .join(' / ')}`,
        )
        .join(', ')})`,
    );
  console.log(
    `(peak RSS in MiB, target 2.5 GB; the training process held ${train.rssBeforeSessionMb.toFixed(0)} MB before its session opened)`,
  );
  console.log(
    `\nforward, ORT session settings on the same exported model (ms/image; ours / best: b1 ${f2(result.forward_ratio_vs_ort_best_b1)}, ` +
      `b${BATCH} ${f2(result.forward_ratio_vs_ort_best)})`,
  );
  console.log(
    table([
      ['setting', 'batch 1', `batch ${BATCH}`],
      ...Object.entries(result.forward_settings_ms_per_image).map(([k, v]) => [k, f1(v.b1), f1(v.b20)]),
    ]),
  );
  if (profile) console.log(`\n${formatProfile(profile).join('\n')}`);
  if (args.out) {
    await writeFileAtomic(args.out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote ${args.out}`);
  }
}

if (args.child === 'train') console.log(MARKER + JSON.stringify(await trainChild()));
else if (args.child === 'profile') console.log(MARKER + JSON.stringify(await profileChild()));
else if (args.child !== undefined) throw new Error(`unknown --child ${args.child}`);
else {
  await main().catch((e: Error) => {
    process.stderr.write(`bench: ${e.message}\n`);
    process.exitCode = 1;
  });
}
