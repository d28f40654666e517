// The compute engine: build ONNX graphs with static shapes, differentiate them, run them with onnxruntime-node.
//
//   const g = new Graph();
//   const x = g.input('image', [4, 3, 64, 64]);
//   const w = g.param('conv1/w', [16, 3, 3, 3], w0, { trainable: true });   // graph input; frozen -> initializer
//   const h = g.flatten(g.globalAveragePool(g.relu(g.conv(x, w, undefined, { strides: 2, pads: 1 }))));
//   const logits = g.gemm(h, g.param('fc/w', [5, 16], f0, { trainable: true }), undefined, { transB: true });
//   const loss = g.sigmoidCrossEntropy(logits, g.input('lesion', [4, 5]), g.input('lesionWeight', [4]), { name: 'loss' });
//   const train = buildTrainingGraph(g, [loss]);          // outputs: loss, grad/conv1/w, grad/fc/w
//   const s = await GraphSession.fromGraph(train, { training: true });
//   const out = await s.run({ image, lesion, lesionWeight, 'conv1/w': w0, 'fc/w': f0 });
//   out['grad/conv1/w'].data   // Float32Array, same layout as the param
export { Graph, type ConvOptions, type PoolOptions, type GemmOptions, type Param } from './builder.ts';
export { buildTrainingGraph, type Loss, type TrainingGraphOptions } from './autodiff.ts';
export { GraphSession, type Feed, type Fetched, type Preallocated, type RunOptions } from './runtime.ts';
export { Float32Arena } from './simd.ts';
export { serialize, readMetadata, readModelInputs, OPSET, type SerializeOptions } from './onnx.ts';
export type { Tensor, DType } from './types.ts';
