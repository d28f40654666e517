// The compute engine: build ONNX graphs with static shapes, differentiate them, run them with onnxruntime-node.
export { Graph, type ConvOptions, type PoolOptions, type GemmOptions, type Param } from './builder.ts';
export { buildTrainingGraph, type Loss, type TrainingGraphOptions } from './autodiff.ts';
export { GraphSession, type Feed, type Fetched, type RunOptions } from './runtime.ts';
export { serialize, readMetadata, readModelInputs, OPSET, type SerializeOptions } from './onnx.ts';
export type { Tensor, DType } from './types.ts';
