/**
 * Multiply-adds per image, counted from a built model's layers (convolutions, depthwise and separable convolutions,
 * dense layers), the convention papers and Keras's docs quote ("MACs"). Batch norm, activations, pooling and
 * element-wise merges are left out: they are a rounding error next to the convolutions.
 */
import * as tf from '@tensorflow/tfjs';
import { constructModel } from './build';
import { ArchitectureSpec } from './spec';

const size = (dims: ReadonlyArray<number | null>) => dims.reduce<number>((a, b) => a * (b ?? 1), 1);

/** Multiply-adds one layer spends per image. */
function layerMacs(layer: tf.layers.Layer): number {
  const cls = layer.getClassName();
  const out = (Array.isArray(layer.outputShape[0]) ? layer.outputShape[0] : layer.outputShape) as Array<number | null>;
  const outPixels = size(out.slice(1, -1));
  const kernels = layer.weights.map((w) => w.shape as number[]);
  switch (cls) {
    case 'Conv2D': {
      const [kh, kw, cin, cout] = kernels[0];
      return outPixels * kh * kw * cin * cout;
    }
    case 'DepthwiseConv2D': {
      const [kh, kw, cin, mult] = kernels[0];
      return outPixels * kh * kw * cin * mult;
    }
    case 'SeparableConv2D': {
      const [kh, kw, cin, mult] = kernels[0];
      const cout = kernels[1][3];
      return outPixels * (kh * kw * cin * mult + cin * mult * cout);
    }
    case 'Dense': {
      const [units, inputs] = [kernels[0][1], kernels[0][0]];
      return size(out.slice(1, -1)) * inputs * units;
    }
    default:
      return 0;
  }
}

/** Multiply-adds per image of a built model. */
export function countMacs(model: tf.LayersModel): number {
  return model.layers.reduce((n, l) => n + layerMacs(l), 0);
}

/**
 * Multiply-adds per image of an architecture with its Keras top at `inputSize` (default: its default size), counted
 * over a model built with zero weights and disposed again.
 */
export function architectureMacs(spec: ArchitectureSpec, inputSize = spec.defaultInputSize): number {
  const channels = spec.name === 'simple_cnn' ? 1 : 3;
  const { model } = constructModel({ arch: spec.name, inputShape: [inputSize, inputSize, channels] }, { initializer: 'zeros' });
  try {
    return countMacs(model);
  } finally {
    model.dispose();
  }
}
