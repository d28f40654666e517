/**
 * The HTTP API on Fastify: POST /api/predict (raw image body or multipart field 'image'; ?location=SITE for a model
 * that takes the body site), POST /api/explain (the same with every label's Grad-CAM map), GET /api/model, GET /healthz, GET /api/openapi.json, GET /model.onnx,
 * GET /explain.onnx, and the web page's assets under GET.
 * Limits: body size, pixel count, a bounded queue in front of the model, a per-request timeout.
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { lesionThresholds } from '../models/calibration.ts';
import { MODEL_FORMAT } from '../models/modelFile.ts';
import { TTA_MODES, type DermtlModel, type Prediction } from './api.ts';
import { errorHandler, HttpError, predictionError } from './httpErrors.ts';
import { openApiDocument, predictQuerySchema, type PredictQuery } from './openapi.ts';
import { BoundedQueue, QueueFullError } from './queue.ts';
import { siteOf, UnknownLocationError } from './predictor.ts';
import { defaultWebAssets, memoWebAssets, type WebAssets } from './webAssets.ts';
import { SERVER_DEFAULTS } from './defaults.ts';

export { SERVER_DEFAULTS };

export interface ServerOptions {
  model: DermtlModel;
  /** Largest request body in bytes (raw or multipart file); default 10 MiB -> 413. */
  bodyLimit?: number;
  /** Largest decoded image (width x height), checked from the header before decoding -> 422. */
  maxPixels?: number;
  /** Per prediction (queue wait + run), ms -> 503 while waiting, 504 while running. */
  timeoutMs?: number;
  concurrency?: number;
  queueSize?: number;
  requestTimeoutMs?: number;
  /** Fastify logger (pino options or true); default off. */
  logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
  /** The web page's assets: default src/serve/web's buildWebAssets(); null: serve no page. */
  web?: (() => Promise<WebAssets | null>) | null;
}

/** The media types accepted as a raw image body (sharp sniffs the real format). */
export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'];

/** A ready-to-listen Fastify instance serving `model` (the caller keeps ownership of the model). */
export function createServer(opts: ServerOptions): FastifyInstance {
  const o = { ...SERVER_DEFAULTS, ...definedOnly(opts) };
  const { model } = opts;
  const queue = new BoundedQueue(o.concurrency, o.queueSize);
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: o.bodyLimit,
    requestTimeout: o.requestTimeoutMs,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Unknown query parameters are an error (a typo like ?tpo=3 should not pass silently).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true } },
    // Errors raised before routing (a URL that does not decode) get the same JSON shape.
    frameworkErrors: (error, _req, reply) =>
      void (reply as FastifyReply).code(400).send({ error: { code: 'bad_request', message: error.message } }),
  });
  app.setErrorHandler(errorHandler(o.bodyLimit));
  app.setNotFoundHandler(
    (req, reply) =>
      void reply.code(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${pathOf(req)}` } }),
  );
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
  });
  // Only image bodies (and multipart, below) are parsed; JSON or text bodies get 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer', bodyLimit: o.bodyLimit }, (_req, body, done) =>
    done(null, body),
  );
  app.register(multipart, {
    limits: { fileSize: o.bodyLimit, files: 1, fields: 10, parts: 20, fieldSize: 4096, headerPairs: 100 },
  });
  // Wait for running predictions (also those whose client already got a 504) before the caller frees the model.
  app.addHook('onClose', async () => queue.idle());

  for (const explain of [false, true]) {
    app.post(
      explain ? '/api/explain' : '/api/predict',
      {
        schema: { querystring: predictQuerySchema },
        // Refuse before reading the body when there is no room: a full queue should not also buffer 10 MB per client.
        onRequest: async () => {
          if (queue.full) throw predictionError(new QueueFullError(queue.retryAfterSeconds()), () => 1, o.timeoutMs);
        },
      },
      async (request, reply) => {
        const { tta, top, location } = request.query as PredictQuery;
        try {
          siteOf(model, location);
        } catch (e) {
          if (e instanceof UnknownLocationError) throw new HttpError(400, 'unknown_location', e.message);
          throw e;
        }
        const upload = await readUpload(request);
        const prediction = await runPrediction(reply, () =>
          model.predict(upload.bytes, {
            tta,
            top,
            explain,
            location,
            maxPixels: o.maxPixels,
            name: upload.filename ?? 'uploaded image',
          }),
        );
        return explain
          ? { ...predictionJson(upload.filename, prediction), explanation: prediction.explanation }
          : predictionJson(upload.filename, prediction);
      },
    );
  }

  async function runPrediction(reply: FastifyReply, job: () => Promise<Prediction>): Promise<Prediction> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('timeout')), o.timeoutMs);
    // The client hung up: drop its job if it is still waiting.
    const onClose = () => !reply.raw.writableFinished && abort.abort(new Error('client gone'));
    reply.raw.on('close', onClose);
    try {
      return await queue.run(job, abort.signal);
    } catch (e) {
      throw predictionError(e, () => queue.retryAfterSeconds(), o.timeoutMs);
    } finally {
      clearTimeout(timer);
      reply.raw.off('close', onClose);
    }
  }

  const onnxEtag = `"${createHash('sha256').update(model.onnx).digest('hex')}"`;
  app.get('/model.onnx', async (request, reply) => {
    reply
      .header('content-type', 'application/octet-stream')
      .header('etag', onnxEtag)
      .header('cache-control', 'no-cache');
    const match = request.headers['if-none-match'];
    if (match && (match.trim() === '*' || match.split(',').some((t) => t.trim().replace(/^W\//, '') === onnxEtag)))
      return reply.code(304).send();
    return reply.send(Buffer.from(model.onnx.buffer, model.onnx.byteOffset, model.onnx.byteLength));
  });

  let explainBytes: Promise<{ bytes: Uint8Array; etag: string }> | null = null;
  app.get('/explain.onnx', async (request, reply) => {
    explainBytes ??= model
      .explainOnnx()
      .then((bytes) => ({ bytes, etag: `"${createHash('sha256').update(bytes).digest('hex')}"` }));
    explainBytes.catch(() => (explainBytes = null));
    const { bytes, etag } = await explainBytes;
    reply.header('content-type', 'application/octet-stream').header('etag', etag).header('cache-control', 'no-cache');
    const match = request.headers['if-none-match'];
    if (match && (match.trim() === '*' || match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)))
      return reply.code(304).send();
    return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  app.get('/api/model', async () => ({
    format: MODEL_FORMAT,
    formatVersion: model.formatVersion,
    labels: model.labels,
    preprocessing: model.preprocessing,
    metrics: model.metrics,
    network: model.network,
    calibration: model.calibration,
    thresholds: lesionThresholds(model.calibration, model.labels.lesion),
    outputs: model.manifest.outputs,
    onnx: { url: '/model.onnx', bytes: model.onnx.byteLength, sha256: onnxEtag.slice(1, -1) },
    tta: [...TTA_MODES],
    takesSite: model.takesSite,
  }));

  const started = Date.now();
  app.get('/healthz', async () => ({
    status: 'ok',
    uptimeS: Math.round((Date.now() - started) / 1000),
    queue: { running: queue.running, waiting: queue.waiting, concurrency: queue.concurrency, size: queue.maxWaiting },
    memory: { rssBytes: process.memoryUsage.rss(), peakRssBytes: process.resourceUsage().maxRSS * 1024 },
  }));

  const openapi = openApiDocument({ bodyLimit: o.bodyLimit, maxPixels: o.maxPixels, timeoutMs: o.timeoutMs });
  app.get('/api/openapi.json', async () => openapi);

  mountWeb(app, opts.web === undefined ? defaultWebAssets : opts.web);
  return app;
}

function mountWeb(app: FastifyInstance, load: (() => Promise<WebAssets | null>) | null): void {
  const web = memoWebAssets(load ?? (async () => null));
  // Start the (slow) bundle at startup, so the first visitor does not wait for it.
  app.addHook('onReady', async () => void web());
  app.get('/*', async (request, reply) => {
    const path = pathOf(request);
    const state = await web();
    if (state.kind === 'failed') {
      request.log.error({ err: state.error }, 'web page build failed');
      throw new HttpError(500, 'web_build_failed', 'the web page could not be built; see the server log');
    }
    const asset =
      state.kind === 'ready'
        ? (state.assets.get(path) ?? (path === '/index.html' ? state.assets.get('/') : undefined))
        : undefined;
    if (!asset) {
      if (state.kind === 'absent' && (path === '/' || path === '/index.html')) {
        throw new HttpError(
          404,
          'web_not_built',
          'web page not built: this dermtl has no src/serve/web; the HTTP API is at /api (see /api/openapi.json)',
        );
      }
      throw new HttpError(404, 'not_found', `no route GET ${path}`);
    }
    // Cross-origin isolation lets onnxruntime-web use wasm threads (SharedArrayBuffer); everything is same-origin.
    return reply
      .header('content-type', asset.type)
      .header('cache-control', 'no-cache')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-embedder-policy', 'require-corp')
      .send(asset.body);
  });
}

/** The prediction as answered by the server (the CLI's JSON line plus tta and timing). */
export function predictionJson(image: string | null, p: Prediction) {
  return {
    image,
    lesions: p.lesions,
    location: p.location,
    tta: p.tta,
    ...(p.site ? { site: p.site } : {}),
    timing: p.timing,
  };
}

async function readUpload(request: FastifyRequest): Promise<{ bytes: Buffer; filename: string | null }> {
  const noImage =
    "no image in the request: send it as the body (Content-Type image/jpeg, image/png or image/webp) or as the multipart field 'image'";
  if (request.isMultipart()) {
    try {
      const file = await request.file();
      if (!file) throw new HttpError(400, 'empty_body', noImage);
      if (file.fieldname !== 'image') {
        file.file.resume();
        throw new HttpError(
          400,
          'bad_request',
          `unexpected multipart file field '${cleanName(file.fieldname)}'; send the image as the field 'image'`,
        );
      }
      const bytes = await file.toBuffer();
      if (bytes.length === 0) throw new HttpError(400, 'empty_body', noImage);
      return { bytes, filename: cleanName(file.filename) };
    } catch (e) {
      if (e instanceof HttpError || (e as { statusCode?: number }).statusCode === 413) throw e;
      throw new HttpError(400, 'bad_multipart', `malformed multipart body (${(e as Error).message})`);
    }
  }
  const body = request.body;
  if (!Buffer.isBuffer(body) || body.length === 0) throw new HttpError(400, 'empty_body', noImage);
  return { bytes: body, filename: null };
}

/** A client's file name, for display only (never a path we open): last path component, no control characters. */
export function cleanName(name: string | undefined): string | null {
  const last = (name ?? '').split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = last.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 200);
  return clean && clean !== '.' && clean !== '..' ? clean : null;
}

function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0];
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
