// Independent fp64 references written as plain loops: forward ops and their hand-derived backward passes.
// Nothing here shares code with src/graph; it exists so gradients are checked against something that is not
// ONNX and not autodiff.

export interface T {
  shape: number[];
  data: Float64Array;
}

export const tensor = (shape: number[], data?: ArrayLike<number>): T => {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = data ? Float64Array.from(data) : new Float64Array(n);
  if (d.length !== n) throw new Error(`reference tensor: ${d.length} values for [${shape}]`);
  return { shape: [...shape], data: d };
};

export interface Conv2d {
  strides: [number, number];
  pads: [number, number, number, number];
}

const outSize = (n: number, k: number, s: number, p0: number, p1: number) => Math.floor((n + p0 + p1 - k) / s) + 1;

/** y[n,m,oh,ow] = b[m] + sum_{c,i,j} x[n,c,oh*s+i-pt, ow*s+j-pl] w[m,c,i,j] (zero outside x). */
export function conv2d(x: T, w: T, b: T | undefined, o: Conv2d): T {
  const [N, C, H, W] = x.shape;
  const [M, , KH, KW] = w.shape;
  const HO = outSize(H, KH, o.strides[0], o.pads[0], o.pads[2]);
  const WO = outSize(W, KW, o.strides[1], o.pads[1], o.pads[3]);
  const y = tensor([N, M, HO, WO]);
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++)
      for (let oh = 0; oh < HO; oh++)
        for (let ow = 0; ow < WO; ow++) {
          let s = b ? b.data[m] : 0;
          for (let c = 0; c < C; c++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const h = oh * o.strides[0] + i - o.pads[0];
                const ww = ow * o.strides[1] + j - o.pads[1];
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                s += x.data[((n * C + c) * H + h) * W + ww] * w.data[((m * C + c) * KH + i) * KW + j];
              }
          y.data[((n * M + m) * HO + oh) * WO + ow] = s;
        }
  return y;
}

/** Backward of conv2d by scattering each dY element over the inputs and weights it touched. */
export function conv2dBackward(x: T, w: T, dY: T, o: Conv2d): { dx: T; dw: T; db: T } {
  const [N, C, H, W] = x.shape;
  const [M, , KH, KW] = w.shape;
  const [, , HO, WO] = dY.shape;
  const dx = tensor(x.shape);
  const dw = tensor(w.shape);
  const db = tensor([M]);
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++)
      for (let oh = 0; oh < HO; oh++)
        for (let ow = 0; ow < WO; ow++) {
          const g = dY.data[((n * M + m) * HO + oh) * WO + ow];
          db.data[m] += g;
          for (let c = 0; c < C; c++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const h = oh * o.strides[0] + i - o.pads[0];
                const ww = ow * o.strides[1] + j - o.pads[1];
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                const xi = ((n * C + c) * H + h) * W + ww;
                const wi = ((m * C + c) * KH + i) * KW + j;
                dx.data[xi] += g * w.data[wi];
                dw.data[wi] += g * x.data[xi];
              }
        }
  return { dx, dw, db };
}

export interface Pool {
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
}

/** Max over each window (padding never wins); argmax is the first maximum in row-major window order. */
export function maxPool(x: T, o: Pool): { y: T; argmax: Int32Array } {
  const [N, C, H, W] = x.shape;
  const HO = outSize(H, o.kernel[0], o.strides[0], o.pads[0], o.pads[2]);
  const WO = outSize(W, o.kernel[1], o.strides[1], o.pads[1], o.pads[3]);
  const y = tensor([N, C, HO, WO]);
  const argmax = new Int32Array(y.data.length);
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < HO; oh++)
      for (let ow = 0; ow < WO; ow++) {
        let best = -Infinity;
        let at = -1;
        for (let i = 0; i < o.kernel[0]; i++)
          for (let j = 0; j < o.kernel[1]; j++) {
            const h = oh * o.strides[0] + i - o.pads[0];
            const w = ow * o.strides[1] + j - o.pads[1];
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const xi = (nc * H + h) * W + w;
            if (x.data[xi] > best) {
              best = x.data[xi];
              at = xi;
            }
          }
        const yi = (nc * HO + oh) * WO + ow;
        y.data[yi] = best;
        argmax[yi] = at;
      }
  return { y, argmax };
}

/** Each dY element is added to its window's argmax (overlapping windows accumulate). */
export function maxPoolBackward(xShape: number[], argmax: Int32Array, dY: T): T {
  const dx = tensor(xShape);
  for (let i = 0; i < argmax.length; i++) dx.data[argmax[i]] += dY.data[i];
  return dx;
}

export function globalAveragePool(x: T): T {
  const [N, C, H, W] = x.shape;
  const y = tensor([N, C, 1, 1]);
  for (let nc = 0; nc < N * C; nc++) {
    let s = 0;
    for (let k = 0; k < H * W; k++) s += x.data[nc * H * W + k];
    y.data[nc] = s / (H * W);
  }
  return y;
}

export function globalAveragePoolBackward(xShape: number[], dY: T): T {
  const [, , H, W] = xShape;
  const dx = tensor(xShape);
  for (let k = 0; k < dx.data.length; k++) dx.data[k] = dY.data[Math.floor(k / (H * W))] / (H * W);
  return dx;
}

export function transpose2d(a: T): T {
  const [r, c] = a.shape;
  const t = tensor([c, r]);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t.data[j * r + i] = a.data[i * c + j];
  return t;
}

export function matMul(a: T, b: T): T {
  const [M, K] = a.shape;
  const [, N] = b.shape;
  const y = tensor([M, N]);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a.data[i * K + k] * b.data[k * N + j];
      y.data[i * N + j] = s;
    }
  return y;
}

export const scale = (a: T, s: number): T =>
  tensor(
    a.shape,
    a.data.map((v) => v * s),
  );

/** Element-wise binary op with numpy broadcasting. */
export function broadcastOp(a: T, b: T, f: (p: number, q: number) => number): T {
  const r = Math.max(a.shape.length, b.shape.length);
  const pa = [...new Array(r - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array(r - b.shape.length).fill(1), ...b.shape];
  const shape = pa.map((d, i) => Math.max(d, pb[i]));
  const y = tensor(shape);
  const idx = new Array(r).fill(0);
  for (let k = 0; k < y.data.length; k++) {
    let rem = k;
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax] = rem % shape[ax];
      rem = Math.floor(rem / shape[ax]);
    }
    let ia = 0;
    let ib = 0;
    for (let ax = 0; ax < r; ax++) {
      ia = ia * pa[ax] + (pa[ax] === 1 ? 0 : idx[ax]);
      ib = ib * pb[ax] + (pb[ax] === 1 ? 0 : idx[ax]);
    }
    y.data[k] = f(a.data[ia], b.data[ib]);
  }
  return y;
}

/** Sums a broadcast result back onto `shape` (the gradient of broadcasting). */
export function sumTo(g: T, shape: number[]): T {
  const r = g.shape.length;
  const p = [...new Array(r - shape.length).fill(1), ...shape];
  const out = tensor(shape);
  for (let k = 0; k < g.data.length; k++) {
    let rem = k;
    let io = 0;
    const idx = new Array(r);
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax] = rem % g.shape[ax];
      rem = Math.floor(rem / g.shape[ax]);
    }
    for (let ax = 0; ax < r; ax++) io = io * p[ax] + (p[ax] === 1 ? 0 : idx[ax]);
    out.data[io] += g.data[k];
  }
  return out;
}

export const map = (a: T, f: (v: number, i: number) => number): T => tensor(a.shape, a.data.map(f));

/** Softmax over the last axis of a 2-D or N-D tensor viewed as [rows, last]. */
export function softmaxLast(x: T): T {
  const k = x.shape[x.shape.length - 1];
  const y = tensor(x.shape);
  for (let r = 0; r < x.data.length / k; r++) {
    let mx = -Infinity;
    for (let j = 0; j < k; j++) mx = Math.max(mx, x.data[r * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(x.data[r * k + j] - mx);
    for (let j = 0; j < k; j++) y.data[r * k + j] = Math.exp(x.data[r * k + j] - mx) / s;
  }
  return y;
}

/** dX_j = sum_i dY_i dy_i/dx_j with dy_i/dx_j = y_i (delta_ij - y_j), as an explicit Jacobian product. */
export function softmaxLastBackward(y: T, dY: T): T {
  const k = y.shape[y.shape.length - 1];
  const dx = tensor(y.shape);
  for (let r = 0; r < y.data.length / k; r++)
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += dY.data[r * k + i] * y.data[r * k + i] * ((i === j ? 1 : 0) - y.data[r * k + j]);
      dx.data[r * k + j] = s;
    }
  return dx;
}

export const logSoftmaxLast = (x: T): T => map(softmaxLast(x), Math.log);

/** d log y_i / dx_j = delta_ij - softmax_j. */
export function logSoftmaxLastBackward(x: T, dY: T): T {
  const p = softmaxLast(x);
  const k = x.shape[x.shape.length - 1];
  const dx = tensor(x.shape);
  for (let r = 0; r < x.data.length / k; r++)
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += dY.data[r * k + i] * ((i === j ? 1 : 0) - p.data[r * k + j]);
      dx.data[r * k + j] = s;
    }
  return dx;
}

/** Concat along axis 1 of 2-D or 4-D tensors (row-major blocks). */
export function concat1(xs: T[]): T {
  const outer = xs[0].shape[0];
  const inner = xs[0].shape.slice(2).reduce((a, b) => a * b, 1);
  const shape = [...xs[0].shape];
  shape[1] = xs.reduce((s, t) => s + t.shape[1], 0);
  const y = tensor(shape);
  let off = 0;
  for (let n = 0; n < outer; n++)
    for (const t of xs) {
      const block = t.shape[1] * inner;
      y.data.set(t.data.subarray(n * block, (n + 1) * block), off);
      off += block;
    }
  return y;
}

const sig = (v: number) => 1 / (1 + Math.exp(-v));

/** Paper eq. 5: (1/N) sum_n w_n sum_l [-t log s(x) - (1-t) log(1 - s(x))], written in the naive form. */
export function sigmoidCrossEntropy(x: T, t: T, w?: T): { loss: number; dx: T } {
  const [N, L] = x.shape;
  let loss = 0;
  const dx = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    const wn = w ? w.data[n] : 1;
    for (let l = 0; l < L; l++) {
      const k = n * L + l;
      const v = x.data[k];
      // log s(v) and log(1-s(v)) = log s(-v), each via the stable log-sigmoid.
      const logSig = (u: number) => (u >= 0 ? -Math.log1p(Math.exp(-u)) : u - Math.log1p(Math.exp(u)));
      loss += wn * (-t.data[k] * logSig(v) - (1 - t.data[k]) * logSig(-v));
      dx.data[k] = (wn * (sig(v) - t.data[k])) / N;
    }
  }
  return { loss: loss / N, dx };
}

/** Paper eq. 7: -(1/N) sum_n w_n log softmax(x_n)[label_n]; out-of-range labels contribute nothing. */
export function softmaxCrossEntropy(x: T, labels: number[], w?: T): { loss: number; dx: T } {
  const [N, K] = x.shape;
  const p = softmaxLast(x);
  let loss = 0;
  const dx = tensor(x.shape);
  for (let n = 0; n < N; n++) {
    const lab = labels[n];
    if (lab < 0 || lab >= K) continue;
    const wn = w ? w.data[n] : 1;
    loss -= wn * Math.log(p.data[n * K + lab]);
    for (let k = 0; k < K; k++) dx.data[n * K + k] = (wn * (p.data[n * K + k] - (k === lab ? 1 : 0))) / N;
  }
  return { loss: loss / N, dx };
}

/** max |a - ref| / max |ref|: the error relative to the scale of the reference values. */
export function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) throw new Error(`relErr: ${a.length} vs ${ref.length} values`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return num / Math.max(den, 1e-30);
}
