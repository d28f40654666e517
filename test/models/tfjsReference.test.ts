// Checks the TF.js reference run of the original Keras ResNet50 (the parity oracle for the ONNX network).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePretrainedResNet50, RegistryUnreachableError } from '../../src/models/pretrained.ts';
import { caffeInputNhwc, loadTfjsReference, nchwToNhwc, topK } from './tfjsReference.ts';

const EAGLE = new URL('../../../shared/images/imagenet-samples/eagle.jpg', import.meta.url).pathname;

test('tfjs reference: eagle.jpg is bald_eagle (~77-80%), kite second; softmax rows sum to 1', async (t) => {
  const image = await readFile(EAGLE).then(
    () => EAGLE,
    () => null,
  );
  if (!image) return t.skip('shared/images/imagenet-samples/eagle.jpg not available');
  let folder: string;
  try {
    folder = await ensurePretrainedResNet50();
  } catch (e) {
    if (e instanceof RegistryUnreachableError) return t.skip(e.message);
    throw e;
  }
  const labels: Record<string, string> = JSON.parse(await readFile(join(folder, 'imagenet_labels.json'), 'utf8'));
  const ref = await loadTfjsReference(folder);
  try {
    const x = await caffeInputNhwc(image);
    assert.equal(x.length, 224 * 224 * 3);
    const t0 = performance.now();
    const { probs, features } = ref.predict(x, 1);
    t.diagnostic(
      `${ref.backend}: load ${ref.loadSeconds.toFixed(2)} s, forward ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    const top = topK(probs, 2);
    assert.equal(labels[top[0].index], 'bald_eagle');
    assert.equal(top[0].index, 22);
    assert.ok(top[0].p > 0.7 && top[0].p < 0.85, `bald_eagle p=${top[0].p}`);
    assert.equal(labels[top[1].index], 'kite');
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    assert.equal(features.length, 2048);
    assert.ok(
      features.every((v) => v >= 0),
      'avg_pool of ReLU outputs is non-negative',
    );
  } finally {
    ref.dispose();
  }
});

test('nchwToNhwc moves channels last', () => {
  // n=1, c=2, h=1, w=3: planes [0,1,2] and [10,11,12]
  const x = new Float32Array([0, 1, 2, 10, 11, 12]);
  assert.deepEqual([...nchwToNhwc(x, 1, 2, 1, 3)], [0, 10, 1, 11, 2, 12]);
});
