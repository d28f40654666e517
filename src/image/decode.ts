import { readFile, stat } from 'node:fs/promises';
import sharp, { type KernelEnum, type Metadata } from 'sharp';
import { DermtlError } from '../util/errors.ts';
import { shorterSideSize } from './crops.ts';
import { DEFAULT_MAX_PIXELS } from './limits.ts';

export { DEFAULT_MAX_PIXELS };

/** A decoded image: 8-bit sRGB, 3 interleaved channels (R,G,B), rows top to bottom (HWC). */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** Refuse images whose width x height (or resized size) exceeds this (default 50 megapixels). */
  maxPixels?: number;
  /** Resize so the shorter side is exactly this many pixels (longer side rounded to nearest). */
  shorterSide?: number;
  /** libvips resampling kernel used by the resize (default lanczos3, sharp's default). */
  kernel?: keyof KernelEnum;
  /** Colour transparent pixels are flattened onto (default white). */
  background?: readonly [number, number, number];
  /** Name used in error messages when the input is a Buffer. */
  name?: string;
}

/** Input given as a path or as the file's bytes. */
export type ImageInput = string | Uint8Array;

/**
 * Decodes a JPEG/PNG/WebP/(anything sharp reads) into 8-bit sRGB RGB, applying the EXIF orientation,
 * flattening alpha onto `background` (white by default) and converting greyscale, CMYK and 16-bit images.
 * The header is read first so that huge images and decompression bombs are refused before any pixel
 * is decoded. Every problem with the input is a DermtlError naming the file.
 */
export async function decodeImage(input: ImageInput, opts: DecodeOptions = {}): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : (opts.name ?? '<image buffer>');
  const bytes = await readInput(input, name);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const { width, height } = await orientedSize(bytes, name, maxPixels);
  const target = opts.shorterSide ? shorterSideSize(width, height, opts.shorterSide) : { width, height };
  if (target.width * target.height > maxPixels) {
    throw new DermtlError(
      `${name}: resizing ${width}x${height} to a shorter side of ${opts.shorterSide} gives ` +
        `${target.width}x${target.height}, more than the limit of ${maxPixels} pixels (aspect ratio too extreme)`,
    );
  }
  const [r, g, b] = opts.background ?? [255, 255, 255];
  let pipeline = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
    .rotate() // EXIF orientation; libvips applies it before the resize below
    .flatten({ background: { r, g, b } })
    .toColourspace('srgb');
  if (opts.shorterSide) {
    pipeline = pipeline.resize({ width: target.width, height: target.height, fit: 'fill', kernel: opts.kernel });
  }
  try {
    const { data, info } = await pipeline.removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    throw new DermtlError(`${name}: cannot decode image (${messageOf(e)}); the file may be truncated or corrupt`);
  }
}

async function readInput(input: ImageInput, name: string): Promise<Buffer> {
  if (typeof input !== 'string') {
    if (input.length === 0) throw new DermtlError(`${name}: empty image data`);
    return Buffer.from(input.buffer, input.byteOffset, input.length);
  }
  let size: number;
  try {
    const s = await stat(input);
    if (!s.isFile()) throw new DermtlError(`${name}: not a file`);
    size = s.size;
  } catch (e) {
    if (e instanceof DermtlError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new DermtlError(
      code === 'ENOENT' ? `${name}: image file not found` : `${name}: cannot read (${messageOf(e)})`,
    );
  }
  if (size === 0) throw new DermtlError(`${name}: image file is empty`);
  try {
    return await readFile(input);
  } catch (e) {
    throw new DermtlError(`${name}: cannot read (${messageOf(e)})`);
  }
}

/** Reads only the header: dimensions after EXIF orientation, checked against the pixel limit. */
async function orientedSize(
  bytes: Buffer,
  name: string,
  maxPixels: number,
): Promise<{ width: number; height: number }> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new DermtlError(`${name}: not a readable image (${messageOf(e)})`);
  }
  if (!meta.width || !meta.height) throw new DermtlError(`${name}: image has no dimensions (format ${meta.format})`);
  if (meta.width * meta.height > maxPixels) {
    throw new DermtlError(
      `${name}: image is ${meta.width}x${meta.height} (${((meta.width * meta.height) / 1e6).toFixed(1)} megapixels), ` +
        `more than the limit of ${maxPixels} pixels; refusing to decode it`,
    );
  }
  return meta.autoOrient ?? { width: meta.width, height: meta.height };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
