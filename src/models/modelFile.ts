// A trained dermtl model on disk: one folder, written atomically, whose model.onnx also stands alone (label
// names, preprocessing and the format version are in its metadata_props, so a browser or another runtime needs
// nothing else). Standard ONNX opset 17, no custom ops, batch dimension dynamic ('N').
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { z } from 'zod';
import type { Graph } from '../graph/index.ts';
import type { FoldedResNet50 } from './foldBatchNorm.ts';
import { GraphSession, type RunOptions } from '../graph/index.ts';
import { readMetadata, toModelProto } from '../graph/onnx.ts';
import type { Preprocessing } from '../image/index.ts';
import { writeFileAtomic, writeDirAtomic } from '../util/atomic.ts';
import { DermtlError, errorList } from '../util/errors.ts';
import { parseWith, readJson } from '../util/jsonFile.ts';
import { CAM_INPUT, camModelBytes, EXPLAIN_FILE, withConv5Output } from './cam.ts';
import { HEAD_TENSORS } from './heads.ts';
import { siteFeeds, SITE_TENSORS } from './fusion.ts';
import { CALIBRATION_FILE, CalibrationSchema, type ModelCalibration } from './calibration.ts';
import { buildNetwork, checkSpec, IMAGE_INPUT, type NetworkSpec } from './network.ts';
import {
  buildHeadsGraph,
  halfWeights,
  headParams,
  HEADS_FILE,
  HEADS_INPUT,
  initializerValues,
  resolveTrunk,
  trunkReferenceOf,
  trunkReferenceSchema,
  type TrunkReference,
} from './trunkReference.ts';

export const MODEL_FORMAT = 'dermtl-model';
/** Bump when a folder written by this code could be misread by an older reader (or vice versa). */
export const MODEL_FORMAT_VERSION = 1;

export const MODEL_FILES = {
  onnx: 'model.onnx',
  labels: 'labels.json',
  preprocessing: 'preprocessing.json',
  config: 'config.json',
  metrics: 'metrics.json',
  manifest: 'dermtl.json',
} as const;

/** Keys of the model.onnx metadata_props (values are strings; lists and objects are JSON). */
export const METADATA_KEYS = {
  format: 'dermtl.format',
  version: 'dermtl.format_version',
  network: 'dermtl.network',
  lesionLabels: 'dermtl.lesion_labels',
  locationLabels: 'dermtl.location_labels',
  preprocessing: 'dermtl.preprocessing',
  input: 'dermtl.input',
  outputs: 'dermtl.outputs',
  /** The calibration record (models/calibration.ts): temperatures already folded into the heads, lesion thresholds. */
  calibration: 'dermtl.calibration',
} as const;

export interface ModelLabels {
  /** Lesion label names in head order ([] when the model has no lesion head). */
  lesion: string[];
  /** Body-location names in head order ([] when the model has no location head). */
  location: string[];
}

export interface ModelToSave {
  network: NetworkSpec;
  /** Every param of the network by name (see collectParams); a missing one is an error, never re-initialised. */
  params: ReadonlyMap<string, Float32Array>;
  labels: ModelLabels;
  preprocessing: Preprocessing;
  /** The training configuration (any JSON). */
  config?: unknown;
  /** Evaluation results (any JSON). */
  metrics?: unknown;
  /** Temperatures (already folded into `params`) and thresholds: calibration.json and the ONNX metadata. */
  calibration?: ModelCalibration | null;
}

export interface SaveOptions {
  /**
   * 'embed' (default): the folder's model.onnx holds the whole network. 'reference': the trunk is the untrained one
   * (frozen-trunk training), so the folder stores heads.onnx (weight matrices in float16) and names the trunk;
   * loadModel rebuilds the whole network (trunkReference.ts), and `dermtl export` writes it as a single model.onnx.
   */
  trunk?: 'embed' | 'reference';
}

/** dermtl.json: what the folder is and how to read it. */
export interface ModelManifest {
  format: typeof MODEL_FORMAT;
  version: number;
  createdAt: string;
  network: NetworkSpec;
  input: { name: string; shape: (number | string)[]; dtype: 'float32' };
  outputs: {
    name: string;
    shape: (number | string)[];
    activation: 'sigmoid' | 'softmax';
    labels: 'lesion' | 'location';
  }[];
  files: string[];
  /** Present when the folder holds heads.onnx instead of model.onnx: the untrained trunk the heads sit on. */
  trunk?: TrunkReference;
}

/**
 * Op types whose semantics do not depend on the batch size (so the batch dimension may be left free). The
 * elementwise ones (Add, Sub, Mul) broadcast, so they stay batch-free as long as no constant operand has the batch
 * size baked in: in inference graphs they meet only per-row tensors and [1, ...] constants (a fusion model's site
 * term: models/fusion.ts).
 */
const BATCH_FREE_OPS = new Set([
  'Conv',
  'Relu',
  'Add',
  'Sub',
  'Mul',
  'MaxPool',
  'GlobalAveragePool',
  'Flatten',
  'Gemm',
  'Sigmoid',
  'Softmax',
  'Identity',
]);

export interface InferenceExportOptions {
  metadata?: Record<string, string>;
  docString?: string;
  /** Leave dimension 0 of every input and output free as 'N' (default true). */
  dynamicBatch?: boolean;
}

/**
 * Serialises an inference graph (every param an initializer). With dynamicBatch the graph is built at one batch
 * size and dimension 0 of its inputs/outputs is renamed 'N': valid only when no node bakes the batch size into a
 * constant (Reshape to a fixed shape, Expand, ...), which is checked.
 */
export function serializeInference(g: Graph, opts: InferenceExportOptions = {}): Uint8Array {
  const trainable = g.params({ trainable: true });
  if (trainable.length)
    throw new Error(
      `inference export: ${trainable.length} params are graph inputs (${trainable[0].name}, ...); build with everything frozen`,
    );
  const model = toModelProto(g, { metadata: opts.metadata });
  if (opts.docString) model.docString = opts.docString;
  if (opts.dynamicBatch ?? true) {
    const fixed = g.nodes.filter((n) => !BATCH_FREE_OPS.has(n.opType)).map((n) => n.opType);
    if (fixed.length)
      throw new Error(
        `inference export: ops ${[...new Set(fixed)].join(', ')} may depend on the batch size; export with dynamicBatch: false`,
      );
    for (const v of [...(model.graph!.input ?? []), ...(model.graph!.output ?? [])]) {
      const dims = v.type!.tensorType!.shape!.dim!;
      dims[0] = { dimParam: 'N' };
    }
  }
  return onnxProto.onnx.ModelProto.encode(model).finish();
}

/**
 * Writes the model folder `dir` atomically (a half-written folder never appears; an old one is replaced). With
 * trunk 'reference' only the head params of `m.params` are stored (see SaveOptions).
 */
export async function saveModel(dir: string, m: ModelToSave, opts: SaveOptions = {}): Promise<ModelManifest> {
  checkSpec(m.network);
  checkLabels(m.labels, m.network, `labels for ${dir}`);
  const lean = opts.trunk === 'reference';
  const full = lean ? null : fullModelBytes(m);
  const heads = lean ? headsModelBytes(m) : null;
  // A heads-only folder (a study's frozen runs) keeps no explain.onnx: explainOnnx() builds it from the heads on use.
  const explain = lean ? null : explainModelBytes(m);
  const files = [
    ...Object.values(MODEL_FILES).map((f) => (lean && f === MODEL_FILES.onnx ? HEADS_FILE : f)),
    ...(explain ? [EXPLAIN_FILE] : []),
    ...(m.calibration ? [CALIBRATION_FILE] : []),
  ];
  const manifest: ModelManifest = {
    format: MODEL_FORMAT,
    version: MODEL_FORMAT_VERSION,
    createdAt: new Date().toISOString(),
    network: m.network,
    input: inputOf(m.network),
    outputs: manifestOutputs(m.network),
    files,
    ...(lean ? { trunk: trunkReferenceOf(m.network) } : {}),
  };
  const json = (v: unknown) => `${JSON.stringify(v ?? null, null, 2)}\n`;
  await writeDirAtomic(dir, async (tmp) => {
    if (full) await writeFileAtomic(join(tmp, MODEL_FILES.onnx), full);
    if (heads) await writeFileAtomic(join(tmp, HEADS_FILE), heads);
    if (explain) await writeFileAtomic(join(tmp, EXPLAIN_FILE), explain);
    await writeFileAtomic(join(tmp, MODEL_FILES.labels), json(m.labels));
    await writeFileAtomic(join(tmp, MODEL_FILES.preprocessing), json(m.preprocessing));
    await writeFileAtomic(join(tmp, MODEL_FILES.config), json(m.config ?? {}));
    await writeFileAtomic(join(tmp, MODEL_FILES.metrics), json(m.metrics ?? {}));
    if (m.calibration) await writeFileAtomic(join(tmp, CALIBRATION_FILE), json(m.calibration));
    // Last, so a reader that finds dermtl.json (in a folder not written by us atomically) finds the rest too.
    await writeFileAtomic(join(tmp, MODEL_FILES.manifest), json(manifest));
  });
  return manifest;
}

function inputOf(spec: NetworkSpec): ModelManifest['input'] {
  return { name: IMAGE_INPUT, shape: ['N', 3, spec.imageSize, spec.imageSize], dtype: 'float32' };
}

function onnxMetadata(
  m: Pick<ModelToSave, 'network' | 'labels' | 'preprocessing' | 'calibration'>,
): Record<string, string> {
  return {
    [METADATA_KEYS.format]: MODEL_FORMAT,
    [METADATA_KEYS.version]: String(MODEL_FORMAT_VERSION),
    [METADATA_KEYS.network]: JSON.stringify(m.network),
    [METADATA_KEYS.lesionLabels]: JSON.stringify(m.labels.lesion),
    [METADATA_KEYS.locationLabels]: JSON.stringify(m.labels.location),
    [METADATA_KEYS.preprocessing]: JSON.stringify(m.preprocessing),
    [METADATA_KEYS.input]: JSON.stringify(inputOf(m.network)),
    [METADATA_KEYS.outputs]: JSON.stringify(manifestOutputs(m.network)),
    ...(m.calibration ? { [METADATA_KEYS.calibration]: JSON.stringify(m.calibration) } : {}),
  };
}

/** heads.onnx of a model without its trunk: pooled features -> probabilities (the same metadata, but the input; float16 weights). */
function headsModelBytes(m: ModelToSave): Uint8Array {
  const g = buildHeadsGraph(m.network, headParams(m.params));
  const input = { name: HEADS_INPUT, shape: ['N', g.inputs[0].shape[1]], dtype: 'float32' };
  return halfWeights(
    serializeInference(g, {
      metadata: { ...onnxMetadata(m), [METADATA_KEYS.input]: JSON.stringify(input) },
      docString:
        `The heads of a dermtl model without its trunk: input '${HEADS_INPUT}' float32 [N, ${input.shape[1]}] is the trunk's pooled features. ` +
        'Weight matrices are float16, cast to float32. dermtl loadModel rebuilds the whole network; dermtl export writes it as one model.onnx.' +
        (m.network.heads.fusion
          ? ` Body site (late fusion): inputs '${SITE_TENSORS.locationGiven}' [N, ${m.network.heads.location}] (one-hot, zeros if unknown) and '${SITE_TENSORS.locationKnown}' [N, 1].`
          : ''),
    }),
  );
}

/**
 * The standalone model.onnx of a model: the whole network, every param baked in. With `heads.trunk`, `m.params` are
 * the heads' only (every one required) and the trunk is built from those weights.
 */
function fullModelBytes(
  m: Pick<ModelToSave, 'network' | 'params' | 'labels' | 'preprocessing' | 'calibration'>,
  heads?: { trunk: FoldedResNet50 | 'random'; where: string; metadata: Record<string, string> },
): Uint8Array {
  const net = buildNetwork(m.network, {
    batch: 1,
    mode: 'inference',
    values: m.params,
    requireValues: !heads,
    weights: heads?.trunk,
  });
  if (heads) {
    const missing = net.heads.params.filter((n) => !m.params.has(n));
    if (missing.length)
      throw new DermtlError(
        `${heads.where}: ${missing.length} head param(s) missing (${missing[0]}, ...); the file is damaged`,
      );
  }
  const bytes = serializeInference(net.graph, {
    metadata: heads?.metadata ?? onnxMetadata(m),
    docString: docString(m, inputOf(m.network).shape),
  });
  return withConv5Output(bytes, m.network);
}

/** explain.onnx: Grad-CAM of every label on model.onnx's conv5_x output (models/cam.ts), head weights in float16. */
function explainModelBytes(
  m: Pick<ModelToSave, 'network' | 'params' | 'labels' | 'preprocessing' | 'calibration'>,
): Uint8Array {
  const metadata = { ...onnxMetadata(m), [METADATA_KEYS.input]: JSON.stringify({ name: CAM_INPUT }) };
  return halfWeights(camModelBytes(m.network, headParams(m.params), metadata));
}

function manifestOutputs(spec: NetworkSpec): ModelManifest['outputs'] {
  const out: ModelManifest['outputs'] = [];
  if (spec.heads.lesion > 0)
    out.push({
      name: HEAD_TENSORS.lesionProbs,
      shape: ['N', spec.heads.lesion],
      activation: 'sigmoid',
      labels: 'lesion',
    });
  if (spec.heads.location > 0)
    out.push({
      name: HEAD_TENSORS.locationProbs,
      shape: ['N', spec.heads.location],
      activation: 'softmax',
      labels: 'location',
    });
  return out;
}

function docString(m: Pick<ModelToSave, 'network' | 'preprocessing'>, shape: (number | string)[]): string {
  const p = m.preprocessing;
  return [
    `dermtl skin-lesion model (ResNet-${m.network.trunk.depth} trunk), format ${MODEL_FORMAT} v${MODEL_FORMAT_VERSION}.`,
    `Input '${IMAGE_INPUT}' float32 [${shape}] (${p.layout}): resize shorter side to ${p.resizeShorter}, crop ${p.size}x${p.size},`,
    `channels ${p.channelOrder}, 0-255 minus mean [${p.mean}]${p.std ? ` divided by [${p.std}]` : ''}.`,
    `Outputs: ${manifestOutputs(m.network)
      .map((o) => `${o.name} (${o.activation})`)
      .join(', ')}; label names in metadata ${METADATA_KEYS.lesionLabels} / ${METADATA_KEYS.locationLabels}.`,
    ...(m.network.heads.fusion
      ? [
          `Body site (late fusion): inputs '${SITE_TENSORS.locationGiven}' float32 [N, ${m.network.heads.location}] (one-hot of the known location, zeros if unknown)`,
          `and '${SITE_TENSORS.locationKnown}' float32 [N, 1] (1 if known, else 0); both zero: the model's own predicted location is used.`,
        ]
      : []),
  ].join(' ');
}

function checkLabels(labels: ModelLabels, spec: NetworkSpec, where: string): void {
  const problems: string[] = [];
  for (const [key, n] of [
    ['lesion', spec.heads.lesion],
    ['location', spec.heads.location],
  ] as const) {
    const list = labels[key];
    if (!Array.isArray(list) || list.some((l) => typeof l !== 'string' || !l))
      problems.push(`${key}: must be a list of non-empty names`);
    else if (list.length !== n)
      problems.push(`${key}: ${list.length} names, the network's ${key} head has ${n} outputs`);
    else if (new Set(list).size !== list.length) problems.push(`${key}: names repeat`);
  }
  if (problems.length) throw errorList(where, problems);
}

// ---------------------------------------------------------------- loading

const specSchema = z.object({
  trunk: z.object({ depth: z.union([z.literal(50), z.literal('tiny')]) }),
  imageSize: z.number().int(),
  heads: z.object({
    lesion: z.number().int(),
    location: z.number().int(),
    shared: z.object({ hidden: z.number().int(), dropout: z.number() }).nullable().optional(),
    featureDropout: z.number().optional(),
    fusion: z.boolean().optional(),
  }),
  seed: z.number().int(),
});
const manifestSchema = z
  .object({ format: z.string(), version: z.number(), network: specSchema, trunk: trunkReferenceSchema.optional() })
  .loose();
const labelsSchema = z.object({ lesion: z.array(z.string()), location: z.array(z.string()) });
const prepSchema = z.object({
  size: z.number().int().positive(),
  resizeShorter: z.number().int().positive(),
  kernel: z.literal('lanczos3'),
  alphaBackground: z.tuple([z.number(), z.number(), z.number()]),
  channelOrder: z.enum(['BGR', 'RGB']),
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number(), z.number(), z.number()]).nullable(),
  layout: z.literal('NCHW'),
});

export interface LoadedModel {
  dir: string;
  manifest: ModelManifest;
  network: NetworkSpec;
  labels: ModelLabels;
  preprocessing: Preprocessing;
  config: unknown;
  metrics: unknown;
  /** calibration.json (temperatures folded into the heads, lesion thresholds); null for an uncalibrated model. */
  calibration: ModelCalibration | null;
  /** The model.onnx bytes (e.g. to serve to a browser). */
  onnx: Uint8Array;
  /** An ORT session on model.onnx (null when loaded with session: false). */
  session: GraphSession | null;
  /** Whether the model takes the body site (a fusion model, network.heads.fusion: models/fusion.ts). */
  takesSite: boolean;
  /**
   * Runs n preprocessed images [n, 3, size, size]; returns the probabilities of the heads present (and with `conv5`
   * the conv5_x activation [n, C, h, w], explain.onnx's input). A fusion model's site inputs are fed from `site`.
   */
  predict(
    images: Float32Array,
    n: number,
    opts?: ModelPredictOptions,
  ): Promise<{ lesion?: Float32Array; location?: Float32Array; conv5?: Float32Array }>;
  /** explain.onnx's bytes (models/cam.ts): read from the folder, or built from the head params for a folder without it. */
  explainOnnx(): Promise<Uint8Array>;
  /** Every param (name -> values) from model.onnx's initializers, e.g. to continue training. */
  params(): Map<string, Float32Array>;
  release(): Promise<void>;
}

export interface ModelPredictOptions {
  /** Also return the conv5_x activation. */
  conv5?: boolean;
  /**
   * A fusion model's known body site: one location index (labels.location) for all n images, or one per image; a
   * negative index (or none) is unknown, and the lesion head then uses the model's own predicted location. A known
   * site for a model without site inputs is an error.
   */
  site?: number | readonly number[];
}

export interface LoadOptions extends RunOptions {
  /** Open an ORT session (default true). */
  session?: boolean;
}

/** Reads and checks a model folder written by saveModel. Every problem is a DermtlError naming the folder or file. */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const kind = await stat(dir).then(
    (s) => (s.isDirectory() ? 'dir' : 'file'),
    () => null,
  );
  if (kind !== 'dir')
    throw new DermtlError(
      `${dir}: ${kind ? 'not a folder' : 'no such folder'}; a dermtl model is a folder holding ${MODEL_FILES.manifest} and ${MODEL_FILES.onnx}`,
    );
  const manifestPath = join(dir, MODEL_FILES.manifest);
  const raw = await readJson(manifestPath, {
    missing: `${dir} is not a dermtl model folder (it has no ${MODEL_FILES.manifest})`,
  });
  const head = z.object({ format: z.string(), version: z.number() }).loose().safeParse(raw);
  if (!head.success || head.data.format !== MODEL_FORMAT)
    throw new DermtlError(`${manifestPath}: not a ${MODEL_FORMAT} manifest (no "format": "${MODEL_FORMAT}")`);
  if (head.data.version !== MODEL_FORMAT_VERSION) {
    throw new DermtlError(
      `${dir}: model format version ${head.data.version}; this dermtl reads version ${MODEL_FORMAT_VERSION}. ` +
        `Use a dermtl release that writes version ${head.data.version}, or export the model again.`,
    );
  }
  const manifest = parseWith(manifestSchema, raw, manifestPath) as unknown as ModelManifest;
  const missing: string[] = [];
  const lean = manifest.trunk !== undefined;
  for (const f of Object.values(MODEL_FILES).map((f) => (lean && f === MODEL_FILES.onnx ? HEADS_FILE : f))) {
    if (
      !(await stat(join(dir, f)).then(
        (s) => s.isFile(),
        () => false,
      ))
    )
      missing.push(`${f}: missing`);
  }
  if (missing.length) throw errorList(`${dir}: incomplete dermtl model folder`, missing);
  const network = manifest.network;
  try {
    checkSpec(network);
  } catch (e) {
    throw new DermtlError(`${manifestPath}: ${(e as Error).message}`);
  }
  const labels = parseWith(labelsSchema, await readJson(join(dir, MODEL_FILES.labels)), join(dir, MODEL_FILES.labels));
  checkLabels(labels, network, join(dir, MODEL_FILES.labels));
  const preprocessing = parseWith(
    prepSchema,
    await readJson(join(dir, MODEL_FILES.preprocessing)),
    join(dir, MODEL_FILES.preprocessing),
  ) as Preprocessing;
  if (preprocessing.size !== network.imageSize) {
    throw new DermtlError(
      `${join(dir, MODEL_FILES.preprocessing)}: size ${preprocessing.size} differs from the network's input size ${network.imageSize}`,
    );
  }
  const config = await readJson(join(dir, MODEL_FILES.config));
  const metrics = await readJson(join(dir, MODEL_FILES.metrics));
  const calibrationPath = join(dir, CALIBRATION_FILE);
  const calibration = (await stat(calibrationPath).then(
    () => true,
    () => false,
  ))
    ? parseWith(CalibrationSchema, await readJson(calibrationPath), calibrationPath)
    : null;
  const onnxPath = join(dir, lean ? HEADS_FILE : MODEL_FILES.onnx);
  let onnx: Uint8Array = new Uint8Array(await readFile(onnxPath));
  checkOnnxMetadata(onnxPath, onnx, labels);
  if (manifest.trunk) {
    // heads only: the whole network is the referenced trunk + these heads, rebuilt as saveModel would write it
    const weights = await resolveTrunk(manifest.trunk, network, manifestPath);
    // heads.onnx's metadata is the whole model's but for the input (saved as written, key order included)
    const metadata = { ...readMetadata(onnx), [METADATA_KEYS.input]: JSON.stringify(inputOf(network)) };
    onnx = fullModelBytes(
      { network, labels, preprocessing, params: readParams(onnx) },
      { trunk: weights, where: onnxPath, metadata },
    );
  } else {
    onnx = withConv5Output(onnx, network); // a folder written before model.onnx had the conv5_x output
  }
  let session: GraphSession | null = null;
  if (opts.session ?? true) {
    session = await GraphSession.fromBytes(onnx, opts).catch((e: Error) => {
      throw new DermtlError(`${onnxPath}: onnxruntime cannot open it (${e.message.split('\n')[0]})`);
    });
  }
  return {
    dir,
    manifest,
    network,
    labels,
    preprocessing,
    config,
    metrics,
    calibration,
    onnx,
    session,
    takesSite: network.heads.fusion === true,
    async predict(images, n, p = {}) {
      if (!session) throw new Error('model was loaded with session: false');
      const size = network.imageSize;
      const fetches = manifestOutputs(network)
        .map((o) => o.name)
        .concat(p.conv5 ? [CAM_INPUT] : []);
      const feeds = {
        [IMAGE_INPUT]: { data: images, dims: [n, 3, size, size] },
        ...modelSiteFeeds(network, n, p.site),
      };
      const out = await session.run(feeds, fetches);
      return {
        ...(network.heads.lesion > 0 ? { lesion: out[HEAD_TENSORS.lesionProbs].data as Float32Array } : {}),
        ...(network.heads.location > 0 ? { location: out[HEAD_TENSORS.locationProbs].data as Float32Array } : {}),
        ...(p.conv5 ? { conv5: out[CAM_INPUT].data as Float32Array } : {}),
      };
    },
    async explainOnnx() {
      const path = join(dir, EXPLAIN_FILE);
      const bytes = await readFile(path).then(
        (b) => new Uint8Array(b),
        () => null,
      );
      return bytes ?? explainModelBytes({ network, labels, preprocessing, calibration, params: readParams(onnx) });
    },
    params: () => readParams(onnx),
    release: async () => session?.release(),
  };
}

/**
 * The site inputs of a fusion model for n rows (models/fusion.ts): `site` one location index for all rows or one per
 * row, negative = unknown (zeros). {} for a model without them, where a known site is an error.
 */
export function modelSiteFeeds(
  network: NetworkSpec,
  n: number,
  site: number | readonly number[] | undefined,
): Record<string, { data: Float32Array; dims: number[] }> {
  const rows = typeof site === 'number' ? Array<number>(n).fill(site) : site ? [...site] : Array<number>(n).fill(-1);
  if (rows.length !== n) throw new DermtlError(`site: ${rows.length} location indices for ${n} images`);
  const q = network.heads.location;
  const bad = rows.find((c) => !Number.isInteger(c) || c >= q);
  if (bad !== undefined)
    throw new DermtlError(
      `site: location index ${bad} is not one of the model's ${q} body locations (0..${q - 1}; < 0: unknown)`,
    );
  if (network.heads.fusion !== true) {
    if (rows.some((c) => c >= 0))
      throw new DermtlError('site: this model does not take a body site (it was not trained with fusion)');
    return {};
  }
  const feeds = siteFeeds(
    rows,
    rows.map(() => true),
    n,
    q,
  );
  return {
    [SITE_TENSORS.locationGiven]: { data: feeds[SITE_TENSORS.locationGiven], dims: [n, q] },
    [SITE_TENSORS.locationKnown]: { data: feeds[SITE_TENSORS.locationKnown], dims: [n, 1] },
  };
}

/** The standalone model.onnx must carry our format and the same labels as labels.json. */
function checkOnnxMetadata(path: string, bytes: Uint8Array, labels: ModelLabels): void {
  let meta: Record<string, string>;
  try {
    meta = readMetadata(bytes);
  } catch (e) {
    throw new DermtlError(`${path}: not a readable ONNX model (${(e as Error).message})`);
  }
  if (meta[METADATA_KEYS.format] !== MODEL_FORMAT)
    throw new DermtlError(`${path}: not written by dermtl (no ${METADATA_KEYS.format} metadata)`);
  if (meta[METADATA_KEYS.version] !== String(MODEL_FORMAT_VERSION)) {
    throw new DermtlError(
      `${path}: model format version ${meta[METADATA_KEYS.version]}; this dermtl reads version ${MODEL_FORMAT_VERSION}`,
    );
  }
  for (const key of ['lesion', 'location'] as const) {
    const k = key === 'lesion' ? METADATA_KEYS.lesionLabels : METADATA_KEYS.locationLabels;
    if (meta[k] !== JSON.stringify(labels[key]))
      throw new DermtlError(
        `${path}: its ${key} labels differ from ${MODEL_FILES.labels} (the folder was edited by hand?)`,
      );
  }
}

/** Named params (`<layer>/weight`, `<layer>/bias`) from the initializers of model bytes, as fresh Float32Arrays. */
export function readParams(bytes: Uint8Array): Map<string, Float32Array> {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const out = new Map<string, Float32Array>();
  for (const t of model.graph?.initializer ?? []) {
    if (!t.name || !/\/(weight|bias)$/.test(t.name)) continue;
    const data = initializerValues(t); // float32, or float16 (a heads.onnx) widened
    if (data) out.set(t.name, data);
  }
  return out;
}
