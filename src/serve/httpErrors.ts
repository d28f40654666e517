/**
 * Every error leaves the server as JSON `{error: {code, message}}` with a fitting status; never a stack trace.
 * Internal errors are logged and answered with a generic message.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DermtlError } from '../util/errors.ts';
import { JobAbortedError, QueueFullError } from './queue.ts';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

/** Fastify's and @fastify/multipart's own error codes -> ours. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_REQ_FILE_TOO_LARGE: 'body_too_large',
  FST_PARTS_LIMIT: 'body_too_large',
  FST_FILES_LIMIT: 'body_too_large',
  FST_FIELDS_LIMIT: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
};
const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  413: 'body_too_large',
  415: 'unsupported_media_type',
};

const MEDIA_TYPE_HELP =
  "unsupported Content-Type: send the image as the body with Content-Type image/jpeg, image/png, image/webp or application/octet-stream, or as the field 'image' of a multipart/form-data body";

/** Maps an image decoding problem (a DermtlError from src/image) to 422/400. */
export function imageError(e: DermtlError): HttpError {
  // decodeImage states its limits in words; these two patterns are pinned by test/serve/server.test.ts.
  if (/more than the limit of \d+ pixels/.test(e.message)) return new HttpError(422, 'image_too_large', e.message);
  if (/empty image data/.test(e.message)) return new HttpError(400, 'empty_body', e.message);
  return new HttpError(422, 'bad_image', e.message);
}

/** The prediction failed: what the client is told. Unknown errors pass through (-> 500). */
export function predictionError(e: unknown, retryAfterS: () => number, timeoutMs: number): unknown {
  if (e instanceof QueueFullError)
    return new HttpError(503, 'busy', 'the server is busy: the prediction queue is full; retry later', {
      'retry-after': String(e.retryAfterS),
    });
  if (e instanceof JobAbortedError) {
    if (!e.started)
      return new HttpError(503, 'queue_timeout', `waited more than ${timeoutMs} ms for the model; retry later`, {
        'retry-after': String(retryAfterS()),
      });
    return new HttpError(504, 'timeout', `the prediction took more than ${timeoutMs} ms`);
  }
  if (e instanceof DermtlError) return imageError(e);
  return e;
}

/** Fastify's error handler; `bodyLimit` (bytes) is named in 413 messages. */
export function errorHandler(bodyLimit: number) {
  return (error: FastifyError | HttpError | Error, request: FastifyRequest, reply: FastifyReply): void => {
    const { status, body, headers } = describe(error, bodyLimit);
    if (status >= 500 && !(error instanceof HttpError)) request.log.error({ err: error }, 'internal error');
    reply.code(status).headers(headers).type('application/json').send(body);
  };
}

function describe(
  error: FastifyError | HttpError | Error,
  bodyLimit: number,
): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (error instanceof HttpError)
    return {
      status: error.statusCode,
      body: { error: { code: error.code, message: error.message } },
      headers: error.headers,
    };
  const fe = error as FastifyError;
  if (fe.validation) return { status: 400, body: { error: { code: 'bad_request', message: fe.message } }, headers: {} };
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = FASTIFY_CODES[fe.code] ?? CODE_BY_STATUS[status] ?? 'bad_request';
    const message =
      code === 'unsupported_media_type'
        ? MEDIA_TYPE_HELP
        : code === 'body_too_large'
          ? `request body larger than the limit of ${(bodyLimit / 1024 / 1024).toFixed(1)} MB (${bodyLimit} bytes)`
          : fe.message;
    return { status, body: { error: { code, message } }, headers: {} };
  }
  return {
    status: 500,
    body: { error: { code: 'internal_error', message: 'internal error; see the server log' } },
    headers: {},
  };
}
