// IEEE 754 half precision (binary16) for on-disk tensors: Node 20 has no Float16Array nor Math.f16round, so the
// conversion is done here on the raw bits. float32 -> float16 rounds to nearest, ties to even (as hardware does);
// overflow gives +-Infinity, NaN stays NaN; float16 -> float32 is exact (through a 65,536-entry table).

/** Half-precision bits of one number (rounded to nearest even). */
export function toHalf(x: number): number {
  SCRATCH_F32[0] = x;
  return halfBits(SCRATCH_U32[0]);
}

/** The number of half-precision bits `h` (exact). */
export function fromHalf(h: number): number {
  return halfTable()[h & 0xffff];
}

/** Encodes `src` into `dst` (same length). */
export function encodeHalf(src: Float32Array, dst: Uint16Array): void {
  if (dst.length !== src.length) throw new Error(`encodeHalf: ${src.length} values into ${dst.length}`);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) dst[i] = halfBits(bits[i]);
}

/** Decodes `src` into `dst` starting at `offset`. */
export function decodeHalf(src: Uint16Array, dst: Float32Array, offset = 0): void {
  if (offset + src.length > dst.length)
    throw new Error(`decodeHalf: ${src.length} values at ${offset} into ${dst.length}`);
  const t = halfTable();
  for (let i = 0; i < src.length; i++) dst[offset + i] = t[src[i]];
}

const SCRATCH_F32 = new Float32Array(1);
const SCRATCH_U32 = new Uint32Array(SCRATCH_F32.buffer);

/** float32 bits -> float16 bits. */
function halfBits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value / 2^-24, rounded; below 2^-25 it rounds to zero.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    return sign | roundShift(mant, shift);
  }
  // A carry out of the mantissa rightly bumps the exponent (up to Infinity).
  return sign | ((e << 10) + roundShift(mant, 13));
}

/** m >> shift, rounded to nearest, ties to even. */
function roundShift(m: number, shift: number): number {
  const h = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rem > half || (rem === half && h & 1) ? h + 1 : h;
}

let TABLE: Float32Array | null = null;

function halfTable(): Float32Array {
  if (TABLE) return TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? NaN : sign * Infinity;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  TABLE = t;
  return t;
}
