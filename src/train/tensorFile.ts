// A compact binary file of named float32 tensors with a JSON header, used for parameters and optimizer
// state. Layout (little-endian):
//   bytes 0..7    magic "DERMTLT1"
//   bytes 8..11   u32 byte length H of the JSON header
//   bytes 12..    the header, UTF-8 JSON { tensors: [{ name, shape }], meta }, padded with spaces so the
//                 data starts at a multiple of 4
//   then          each tensor's float32 values, in header order, back to back
// The header fixes the file's exact size, so a truncated or padded file is refused on reading.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { DermtlError } from '../util/errors.ts';
import { numel, shapeStr } from '../graph/types.ts';

export interface NamedTensor {
  name: string;
  shape: readonly number[];
  data: Float32Array;
}

const MAGIC = 'DERMTLT1';
const PREFIX = MAGIC.length + 4;

function requireLittleEndian(): void {
  // Float32Array uses the host byte order; every platform Node ships on is little-endian, but say so if not.
  if (os.endianness() !== 'LE') throw new Error('dermtl tensor files need a little-endian host');
}

/** Encodes tensors and a JSON-serialisable `meta` into one buffer (copies the data once). */
export function encodeTensors(tensors: readonly NamedTensor[], meta: unknown = null): Uint8Array {
  requireLittleEndian();
  for (const t of tensors) {
    if (t.data.length !== numel(t.shape))
      throw new Error(
        `tensor ${t.name}: shape ${shapeStr(t.shape)} needs ${numel(t.shape)} values, got ${t.data.length}`,
      );
  }
  let header = Buffer.from(
    JSON.stringify({ tensors: tensors.map((t) => ({ name: t.name, shape: t.shape })), meta }),
    'utf8',
  );
  const pad = (4 - ((PREFIX + header.length) % 4)) % 4;
  if (pad) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  const dataStart = PREFIX + header.length;
  const out = Buffer.allocUnsafe(dataStart + tensors.reduce((s, t) => s + t.data.byteLength, 0));
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(header.length, MAGIC.length);
  header.copy(out, PREFIX);
  let at = dataStart;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Decodes a tensor file; `label` (usually the path) names the file in every error. Tensors own their data. */
export function decodeTensors(bytes: Uint8Array, label: string): { tensors: NamedTensor[]; meta: unknown } {
  requireLittleEndian();
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < PREFIX || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new DermtlError(
      `${label}: not a dermtl tensor file (bad magic bytes${buf.length < PREFIX ? '; file too short' : ''})`,
    );
  }
  const headerLen = buf.readUInt32LE(MAGIC.length);
  if (PREFIX + headerLen > buf.length)
    throw new DermtlError(`${label}: truncated (header says ${headerLen} header bytes, file has ${buf.length} bytes)`);
  const header = parseHeader(buf.toString('utf8', PREFIX, PREFIX + headerLen), label);
  const dataStart = PREFIX + headerLen;
  const expected = dataStart + 4 * header.tensors.reduce((s, t) => s + numel(t.shape), 0);
  if (buf.length !== expected) {
    throw new DermtlError(
      `${label}: ${buf.length < expected ? 'truncated' : 'has trailing bytes'}: expected ${expected} bytes, got ${buf.length}`,
    );
  }
  let at = dataStart;
  const tensors = header.tensors.map(({ name, shape }) => {
    const data = new Float32Array(numel(shape));
    new Uint8Array(data.buffer).set(buf.subarray(at, at + data.byteLength)); // a copy: aligned and owned
    at += data.byteLength;
    return { name, shape, data };
  });
  return { tensors, meta: header.meta };
}

export async function readTensorFile(path: string): Promise<{ tensors: NamedTensor[]; meta: unknown }> {
  return decodeTensors(await readNamed(path), path);
}

/** readFile with a DermtlError that names the file (and says plainly when it is missing). */
export async function readNamed(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new DermtlError(
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file is missing' : (e as Error).message}`,
    );
  }
}

function parseHeader(text: string, label: string): { tensors: { name: string; shape: number[] }[]; meta: unknown } {
  let h: unknown;
  try {
    h = JSON.parse(text);
  } catch {
    throw new DermtlError(`${label}: corrupt header (not JSON)`);
  }
  const tensors = (h as { tensors?: unknown })?.tensors;
  const ok =
    Array.isArray(tensors) &&
    tensors.every(
      (t) =>
        typeof t?.name === 'string' &&
        Array.isArray(t.shape) &&
        t.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0),
    );
  if (!ok) throw new DermtlError(`${label}: corrupt header (tensors must be a list of { name, shape })`);
  return { tensors, meta: (h as { meta?: unknown }).meta ?? null };
}
