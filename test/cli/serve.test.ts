// dermtl serve as a real process: listens on the port it prints, answers predictions, and on SIGTERM stops
// taking connections but finishes the request in flight before exiting 0. Also its help and the missing model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { register } from '../../src/cli/commands/serve.ts';
import { DEFAULT_MODEL_PATH } from '../../src/serve/defaultModel.ts';
import { runCommand, tempDir } from '../data/helpers.ts';
import { rampImage, tinyModelDir } from '../serve/helpers.ts';

// The real command as a user runs it, from the sources (scripts/dermtl-dev.js registers tsx itself; bin/dermtl.js runs
// the same CLI built into dist/, which test/package.test.ts checks).
const ENTRY = join(import.meta.dirname, '../../scripts/dermtl-dev.js');
const root = await tempDir('dermtl-serve-cli-');
const modelDir = await tinyModelDir(root);

/** Starts `dermtl serve` on port 0 and resolves with the port it reports on stderr. */
function startServe(
  args: string[],
): Promise<{ child: ChildProcess; port: number; stderr: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [ENTRY, 'serve', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c) => {
      stderr += c;
      const m = /at http:\/\/127\.0\.0\.1:(\d+) /.exec(stderr);
      if (m) resolve({ child, port: Number(m[1]), stderr: () => stderr, exited });
    });
    exited.then((code) => reject(new Error(`serve exited (${code}) before listening: ${stderr}`)));
  });
}

/** Reads one HTTP response from a socket (Connection: close). */
function readResponse(s: Socket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let data = '';
    s.on('data', (c) => (data += c));
    s.on('error', reject);
    s.on('close', () =>
      resolve({ status: Number(data.split(' ')[1]), body: data.split('\r\n\r\n').slice(1).join('\r\n\r\n') }),
    );
  });
}

const connected = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });

test('SIGTERM: the request in flight is answered, new connections are refused, the process exits 0', async () => {
  const srv = await startServe(['--model', modelDir, '--threads', '1']);
  try {
    const health = await fetch(`http://127.0.0.1:${srv.port}/healthz`);
    assert.equal(health.status, 200);
    const jpeg = await rampImage('jpeg', 64, 48, 1);
    // Half the body now, SIGTERM, the other half after: the request is in flight across the signal.
    const s = await connected(srv.port);
    const answer = readResponse(s);
    s.write(
      `POST /api/predict?top=2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\nConnection: close\r\n\r\n`,
    );
    s.write(jpeg.subarray(0, 200));
    await new Promise((r) => setTimeout(r, 200));
    srv.child.kill('SIGTERM');
    while (!/SIGTERM: finishing requests in flight/.test(srv.stderr())) await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(connected(srv.port), /ECONNREFUSED/);
    s.write(jpeg.subarray(200)); // not end(): a half-closed socket is closed by Node before the answer
    const r = await answer;
    assert.equal(r.status, 200, r.body);
    const json = JSON.parse(r.body);
    assert.equal(json.lesions.length, 2);
    assert.equal(json.location.length, 2);
    assert.equal(await srv.exited, 0);
    assert.match(srv.stderr(), /server stopped\n$/);
  } finally {
    srv.child.kill('SIGKILL');
  }
});

test('without --model and no default model: one line, exit 1', async () => {
  const cwd = await tempDir('dermtl-serve-cwd-');
  const r = spawnSync(process.execPath, [ENTRY, 'serve', '--port', '0'], { cwd, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `dermtl: no model at ./${DEFAULT_MODEL_PATH}: run npm start first, or pass --model DIR\n`);
});

test('--help documents the limits; a bad port is a usage error', async () => {
  const help = await runCommand(register, ['serve', '--help']);
  assert.equal(help.code, 0);
  for (const flag of [
    '--model',
    '--port',
    '--host',
    '--max-body-mb',
    '--max-pixels',
    '--timeout-ms',
    '--queue',
    '--concurrency',
  ])
    assert.match(help.stdout, new RegExp(`${flag} `), flag);
  assert.match(help.stdout, /default: "127\.0\.0\.1"/);
  const bad = await runCommand(register, ['serve', '--model', modelDir, '--port', '70000']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected a port 0-65535, got '70000'/);
});
