/**
 * Small tfjs models for the ONNX tests that between them use every layer the exporter converts, at odd sizes and
 * with stride-2 'same' padding on even sizes (the asymmetric case), with random weights, biases and
 * batch-normalization statistics so no converter can pass by multiplying with ones or adding zeros.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../../src/util/rng';

type T = tf.SymbolicTensor;
const L = tf.layers;

/**
 * Replaces the weights of `model` with seeded random values (variances positive, as a trained BN's are). With
 * `kernels: false` only vectors (biases, BN parameters and statistics) change, which is much faster for big models
 * whose random initial kernels already serve.
 */
export function randomizeWeights(model: tf.LayersModel, seed: number, options: { kernels?: boolean } = {}): void {
  const rng = createRng(seed);
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (!ws.length) continue;
    const fresh = tf.tidy(() =>
      layer.weights.map((v, i) => {
        if (options.kernels === false && ws[i].rank > 1) return ws[i].clone();
        const n = ws[i].size;
        const values = new Float32Array(n);
        const variance = v.originalName.endsWith('moving_variance');
        const fanIn = ws[i].shape.length >= 2 ? ws[i].shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
        const scale = variance ? 0 : ws[i].shape.length >= 2 ? 1.5 / Math.sqrt(fanIn) : 0.5;
        for (let j = 0; j < n; j++) values[j] = variance ? 0.5 + rng.next() : (rng.next() * 2 - 1) * scale;
        if (v.originalName.endsWith('gamma')) for (let j = 0; j < n; j++) values[j] += 1;
        return tf.tensor(values, ws[i].shape);
      }),
    );
    layer.setWeights(fresh);
    tf.dispose(fresh);
  }
}

/** Convolutions of every kind, padding, BN, pooling, merges and activation layers on a 13x11 input; Flatten head. */
export function convZoo(): tf.LayersModel {
  const input = tf.input({ shape: [13, 11, 3], name: 'image' });
  let x = L.rescaling({ scale: 1 / 127.5, offset: -1, name: 'rescale' }).apply(input) as T;
  x = L.zeroPadding2d({ padding: [[1, 2], [0, 1]], name: 'pad' }).apply(x) as T; // 16 x 12: even, for stride 2
  x = L.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'conv1' }).apply(x) as T; // 8 x 6
  x = L.batchNormalization({ name: 'bn1', epsilon: 1.001e-5 }).apply(x) as T;
  x = L.activation({ activation: 'relu6', name: 'act1' }).apply(x) as T;
  let a = L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: false, name: 'dw' }).apply(x) as T;
  a = L.batchNormalization({ name: 'bn_dw', center: false }).apply(a) as T;
  a = L.activation({ activation: 'swish', name: 'act_dw' }).apply(a) as T;
  a = L.conv2d({ filters: 6, kernelSize: 1, useBias: false, name: 'project' }).apply(a) as T;
  a = L.batchNormalization({ name: 'bn_project', scale: false }).apply(a) as T;
  x = L.add({ name: 'residual' }).apply([x, a]) as T;
  const b1 = L.separableConv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'elu', name: 'sep' }).apply(x) as T; // 4 x 3
  const b2 = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'maxpool' }).apply(x) as T;
  const b3 = L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'avgpool' }).apply(x) as T;
  x = L.concatenate({ name: 'concat' }).apply([b1, b2, b3]) as T; // 4 x 3 x 17
  x = L.leakyReLU({ alpha: 0.2, name: 'leaky' }).apply(x) as T;
  x = L.conv2d({ filters: 4, kernelSize: 2, dilationRate: 2, padding: 'same', activation: 'selu', name: 'dilated' }).apply(x) as T;
  x = L.reLU({ maxValue: 1.5, name: 'relu_cap' }).apply(x) as T;
  x = L.elu({ name: 'elu' }).apply(x) as T;
  const m = L.multiply({ name: 'mul' }).apply([x, L.activation({ activation: 'sigmoid', name: 'gate' }).apply(x) as T]) as T;
  x = L.maximum({ name: 'max' }).apply([x, m]) as T;
  x = L.averagePooling2d({ poolSize: 2, padding: 'valid', name: 'avgvalid' }).apply(x) as T; // 2 x 1
  x = L.conv2d({ filters: 7, kernelSize: [2, 1], padding: 'valid', activation: 'tanh', name: 'valid' }).apply(x) as T; // 1 x 1
  x = L.flatten({ name: 'flatten' }).apply(x) as T;
  x = L.dense({ units: 8, activation: 'relu', name: 'fc1' }).apply(x) as T;
  x = L.dropout({ rate: 0.5, name: 'drop' }).apply(x) as T;
  x = L.batchNormalization({ name: 'bn_fc' }).apply(x) as T;
  const out = L.dense({ units: 4, activation: 'softmax', name: 'predictions' }).apply(x) as T;
  return tf.model({ inputs: input, outputs: out, name: 'conv_zoo' });
}

/** Flatten over a real feature map (where NHWC order matters), Reshape, cropping and the remaining activations. */
export function flattenHead(): tf.LayersModel {
  const input = tf.input({ shape: [10, 9, 2], name: 'pixels' });
  let x = L.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'softplus', name: 'c1' }).apply(input) as T; // 5 x 5
  x = L.cropping2D({ cropping: [[1, 0], [0, 2]], name: 'crop' }).apply(x) as T; // 4 x 3
  x = L.activation({ activation: 'mish', name: 'mish' }).apply(x) as T;
  const g = L.globalMaxPooling2d({ name: 'gmax' }).apply(x) as T;
  const gelu = L.activation({ activation: 'gelu', name: 'gelu' }).apply(x) as T;
  const soft = L.softmax({ axis: -1, name: 'chan_softmax' }).apply(gelu) as T;
  let f = L.flatten({ name: 'flat' }).apply(soft) as T; // 60, NHWC order
  f = L.reshape({ targetShape: [12, 5], name: 'reshape' }).apply(f) as T;
  f = L.dense({ units: 3, activation: 'hardSigmoid', name: 'per_row' }).apply(f) as T; // Dense on rank 3
  f = L.flatten({ name: 'flat2' }).apply(f) as T;
  // Zero padding then a max pool over negative values: the pool must see the zeros (onnxruntime's PadFusion would not).
  let padded = L.conv2d({ filters: 3, kernelSize: 1, name: 'signed', biasInitializer: 'zeros' }).apply(x) as T;
  padded = L.zeroPadding2d({ padding: 1, name: 'pool_pad' }).apply(padded) as T;
  padded = L.maxPooling2d({ poolSize: 3, strides: 2, name: 'padded_pool' }).apply(padded) as T;
  const gpad = L.globalAveragePooling2d({ name: 'gpad' }).apply(padded) as T;
  const gap = L.globalAveragePooling2d({ name: 'gap' }).apply(L.activation({ activation: 'gelu_new', name: 'gelu_new' }).apply(x) as T) as T;
  x = L.concatenate({ name: 'features' }).apply([f, g, gap, gpad]) as T;
  x = L.dense({ units: 6, activation: 'softsign', name: 'fc' }).apply(x) as T;
  const out = L.dense({ units: 2, activation: 'sigmoid', name: 'out' }).apply(x) as T;
  return tf.model({ inputs: input, outputs: out, name: 'flatten_head' });
}

/** A Sequential model (its topology has no inbound nodes) with a 4D output, exported NHWC. */
export function sequentialFeatures(): tf.Sequential {
  return tf.sequential({
    name: 'seq',
    layers: [
      L.conv2d({ inputShape: [9, 8, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 's1' }),
      L.batchNormalization({ name: 'sbn' }),
      L.activation({ activation: 'relu', name: 'srelu' }),
      L.maxPooling2d({ poolSize: 2, strides: 1, padding: 'same', name: 'spool' }),
    ],
  });
}

/** Largest absolute difference relative to the largest absolute reference value. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-12);
}
