import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { liveCounts, randomValues, relativeError, valuesOn } from './helpers/compare-backends';

/** Small models covering every layer kind whose gradient needs graft's wasm kernels. */
const MODELS: Record<string, () => tf.LayersModel> = {
  conv: () =>
    tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [9, 9, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
        tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu' }),
        tf.layers.conv2d({ filters: 5, kernelSize: 1, strides: 2, padding: 'same' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    }),
  separable: () =>
    tf.sequential({
      layers: [
        tf.layers.separableConv2d({ inputShape: [8, 7, 3], filters: 4, kernelSize: 3, padding: 'same', depthMultiplier: 2 }),
        tf.layers.separableConv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
        tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'valid' }),
        tf.layers.globalAveragePooling2d({}),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    }),
  batchnorm: () =>
    tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, padding: 'same', useBias: false }),
        tf.layers.batchNormalization({}),
        tf.layers.activation({ activation: 'relu' }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }),
        tf.layers.globalAveragePooling2d({}),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    }),
  // DenseNet: BN-ReLU-conv bottleneck concatenated onto its input, then a transition's 2x2 average pool.
  denseBlock: () => {
    const input = tf.input({ shape: [8, 8, 4] });
    let y = tf.layers.batchNormalization({ epsilon: 1.001e-5 }).apply(input) as tf.SymbolicTensor;
    y = tf.layers.activation({ activation: 'relu' }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.conv2d({ filters: 6, kernelSize: 1, useBias: false }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false }).apply(y) as tf.SymbolicTensor;
    let x = tf.layers.concatenate().apply([input, y]) as tf.SymbolicTensor;
    x = tf.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.averagePooling2d({ poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, activation: 'softmax' }).apply(x) as tf.SymbolicTensor });
  },
  // Inception-ResNet: 1x3 / 3x1 and 'same' average-pool branches, a biased 1x1 conv, Rescaling, then the residual Add.
  inceptionResnetBlock: () => {
    const input = tf.input({ shape: [7, 7, 5] });
    const b0 = tf.layers.conv2d({ filters: 3, kernelSize: 1, useBias: false }).apply(input) as tf.SymbolicTensor;
    let b1 = tf.layers.conv2d({ filters: 3, kernelSize: [1, 3], padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
    b1 = tf.layers.conv2d({ filters: 4, kernelSize: [3, 1], padding: 'same', useBias: false, activation: 'relu' }).apply(b1) as tf.SymbolicTensor;
    const bp = tf.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const mixed = tf.layers.concatenate().apply([b0, b1, bp]) as tf.SymbolicTensor;
    let up = tf.layers.conv2d({ filters: 5, kernelSize: 1 }).apply(mixed) as tf.SymbolicTensor;
    up = tf.layers.rescaling({ scale: 0.17, offset: 0 }).apply(up) as tf.SymbolicTensor;
    let x = tf.layers.add().apply([input, up]) as tf.SymbolicTensor;
    x = tf.layers.activation({ activation: 'relu' }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.globalAveragePooling2d({}).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, activation: 'softmax' }).apply(x) as tf.SymbolicTensor });
  },
  dense: () =>
    tf.sequential({
      layers: [
        tf.layers.flatten({ inputShape: [4, 4, 3] }),
        tf.layers.dense({ units: 16, activation: 'relu' }),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    }),
};

/** Deterministic weights (positive where a layer needs it), so both backends start from the same model. */
function setSeededWeights(model: tf.LayersModel): void {
  const values = model.weights.map((w, i) => {
    const shape = w.shape as number[];
    const noise = randomValues(`weight${i}`, tf.util.sizeFromShape(shape));
    const positive = /gamma|moving_variance/.test(w.name);
    return tf.tensor(noise.map((v) => (positive ? 1 + 0.1 * Math.abs(v) : 0.3 * v)), shape);
  });
  model.setWeights(values);
  tf.dispose(values);
}

/** Loss and the gradient of every trainable weight, in model order, for one seeded batch. */
function lossAndGrads(name: string): tf.Tensor[] {
  const model = MODELS[name]();
  setSeededWeights(model);
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  const batch = 3;
  const x = tf.tensor(randomValues(`${name}/x`, batch * tf.util.sizeFromShape(inputShape)), [batch, ...inputShape]);
  const y = tf.oneHot(tf.tensor1d([0, 2, 1], 'int32'), 3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => tf.mean(tf.metrics.categoricalCrossentropy(y, model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar,
    vars,
  );
  const out = [value, ...vars.map((v) => grads[v.name])];
  model.dispose();
  return out;
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

describe('gradients of small models on wasm (graft kernels) match the cpu backend', () => {
  test.each(Object.keys(MODELS))('%s model: loss and every trainable gradient within 1e-4 relative', async (name) => {
    const cpu = await valuesOn('cpu', () => lossAndGrads(name));
    const wasm = await valuesOn('wasm', () => lossAndGrads(name));
    expect(wasm).toHaveLength(cpu.length);
    expect(cpu.length).toBeGreaterThan(2);
    cpu.forEach((expected, i) => {
      expect(relativeError(wasm[i], expected)).toBeLessThan(1e-4);
    });
  });

  test('repeated gradient steps do not grow tensors or wasm buffers', async () => {
    await initBackend({ backend: 'wasm', log: null });
    // Inputs and targets are made inside lossAndGrads, so each run is its own tidy scope.
    tf.dispose(tf.tidy(() => lossAndGrads('separable')));
    const before = liveCounts();
    for (let i = 0; i < 3; i++) for (const name of Object.keys(MODELS)) tf.dispose(tf.tidy(() => lossAndGrads(name)));
    expect(liveCounts()).toEqual(before);
  });
});
