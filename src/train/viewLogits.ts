// The per-view LOGITS of a model (spec + params) on a list of images, for the ten test views: what temperature
// scaling is fitted on (train/calibrate.ts, on the validation groups) and what `dermtl eval` reports before and
// after calibration from (eval/evaluateRun.ts). Two engines give the same numbers up to fp32 rounding:
// - 'features': the trunk's cached pooled features of the ten crops (frozen-trunk models), then the heads;
// - 'model': the whole network on the decoded views.
// A fusion model's site inputs are fed from `site` (each image's location index; < 0 unknown) and otherwise zeros:
// the image alone.
import type { Sample } from '../data/types.ts';
import { GraphSession, type Graph } from '../graph/index.ts';
import { ImageLoader, type Preprocessing } from '../image/index.ts';
import { siteFeeds } from '../models/fusion.ts';
import { HEAD_TENSORS, type Heads } from '../models/heads.ts';
import { serializeInference } from '../models/modelFile.ts';
import { buildNetwork, IMAGE_INPUT, type NetworkSpec } from '../models/network.ts';
import type { ViewLogits } from '../metrics/temperature.ts';
import { concatFloat32 } from '../util/float32.ts';
import type { TrainConfig } from './config.ts';
import { TEN_CROP_VIEWS } from './features.ts';
import { buildFeaturesNetwork, featureCacheFor, FEATURES_INPUT } from './frozen.ts';
import type { ProgressFactory } from './trainContext.ts';

export type LogitsEngine = 'features' | 'model';

export interface HeadLogits {
  lesion?: ViewLogits;
  location?: ViewLogits;
}

export interface ViewLogitsOptions {
  engine: LogitsEngine;
  /** The run's config (feature cache, trunk) and preprocessing. */
  config: TrainConfig;
  prep: Preprocessing;
  threads?: number;
  progress: ProgressFactory;
  /** 'model' engine only: render the centre crop alone (views = 1) instead of the ten crops. */
  centerOnly?: boolean;
  /** Fusion models: each sample's known location index (< 0: unknown); absent: every site unknown. */
  site?: readonly number[];
}

/** Images per whole-network run (x10 views). */
const IMAGES_PER_RUN = 4;

/** Logits of every head of the model for the ten test views of each sample ([images * 10 * classes]; see centerOnly). */
export async function viewLogits(
  spec: NetworkSpec,
  params: ReadonlyMap<string, Float32Array>,
  samples: readonly Sample[],
  opts: ViewLogitsOptions,
): Promise<HeadLogits> {
  const views = opts.engine === 'model' && opts.centerOnly ? 1 : TEN_CROP_VIEWS;
  const rows = samples.length * views;
  const out: Record<string, Float32Array[]> = {};
  if (opts.engine === 'features') {
    const c = opts.config;
    const cache = featureCacheFor({
      config: { ...c, runtime: { ...c.runtime, threads: opts.threads ?? c.runtime.threads } },
      prep: opts.prep,
      progress: opts.progress,
    });
    let features;
    try {
      features = await cache.features(samples, { kind: 'tenCrop' }, 'caching test views');
    } finally {
      await cache.close();
    }
    const net = buildFeaturesNetwork(spec, features.dim, 1, 'inference', { values: params });
    const all = samples.map((_, i) => i);
    await withLogitsSession(net.graph, net.heads, opts.threads, async (run) =>
      collect(out, await run(FEATURES_INPUT, features.data, [rows, features.dim], siteOf(spec, opts.site, all, views))),
    );
  } else {
    const net = buildNetwork(spec, { batch: 1, mode: 'inference', values: params, requireValues: true });
    const size = spec.imageSize;
    const loader = new ImageLoader({ prep: opts.prep });
    const bar = opts.progress(
      `scoring ${samples.length} image(s) with the whole network (${views === 1 ? 'centre crop' : '10 crops'})`,
    );
    let done = 0;
    try {
      await withLogitsSession(net.graph, net.heads, opts.threads, async (run) => {
        for await (const b of loader.batches(
          samples.map((s) => ({ path: s.path })),
          { mode: views === 1 ? 'center' : 'tenCrop', batchSize: IMAGES_PER_RUN, seed: 0 },
        )) {
          collect(
            out,
            await run(
              IMAGE_INPUT,
              b.data,
              [b.n * views, 3, size, size],
              siteOf(spec, opts.site, b.indices.slice(0, b.n), views),
            ),
          );
          done += b.n;
          bar(done, samples.length);
        }
      });
    } finally {
      bar.stop?.();
      await loader.close();
    }
  }
  const head = (name: string, classes: number): ViewLogits | undefined =>
    classes && out[name] ? { data: concatFloat32(out[name]), images: samples.length, views, classes } : undefined;
  return {
    lesion: head(HEAD_TENSORS.lesionLogits, spec.heads.lesion),
    location: head(HEAD_TENSORS.locationLogits, spec.heads.location),
  };
}

type Feeds = Record<string, { data: Float32Array; dims: number[] }>;
type RunLogits = (
  input: string,
  data: Float32Array,
  dims: number[],
  extra?: Feeds,
) => Promise<Record<string, Float32Array>>;

/** The site feeds of a fusion model for `images` (sample indices), each repeated for its `views` rows. */
function siteOf(
  spec: NetworkSpec,
  site: readonly number[] | undefined,
  images: readonly number[],
  views: number,
): Feeds | undefined {
  if (!spec.heads.fusion || !site) return undefined;
  const rows = images.flatMap((i) => Array<number>(views).fill(site[i]));
  const feeds = siteFeeds(
    rows,
    rows.map(() => true),
    rows.length,
    spec.heads.location,
  );
  return Object.fromEntries(
    Object.entries(feeds).map(([k, v]) => [k, { data: v, dims: [rows.length, v.length / rows.length] }]),
  );
}

/** An inference session on `g` whose outputs are the heads' logits; `use` runs it. */
async function withLogitsSession(
  g: Graph,
  heads: Heads,
  threads: number | undefined,
  use: (run: RunLogits) => Promise<void>,
): Promise<void> {
  const logits = [heads.lesionLogits, heads.locationLogits].filter((t) => t !== undefined);
  const graph = g.clone();
  graph.outputs.length = 0;
  for (const t of logits) graph.output(t);
  const session = await GraphSession.fromBytes(serializeInference(graph, { dynamicBatch: true }), { threads });
  const others = graph.inputs.filter((i) => i.name !== FEATURES_INPUT && i.name !== IMAGE_INPUT);
  try {
    await use(async (input, data, dims, extra) => {
      const zeros = Object.fromEntries(
        others.map((i) => [
          i.name,
          {
            data: new Float32Array(dims[0] * i.shape.slice(1).reduce((a, b) => a * b, 1)),
            dims: [dims[0], ...i.shape.slice(1)],
          },
        ]),
      );
      const r = await session.run(
        { [input]: { data, dims }, ...zeros, ...extra },
        logits.map((t) => t.name),
      );
      return Object.fromEntries(logits.map((t) => [t.name, r[t.name].data as Float32Array]));
    });
  } finally {
    await session.release();
  }
}

function collect(into: Record<string, Float32Array[]>, got: Record<string, Float32Array>): void {
  for (const [k, v] of Object.entries(got)) (into[k] ??= []).push(v.slice());
}
