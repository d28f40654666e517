// Synthetic images for the image-pipeline tests, written with sharp into a temp dir.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';

export const DERM7PT = new URL('../../../shared/datasets/derm7pt/images/', import.meta.url).pathname;
export const IMAGENET = new URL('../../../shared/images/imagenet-samples/', import.meta.url).pathname;
/** Tests on the real photos of ../shared skip with this message where that folder is absent (a plain clone). */
export const NO_REAL_PHOTOS =
  existsSync(join(DERM7PT, 'NEL/NEL025.JPG')) && existsSync(join(IMAGENET, 'dog.jpg'))
    ? false
    : `real photos not found under ${DERM7PT} / ${IMAGENET}: real-photo tests skipped`;

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'dermtl-image-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * An asymmetric RGB test pattern in which every pixel names its own position:
 * R = x mod 256, G = y mod 256, B = 7*floor(x/256) + 13*floor(y/256) + 1.
 */
export function patternPixel(x: number, y: number): [number, number, number] {
  return [x % 256, y % 256, 7 * Math.floor(x / 256) + 13 * Math.floor(y / 256) + 1];
}

export function patternRaw(width: number, height: number): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(patternPixel(x, y), (y * width + x) * 3);
  }
  return raw;
}

/** The pattern as a lossless PNG. */
export function patternPng(width: number, height: number): Promise<Buffer> {
  return sharp(patternRaw(width, height), { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

export function solid(width: number, height: number, rgb: [number, number, number]) {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
}

/** A PNG whose header declares width x height pixels but whose data is a few bytes: a decompression bomb. */
export function pngBomb(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(65536))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A real 16x16 JPEG whose frame header (SOF0) is patched to claim width x height. */
export async function jpegClaiming(width: number, height: number): Promise<Buffer> {
  const jpg = Buffer.from(await solid(16, 16, [128, 128, 128]).jpeg().toBuffer());
  const sof = jpg.indexOf(Buffer.from([0xff, 0xc0]));
  if (sof < 0) throw new Error('no SOF0 marker');
  jpg.writeUInt16BE(height, sof + 5);
  jpg.writeUInt16BE(width, sof + 7);
  return jpg;
}
