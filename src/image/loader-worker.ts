/**
 * Worker thread of ImageLoader: renders whole batches and transfers the Float32Array back (no copy).
 * From the sources it is started through loader-worker.mjs, which registers tsx first; built, as loader-worker.js.
 */
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { DermtlError } from '../util/errors.ts';
import { renderBatch, type BatchTask, type WorkerConfig, type WorkerReply } from './batch.ts';

if (!parentPort) throw new Error('loader-worker.ts must run in a worker thread');
const port = parentPort;
const config = workerData as WorkerConfig;
// A stream of distinct images gains nothing from libvips' operation cache; it only holds memory.
sharp.cache(false);

port.on('message', (task: BatchTask) => {
  renderBatch(task, config).then(
    (r) => port.postMessage({ id: task.id, ok: true, ...r } satisfies WorkerReply, [r.data.buffer as ArrayBuffer]),
    (e: unknown) =>
      port.postMessage({
        id: task.id,
        ok: false,
        message: e instanceof Error ? e.message : String(e),
        userError: e instanceof DermtlError,
      } satisfies WorkerReply),
  );
});
