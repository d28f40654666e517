// The correctness bar: the pretrained ResNet-50 built by this engine (folded BN, ONNX, onnxruntime-node) with
// fc1000 re-attached gives the same softmax as the ORIGINAL Keras model run by TensorFlow.js, to 1e-4.
// Real weights (cache ~/.cache/dermtl, downloaded once); one image, to keep the test to seconds.
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caffeInputNhwc, loadTfjsReference, topK } from './tfjsReference.ts';
import { nhwcToNchw, openImageNetResNet50 } from './resnet50Fixture.ts';

// cat.jpg: the flattest distribution of the sample photos (top-1 ~28%), so logit errors show in the probabilities.
const CAT = new URL('../../../shared/images/imagenet-samples/cat.jpg', import.meta.url).pathname;

test('ResNet-50 on the dermtl engine == Keras ResNet50 in TF.js: softmax within 1e-4, avg_pool features within 1e-4 relative', async (t) => {
  if (!existsSync(CAT)) return t.skip(`${CAT} not found: parity test skipped`);
  const net = await openImageNetResNet50();
  if ('skip' in net) return t.skip(net.skip);
  const ref = await loadTfjsReference(net.folder);
  try {
    const nhwc = await caffeInputNhwc(CAT);
    const want = ref.predict(nhwc, 1);
    const out = await net.session.run({ image: { data: nhwcToNchw(nhwc, 1, 224, 224, 3), dims: [1, 3, 224, 224] } });
    const probs = out.imagenet_probs.data as Float32Array;
    const features = out.features.data as Float32Array;
    let dp = 0;
    for (let i = 0; i < 1000; i++) dp = Math.max(dp, Math.abs(probs[i] - want.probs[i]));
    let df = 0;
    let fmax = 0;
    for (let i = 0; i < 2048; i++) {
      df = Math.max(df, Math.abs(features[i] - want.features[i]));
      fmax = Math.max(fmax, Math.abs(want.features[i]));
    }
    const ours = topK(probs, 5);
    const theirs = topK(want.probs, 5);
    t.diagnostic(
      `tfjs ${ref.backend}; max |dp| = ${dp.toExponential(2)}, max |df| / max |f| = ${(df / fmax).toExponential(2)}; ` +
        `top-5 ${ours.map((c) => `${net.labels[c.index]} ${(c.p * 100).toFixed(2)}%`).join(', ')}`,
    );
    assert.ok(dp <= 1e-4, `softmax differs by ${dp}`);
    assert.ok(df / fmax <= 1e-4, `features differ by ${df} (max ${fmax})`);
    assert.deepEqual(
      ours.map((c) => c.index),
      theirs.map((c) => c.index),
    );
    assert.equal(net.labels[ours[0].index], 'red_fox'); // SOURCE.md: red_fox ~28-29% with this whole-image resize
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-4);
  } finally {
    ref.dispose();
    await net.session.release();
  }
});
