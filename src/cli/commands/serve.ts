import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_MODEL_PATH, resolveModelPath } from '../../serve/defaultModel.ts';
import { SERVER_DEFAULTS } from '../../serve/defaults.ts';
import { intArg } from './demo-data.ts';
import { positiveInt } from './predict.ts';

interface ServeFlags {
  model?: string;
  port: number;
  host: string;
  maxBodyMb: number;
  maxPixels: number;
  timeoutMs: number;
  queue: number;
  concurrency: number;
  threads?: number;
  logRequests?: boolean;
}

/** `dermtl serve [--model DIR] [--port 8080] [--host 127.0.0.1]`: the HTTP API and the web page. */
export function register(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve a model over HTTP: POST /api/predict, GET /api/model, GET /healthz, GET /api/openapi.json, GET /model.onnx, and the web page at /',
    )
    .option(
      '--model <dir>',
      `model folder (or its model.onnx); default: ./${DEFAULT_MODEL_PATH}, the multi-task model of fold 0 written by npm start`,
    )
    .option('--port <n>', 'TCP port (0: any free port)', portArg, 8080)
    .option('--host <addr>', 'address to listen on (0.0.0.0 exposes the server to the network)', '127.0.0.1')
    .option(
      '--max-body-mb <mb>',
      'largest request body, MB (larger: 413)',
      positiveNumber,
      SERVER_DEFAULTS.bodyLimit / 1024 / 1024,
    )
    .option(
      '--max-pixels <n>',
      'largest image, width x height, checked before decoding (larger: 422)',
      positiveInt,
      SERVER_DEFAULTS.maxPixels,
    )
    .option(
      '--timeout-ms <ms>',
      'per prediction, queue wait included (503 while waiting, 504 while running)',
      positiveInt,
      SERVER_DEFAULTS.timeoutMs,
    )
    .option(
      '--queue <n>',
      'requests that may wait for the model; more at once get 503 + Retry-After',
      nonNegativeInt,
      SERVER_DEFAULTS.queueSize,
    )
    .option(
      '--concurrency <n>',
      'images decoded at once (the model itself runs one at a time)',
      positiveInt,
      SERVER_DEFAULTS.concurrency,
    )
    .option('--threads <n>', 'onnxruntime threads (default: every core)', positiveInt)
    .option('--log-requests', 'log every request (JSON lines on stderr)')
    .addHelpText(
      'after',
      [
        '',
        'Example: curl --data-binary @lesion.jpg -H "Content-Type: image/jpeg" "http://127.0.0.1:8080/api/predict?tta=10crop&top=3"',
        'Errors are JSON {"error":{"code","message"}}. SIGTERM or Ctrl-C finishes the requests in flight, then exits.',
      ].join('\n'),
    )
    .action(async (f: ServeFlags) => {
      const modelPath = await resolveModelPath(f.model);
      const { serveModel } = await import('../../serve/run.ts');
      await serveModel({
        modelPath,
        port: f.port,
        host: f.host,
        threads: f.threads,
        bodyLimit: Math.round(f.maxBodyMb * 1024 * 1024),
        maxPixels: f.maxPixels,
        timeoutMs: f.timeoutMs,
        queueSize: f.queue,
        concurrency: f.concurrency,
        logger: { level: f.logRequests ? 'info' : 'warn', stream: process.stderr },
        onListen: (url) =>
          process.stderr.write(
            `dermtl: serving ${modelPath} at ${url} (web page at /, API description at /api/openapi.json)\n`,
          ),
        onShutdown: (signal) => process.stderr.write(`dermtl: ${signal}: finishing requests in flight, then exiting\n`),
      });
      process.stderr.write('dermtl: server stopped\n');
    });
}

function portArg(value: string): number {
  const n = intArg(value);
  if (n < 0 || n > 65535) throw new InvalidArgumentError(`expected a port 0-65535, got '${value}'`);
  return n;
}

function nonNegativeInt(value: string): number {
  const n = intArg(value);
  if (n < 0) throw new InvalidArgumentError(`expected a whole number >= 0, got '${value}'`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number > 0, got '${value}'`);
  return n;
}
