// WebAssembly SIMD kernels for the float32 work that runs outside the ORT graph on every training step: the
// SGD-momentum update and the finite scan of the gradients. V8's scalar code does the update at ~12 GB/s; these
// kernels move 4 values per instruction. They work on arrays inside one WebAssembly.Memory (a Float32Arena),
// so the trainer keeps its params, momentum buffers and gradient buffers there; any other array takes the plain
// JS path. The module is generated below, instruction by instruction, from this readable source (no binary
// blob, no assembler): each emitted opcode is named in the code that emits it.
//
// Exactness: the update computes v' = fround(mu*v + rate*(g + decay*w)) in float64 lanes (f64x2), in the same
// operation order as the JS kernel, and w' = w - v' in float32 lanes. A float32 sum/difference computed in
// float64 and then rounded equals the float32 operation (53 >= 2*24 + 2 bits), so results are bit-identical
// to the JS kernel.

// ------------------------------------------------------------------------------------------------ encoding

/** Unsigned LEB128 (section sizes, counts, indices, SIMD sub-opcodes). */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Signed LEB128 (i32.const immediates). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

const I32 = 0x7f,
  F64 = 0x7c,
  V128 = 0x7b;

/** The instructions the kernels use (core opcodes, and 0xFD-prefixed SIMD ones with LEB128 sub-opcodes). */
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (l: number) => [0x0c, ...uleb(l)],
  brIf: (l: number) => [0x0d, ...uleb(l)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  i32Const: (v: number) => [0x41, ...sleb(v)],
  i32Add: [0x6a],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  // memarg: alignment exponent 0 (the arrays may be any multiple of 4 bytes apart), offset 0
  v128Load: [0xfd, ...uleb(0x00), 0, 0],
  v128Store: [0xfd, ...uleb(0x0b), 0, 0],
  shuffle: (lanes: number[]) => [0xfd, ...uleb(0x0d), ...lanes],
  f64x2Splat: [0xfd, ...uleb(0x14)],
  f32x4Ne: [0xfd, ...uleb(0x42)],
  v128AnyTrue: [0xfd, ...uleb(0x53)],
  demote: [0xfd, ...uleb(0x5e)],
  promoteLow: [0xfd, ...uleb(0x5f)],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Sub: [0xfd, ...uleb(0xe5)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
  f64x2Add: [0xfd, ...uleb(0xf0)],
  f64x2Mul: [0xfd, ...uleb(0xf2)],
};
const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);
/** Bytes 8..15 of a vector moved to 0..7, so promoteLow converts the upper two floats. */
const HIGH_HALF = [...range(8, 8), ...range(8, 8)];
/** The two float32 pairs of two demoted vectors side by side: [a0, a1, b0, b1]. */
const JOIN_PAIRS = [...range(0, 8), ...range(16, 8)];

/**
 * sgd(w, v, g, groups, mu, rate, decay): for `groups` runs of 4 floats at byte addresses w, v, g:
 * v = fround(mu*v + rate*(g + decay*w)); w = w - v.
 */
function sgdBody(): number[] {
  const [W, V, G, GROUPS, MU, RATE, DECAY] = [0, 1, 2, 3, 4, 5, 6];
  const [END, MU2, RATE2, DECAY2, WV, VV, GV, LO, HI] = [7, 8, 9, 10, 11, 12, 13, 14, 15];
  // One f64x2 half of v': mu*v + rate*(g + decay*w), with `pick` selecting the low or high two lanes.
  const half = (pick: (local: number) => number[]) => [
    ...op.get(MU2),
    ...pick(VV),
    ...op.f64x2Mul,
    ...op.get(RATE2),
    ...pick(GV),
    ...op.get(DECAY2),
    ...pick(WV),
    ...op.f64x2Mul,
    ...op.f64x2Add,
    ...op.f64x2Mul,
    ...op.f64x2Add,
  ];
  const low = (l: number) => [...op.get(l), ...op.promoteLow];
  const high = (l: number) => [...op.get(l), ...op.get(l), ...op.shuffle(HIGH_HALF), ...op.promoteLow];
  const advance = (l: number) => [...op.get(l), ...op.i32Const(16), ...op.i32Add, ...op.set(l)];
  const code = [
    ...op.get(W),
    ...op.get(GROUPS),
    ...op.i32Const(4),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(END),
    ...op.get(MU),
    ...op.f64x2Splat,
    ...op.set(MU2),
    ...op.get(RATE),
    ...op.f64x2Splat,
    ...op.set(RATE2),
    ...op.get(DECAY),
    ...op.f64x2Splat,
    ...op.set(DECAY2),
    ...op.block,
    ...op.loop,
    ...op.get(W),
    ...op.get(END),
    ...op.i32GeU,
    ...op.brIf(1),
    ...op.get(W),
    ...op.v128Load,
    ...op.set(WV),
    ...op.get(V),
    ...op.v128Load,
    ...op.set(VV),
    ...op.get(G),
    ...op.v128Load,
    ...op.set(GV),
    ...half(low),
    ...op.set(LO),
    ...half(high),
    ...op.set(HI),
    ...op.get(LO),
    ...op.demote,
    ...op.get(HI),
    ...op.demote,
    ...op.shuffle(JOIN_PAIRS),
    ...op.set(VV),
    ...op.get(V),
    ...op.get(VV),
    ...op.v128Store,
    ...op.get(W),
    ...op.get(WV),
    ...op.get(VV),
    ...op.f32x4Sub,
    ...op.v128Store,
    ...advance(W),
    ...advance(V),
    ...advance(G),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
  return [
    ...vec([
      [1, I32],
      [8, V128],
    ]),
    ...code,
    ...op.end,
  ];
}

/**
 * nonFinite(p, blocks) -> i32: 1 when one of `blocks` runs of 16 floats at byte address p is NaN or +-Inf.
 * x * 0 is NaN exactly for those; four independent sums of them keep the loop at memory speed.
 */
function nonFiniteBody(): number[] {
  const [P, BLOCKS] = [0, 1];
  const [END, A0, A1, A2, A3, ZERO] = [2, 3, 4, 5, 6, 7];
  const acc = (a: number, offset: number) => [
    ...op.get(a),
    ...op.get(P),
    ...(offset ? [...op.i32Const(offset), ...op.i32Add] : []),
    ...op.v128Load,
    ...op.get(ZERO),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...op.set(a),
  ];
  const code = [
    ...op.get(P),
    ...op.get(BLOCKS),
    ...op.i32Const(6),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.set(END),
    ...op.block,
    ...op.loop,
    ...op.get(P),
    ...op.get(END),
    ...op.i32GeU,
    ...op.brIf(1),
    ...acc(A0, 0),
    ...acc(A1, 16),
    ...acc(A2, 32),
    ...acc(A3, 48),
    ...op.get(P),
    ...op.i32Const(64),
    ...op.i32Add,
    ...op.set(P),
    ...op.br(0),
    ...op.end,
    ...op.end,
    // (a0 + a1) + (a2 + a3) != itself exactly when some lane is NaN
    ...op.get(A0),
    ...op.get(A1),
    ...op.f32x4Add,
    ...op.get(A2),
    ...op.get(A3),
    ...op.f32x4Add,
    ...op.f32x4Add,
    ...op.set(A0),
    ...op.get(A0),
    ...op.get(A0),
    ...op.f32x4Ne,
    ...op.v128AnyTrue,
  ];
  // locals are zero-initialised, so ZERO and the accumulators start at +0
  return [
    ...vec([
      [1, I32],
      [5, V128],
    ]),
    ...code,
    ...op.end,
  ];
}

/** The module: imports env.memory, exports sgd and nonFinite. */
export function kernelModuleBytes(): Uint8Array<ArrayBuffer> {
  const types = vec([
    [0x60, ...vec([[I32], [I32], [I32], [I32], [F64], [F64], [F64]]), ...vec([])],
    [0x60, ...vec([[I32], [I32]]), ...vec([[I32]])],
  ]);
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(0)]]);
  const funcs = vec([uleb(0), uleb(1)]);
  const exports = vec([
    [...name('sgd'), 0x00, 0],
    [...name('nonFinite'), 0x00, 1],
  ]);
  const bodies = [sgdBody(), nonFiniteBody()].map((b) => [...uleb(b.length), ...b]);
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, vec(bodies)),
  ]);
}

// ------------------------------------------------------------------------------------------------ runtime

interface Kernels {
  sgd(w: number, v: number, g: number, groups: number, mu: number, rate: number, decay: number): void;
  nonFinite(p: number, blocks: number): number;
}

let compiled: WebAssembly.Module | null | undefined;
/** The compiled module, or null where this engine has no WebAssembly SIMD (then everything runs in JS). */
function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = kernelModuleBytes();
    compiled = typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

const PAGE = 65536;
/** 4 GiB, the most a 32-bit WebAssembly memory can address. */
const MAX_PAGES = 65536;

/**
 * float32 arrays carved out of one WebAssembly.Memory of fixed size (growing it would detach every array
 * handed out), 16-byte aligned, with the SIMD kernels bound to it. `create` returns undefined where there is
 * no WebAssembly SIMD; callers then use plain Float32Arrays.
 */
export class Float32Arena {
  private used = 0;

  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly kernels: Kernels,
  ) {}

  /**
   * An arena with room for `floats` values (plus alignment padding of 3 per array), or undefined: no
   * WebAssembly SIMD here, more than a 32-bit memory holds (~1G floats), or the engine refused the memory.
   */
  static create(floats: number, arrays: number): Float32Arena | undefined {
    const module = kernelModule();
    const pages = Math.max(1, Math.ceil((4 * (floats + 3 * arrays)) / PAGE));
    if (!module || pages > MAX_PAGES) return undefined;
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages });
    } catch {
      return undefined;
    }
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    return new Float32Arena(memory, instance.exports as unknown as Kernels);
  }

  /** A zero-filled array of n floats inside the arena. */
  alloc(n: number): Float32Array {
    const at = (this.used + 15) & ~15;
    if (at + 4 * n > this.memory.buffer.byteLength) throw new Error(`Float32Arena: no room for ${n} more floats`);
    this.used = at + 4 * n;
    return new Float32Array(this.memory.buffer, at, n);
  }

  /** Whether `a` lives in this arena (so the kernels can address it). */
  owns(a: Float32Array): boolean {
    return a.buffer === this.memory.buffer;
  }

  /**
   * The SGD-momentum update of one param in place (see sgdKernel in train/optimizer.ts for the formula). All
   * three arrays must be in the arena and equally long.
   */
  sgd(w: Float32Array, v: Float32Array, g: Float32Array, mu: number, rate: number, decay: number): void {
    const groups = w.length >> 2;
    if (groups) this.kernels.sgd(w.byteOffset, v.byteOffset, g.byteOffset, groups, mu, rate, decay);
    for (let i = groups << 2; i < w.length; i++) {
      const vi = Math.fround(mu * v[i] + rate * (g[i] + decay * w[i]));
      v[i] = vi;
      w[i] -= vi;
    }
  }

  /** Whether any value of `a` (in the arena) is NaN or +-Inf. */
  hasNonFinite(a: Float32Array): boolean {
    const blocks = a.length >> 4;
    if (blocks && this.kernels.nonFinite(a.byteOffset, blocks)) return true;
    let s = 0;
    for (let i = blocks << 4; i < a.length; i++) s += a[i] * 0;
    return s !== 0;
  }
}
