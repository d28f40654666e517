// A stand-in for the dermtl server (node:http, no framework) with the routes the page uses: the web assets,
// GET /api/model, GET /model.onnx and POST /api/predict. Used while src/serve/server.ts did not exist yet.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DermtlModel, Tta } from '../../../src/serve/api.ts';
import { buildWebAssets } from '../../../src/serve/web/build.ts';
import { DermtlError } from '../../../src/util/errors.ts';

const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp']);
const MAX_BYTES = 10 * 1024 * 1024;

export async function startHarness(model: DermtlModel): Promise<{ url: string; close: () => Promise<void> }> {
  const assets = await buildWebAssets();
  const server = createHttpServer((req, res) => {
    handle(req, res).catch((e) => reply(res, 500, { error: { code: 'internal', message: String(e) } }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/api/model') {
      return reply(res, 200, { labels: model.labels, preprocessing: model.preprocessing, network: model.network, metrics: model.metrics });
    }
    if (req.method === 'GET' && url.pathname === '/model.onnx') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': model.onnx.length });
      return void res.end(model.onnx);
    }
    if (req.method === 'POST' && url.pathname === '/api/predict') return predict(req, res, url);
    const asset = req.method === 'GET' ? assets.get(url.pathname) : undefined;
    if (!asset) return reply(res, 404, { error: { code: 'not_found', message: `no route ${req.method} ${url.pathname}` } });
    res.writeHead(200, { 'content-type': asset.type });
    res.end(asset.body);
  }

  async function predict(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
    if (!IMAGE_TYPES.has(type)) return reply(res, 415, { error: { code: 'unsupported_media_type', message: `content type ${type} is not an image` } });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BYTES) return reply(res, 413, { error: { code: 'too_large', message: 'image larger than 10 MB' } });
      chunks.push(c as Buffer);
    }
    try {
      const top = url.searchParams.get('top');
      const p = await model.predict(Buffer.concat(chunks), { tta: (url.searchParams.get('tta') ?? 'center') as Tta, top: top ? Number(top) : undefined, name: 'upload' });
      return reply(res, 200, p);
    } catch (e) {
      if (e instanceof DermtlError) return reply(res, 400, { error: { code: 'bad_image', message: e.message } });
      throw e;
    }
  }

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
