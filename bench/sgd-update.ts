// Manual speed check (not part of the test suite): one SGD-momentum update over ResNet-50-sized params
// (every conv with a folded-BN bias, fc 2048x1000: 25.5M values in 108 tensors), the gradient finite
// scan the trainer does before it, their WebAssembly SIMD versions (the Trainer's), and a three-pass (unfused)
// update for comparison.
// Run: node --import tsx bench/sgd-update.ts [repeats]
import { Float32Arena } from '../src/graph/simd.ts';
import { SgdMomentum, firstNonFinite } from '../src/train/optimizer.ts';
import { Rng } from '../src/util/rng.ts';

const REPEATS = Number(process.argv[2]) || 9;

function resnet50Shapes(): number[][] {
  const shapes: number[][] = [[64, 3, 7, 7], [64]];
  const conv = (cout: number, cin: number, k: number) => shapes.push([cout, cin, k, k], [cout]);
  let cin = 64;
  for (const [mid, blocks] of [
    [64, 3],
    [128, 4],
    [256, 6],
    [512, 3],
  ]) {
    for (let b = 0; b < blocks; b++) {
      conv(mid, cin, 1);
      conv(mid, mid, 3);
      conv(mid * 4, mid, 1);
      if (b === 0) conv(mid * 4, cin, 1);
      cin = mid * 4;
    }
  }
  shapes.push([1000, 2048], [1000]);
  return shapes;
}

const shapes = resnet50Shapes();
const specs = shapes.map((shape, i) => ({ name: `p${i}`, shape }));
const rng = Rng.seeded(1);
const fill = (n: number, s: number) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rng.float() - 0.5) * s;
  return a;
};
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const params = new Map(specs.map((p) => [p.name, fill(size(p.shape), 0.1)]));
const grads = Object.fromEntries(specs.map((p) => [p.name, fill(size(p.shape), 1e-3)]));
const total = specs.reduce((a, p) => a + size(p.shape), 0);
console.log(`${specs.length} tensors, ${(total / 1e6).toFixed(2)}M params`);

function median(label: string, fn: () => void): void {
  fn(); // warm-up (JIT, page faults on first touch of the momentum buffers)
  const ms: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  console.log(
    `${label}: median ${ms[ms.length >> 1].toFixed(1)} ms (min ${ms[0].toFixed(1)}, max ${ms[ms.length - 1].toFixed(1)}, ${REPEATS} runs)`,
  );
}

const opt = new SgdMomentum(specs, { lr: 1e-3 });
median('fused update (SgdMomentum.update)', () => opt.update(params, grads));
median('gradient finite scan (firstNonFinite)', () => {
  for (const g of Object.values(grads)) if (firstNonFinite(g) >= 0) throw new Error('not finite');
});
// The Trainer's layout: params, momentum and gradients in one WebAssembly arena (SIMD update and scan).
const arena = Float32Arena.create(3 * total, 3 * specs.length);
if (arena) {
  const copy = (v: Float32Array) => {
    const a = arena.alloc(v.length);
    a.set(v);
    return a;
  };
  const inArena = (m: Iterable<[string, Float32Array]>) => new Map([...m].map(([k, v]) => [k, copy(v)]));
  const aParams = inArena(params);
  const aGrads = inArena(Object.entries(grads));
  const simd = new SgdMomentum(specs, { lr: 1e-3 }, arena);
  median('SIMD update (SgdMomentum.update, arrays in a Float32Arena)', () => simd.update(aParams, aGrads));
  median('SIMD gradient finite scan (Float32Arena.hasNonFinite)', () => {
    for (const g of aGrads.values()) if (arena.hasNonFinite(g)) throw new Error('not finite');
  });
}
const velocity = specs.map((p) => new Float32Array(size(p.shape)));
median('unfused update (3 passes: decay, velocity, weights)', () => {
  specs.forEach((p, k) => {
    const w = params.get(p.name)!,
      g = grads[p.name],
      v = velocity[k];
    const d = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) d[i] = g[i] + 1e-4 * w[i];
    for (let i = 0; i < g.length; i++) v[i] = 0.9 * v[i] + 1e-3 * d[i];
    for (let i = 0; i < g.length; i++) w[i] -= v[i];
  });
});
