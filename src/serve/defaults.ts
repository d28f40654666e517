// The serving layer's option values and defaults, apart from api.ts and server.ts so that the CLI can build its
// --help without loading onnxruntime, sharp or fastify.
import { DEFAULT_MAX_PIXELS } from '../image/limits.ts';

import type { Tta } from '../image/tta.ts';

/** Test-time augmentation (image/tta.ts): the centre 224 crop, or the 10 crops (4 corners + centre, and mirrors) averaged. */
export type { Tta };
/** The serving default first. */
export const TTA_MODES: readonly Tta[] = ['center', '10crop'];

export const SERVER_DEFAULTS = {
  bodyLimit: 10 * 1024 * 1024,
  maxPixels: DEFAULT_MAX_PIXELS,
  timeoutMs: 30_000,
  /** Images decoded at once; onnxruntime runs one at a time anyway (see predictor.ts). */
  concurrency: 2,
  /** Requests that may wait for a slot; beyond that: 503 + Retry-After. */
  queueSize: 8,
  /** Time allowed to receive a whole request (slow clients); Node answers 408 past it. */
  requestTimeoutMs: 60_000,
};
