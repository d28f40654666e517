/**
 * `dermtl serve` as a function: load the model, listen, and on SIGTERM/SIGINT stop accepting, finish the
 * requests in flight, then free the model. Resolves when the server has shut down.
 */
import type { AddressInfo } from 'node:net';
import { DermtlError } from '../util/errors.ts';
import { loadModel } from './api.ts';
import { createServer, type ServerOptions } from './server.ts';

export interface ServeOptions extends Omit<ServerOptions, 'model'> {
  modelPath: string;
  port: number;
  host: string;
  /** onnxruntime intra-op threads. */
  threads?: number;
  /** After a signal, connections still open this long are cut (default: the prediction timeout + 5 s). */
  shutdownGraceMs?: number;
  /** Told once the server listens (the URL has the real port when port 0 was asked). */
  onListen?: (url: string) => void;
  onShutdown?: (signal: string) => void;
}

export async function serveModel(opts: ServeOptions): Promise<void> {
  const { modelPath, port, host, threads, shutdownGraceMs, onListen, onShutdown, ...limits } = opts;
  const model = await loadModel(modelPath, { threads, maxPixels: limits.maxPixels });
  const app = createServer({ model, ...limits });
  try {
    await app.listen({ port, host });
  } catch (e) {
    await model.dispose();
    throw new DermtlError(
      `cannot listen on ${host}:${port} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); pass another --port or --host`,
    );
  }
  const { port: actual } = app.server.address() as AddressInfo;
  onListen?.(`http://${host.includes(':') ? `[${host}]` : host}:${actual}`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGTERM', onTerm).off('SIGINT', onInt);
      onShutdown?.(signal);
      // Requests still open after the grace time are cut; close() then completes.
      const grace = setTimeout(
        () => app.server.closeAllConnections(),
        shutdownGraceMs ?? (limits.timeoutMs ?? 30_000) + 5_000,
      );
      grace.unref();
      app.close().finally(() => {
        clearTimeout(grace);
        resolve();
      });
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm).on('SIGINT', onInt);
  });
  await model.dispose();
}
