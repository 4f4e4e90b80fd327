/**
 * @jest-environment ./test/helpers/onnx-environment.js
 *
 * The compiled training step's gradients, layer by layer, against tfjs autodiff on the cpu backend: every layer
 * class and configuration the compiler covers (strides, TF's asymmetric 'same' padding on odd and even sizes,
 * dilation, BN in training / frozen / gamma-less form, every activation, pinned dropout masks, the losses).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { GraftError } from '../src/errors';
import { compileTrainStep, trainStepBlocker } from '../src/onnx/train-step/compile';
import { LossOptions } from '../src/train/losses';
import { createRng } from '../src/util/rng';
import { randomizeWeights } from './helpers/onnx-models';
import { compareGradients, exactSameAvgPools, randomBatch } from './helpers/train-step';

type T = tf.SymbolicTensor;
const L = tf.layers;
const SOFTMAX: LossOptions = { outputActivation: 'softmax' };

/** A model: `body` maps the input to a feature map or vector; a softmax Dense head (after Flatten) follows. */
function build(inputShape: number[], body: (x: T) => T, options: { classes?: number; activation?: string } = {}): tf.LayersModel {
  const input = tf.input({ shape: inputShape, name: 'image' });
  let x = body(input);
  if (x.shape.length > 2) x = L.flatten({ name: 'flat' }).apply(x) as T;
  const out = L.dense({ units: options.classes ?? 3, activation: (options.activation ?? 'softmax') as 'softmax', name: 'head' }).apply(x) as T;
  const model = tf.model({ inputs: input, outputs: out });
  randomizeWeights(model, 7);
  return model;
}

/** Copies each 2x2 block's top-left pixel over the block (NHWC), so that a 2x2 max pool sees four-way exact ties. */
function blocky(x: Float32Array, [n, h, w, c]: number[]): void {
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < h; r++) {
      for (let q = 0; q < w; q++) {
        for (let k = 0; k < c; k++) x[((i * h + r) * w + q) * c + k] = x[((i * h + (r & ~1)) * w + (q & ~1)) * c + k];
      }
    }
  }
}

async function check(model: tf.LayersModel, loss: LossOptions = SOFTMAX, options: { batch?: number; masks?: Record<string, Float32Array>; tol?: number; ties?: boolean } = {}) {
  const n = options.batch ?? 3;
  const shape = [n, ...(model.inputs[0].shape.slice(1) as number[])];
  const units = Number(model.outputs[0].shape[1]);
  const b = randomBatch(shape, Math.max(units, 2), 11);
  if (options.ties) blocky(b.x, shape);
  const r = await compareGradients(model, { ...b, shape }, loss, options.masks);
  const bad = Object.entries({ loss: r.loss, ...r.grads, ...r.stats }).filter(([, e]) => !(e < (options.tol ?? 1e-4)));
  expect(bad).toEqual([]);
  model.dispose();
}

beforeAll(() => initBackend({ backend: 'cpu', log: null }));

describe('compiled step gradients match tfjs autodiff', () => {
  const convCases: Array<[string, number[], Record<string, unknown>]> = [
    ['3x3 same stride 1', [7, 6, 3], { kernelSize: 3, padding: 'same' }],
    ['3x3 same stride 1 on a 12x11 map (forward by Conv; up to 100 output pixels it is one Gemm over im2col)', [12, 11, 2], { kernelSize: 3, padding: 'same' }],
    ['3x3 same stride 2, even size', [8, 6, 2], { kernelSize: 3, strides: 2, padding: 'same' }],
    ['3x3 same stride 2, odd size', [9, 7, 2], { kernelSize: 3, strides: 2, padding: 'same' }],
    ['3x3 valid stride 2 with a leftover row', [10, 9, 2], { kernelSize: 3, strides: 2, padding: 'valid' }],
    ['5x5 valid stride 3', [13, 11, 2], { kernelSize: 5, strides: 3, padding: 'valid' }],
    ['2x2 same stride 1 (padding after only)', [5, 6, 2], { kernelSize: 2, padding: 'same' }],
    ['4x4 same stride 2 (asymmetric)', [9, 8, 2], { kernelSize: 4, strides: 2, padding: 'same' }],
    ['1x1 stride 1', [5, 4, 4], { kernelSize: 1 }],
    ['1x1 stride 2 same, even', [6, 6, 3], { kernelSize: 1, strides: 2, padding: 'same' }],
    ['1x1 stride 2 valid, odd', [7, 5, 3], { kernelSize: 1, strides: 2 }],
    ['1x7 and 7x1 same', [8, 9, 2], { kernelSize: [1, 7], padding: 'same' }],
    ['7x1 valid', [9, 5, 2], { kernelSize: [7, 1] }],
    ['no bias, relu', [6, 6, 2], { kernelSize: 3, useBias: false, activation: 'relu' }],
  ];
  test.each(convCases)('Conv2D %s', async (_name, shape, args) => {
    await check(build(shape, (x) => L.conv2d({ filters: 4, name: 'conv', ...args } as never).apply(L.conv2d({ filters: 3, kernelSize: 1, name: 'pre' }).apply(x)) as T));
  });

  test.each([
    ['same', [9, 8, 2]],
    ['valid', [10, 7, 2]],
  ] as Array<[string, number[]]>)('Conv2D dilation 2, %s padding (reference: the dilated kernel written out with zeros)', async (padding, shape) => {
    // tfjs cannot differentiate a dilated convolution, so the reference runs the same convolution with the kernel
    // spread out (zeros between taps), which tfjs differentiates.
    const model = build(shape, (x) => L.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: padding as 'same', name: 'conv' }).apply(L.conv2d({ filters: 2, kernelSize: 1, name: 'pre' }).apply(x)) as T);
    const conv = model.getLayer('conv') as unknown as Record<string, unknown> & { kernel: { read(): tf.Tensor }; bias: { read(): tf.Tensor } };
    conv.call = (inputs: tf.Tensor | tf.Tensor[]) => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const k = conv.kernel.read() as tf.Tensor4D;
      const [, , ci, co] = k.shape;
      const spread = k.reshape([3, 1, 3, 1, ci, co]).pad([[0, 0], [0, 1], [0, 0], [0, 1], [0, 0], [0, 0]]).reshape([6, 6, ci, co]).slice([0, 0, 0, 0], [5, 5, ci, co]) as tf.Tensor4D;
      return tf.add(tf.conv2d(x, spread, 1, padding as 'same'), conv.bias.read());
    };
    await check(model);
  });

  test('the first convolution gets a filter gradient without any input gradient', async () => {
    await check(build([9, 8, 3], (x) => L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'conv' }).apply(x) as T));
  });

  const activations = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'softmax', 'elu', 'selu', 'swish', 'hardSigmoid', 'softplus', 'softsign', 'gelu', 'gelu_new', 'mish'];
  test.each(activations)('Dense + Activation %s', async (fn) => {
    await check(
      build([6], (x) => {
        const d = L.dense({ units: 5, name: 'dense' }).apply(x) as T;
        // Scale up so the activations see values well away from 0 (both branches of piecewise rules).
        return L.activation({ activation: fn as 'relu', name: 'act' }).apply(L.rescaling({ scale: 3, name: 'wide' }).apply(d)) as T;
      }),
    );
  });

  test('activations on feature maps (NCHW softmax axis), ReLU, LeakyReLU, ELU and Softmax layers', async () => {
    await check(
      build([5, 4, 3], (x) => {
        let y = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'swish', name: 'c1' }).apply(x) as T;
        y = L.reLU({ maxValue: 6, name: 'relu6' }).apply(L.rescaling({ scale: 4, name: 'wide' }).apply(y)) as T;
        y = L.activation({ activation: 'softmax', name: 'cs' }).apply(y) as T;
        y = L.conv2d({ filters: 3, kernelSize: 1, name: 'c2' }).apply(y) as T;
        y = L.leakyReLU({ alpha: 0.2, name: 'leaky' }).apply(y) as T;
        y = L.elu({ name: 'elu' }).apply(L.conv2d({ filters: 3, kernelSize: 1, name: 'c3' }).apply(y)) as T;
        return L.softmax({ axis: -1, name: 'sm' }).apply(L.reLU({ name: 'relu' }).apply(y)) as T;
      }),
    );
  });

  const bnCases: Array<[string, Record<string, unknown>, boolean]> = [
    ['training mode', {}, true],
    ['training mode, gamma-less (scale: false)', { scale: false }, true],
    ['frozen (moving statistics)', {}, false],
    ['frozen, gamma-less', { scale: false }, false],
  ];
  test.each(bnCases)('BatchNormalization %s on feature maps and vectors', async (_name, args, trainable) => {
    const model = build([6, 5, 3], (x) => {
      const c = L.conv2d({ filters: 4, kernelSize: 3, name: 'conv' }).apply(x) as T;
      const bn = L.batchNormalization({ name: 'bn', momentum: 0.9, ...args }).apply(c) as T;
      const flat = L.flatten({ name: 'f' }).apply(L.activation({ activation: 'relu', name: 'r' }).apply(bn)) as T;
      return L.batchNormalization({ name: 'bn_vec', epsilon: 1e-5, ...args }).apply(L.dense({ units: 6, name: 'fc' }).apply(flat)) as T;
    });
    model.getLayer('bn').trainable = trainable;
    model.getLayer('bn_vec').trainable = trainable;
    await check(model, SOFTMAX, { batch: 4 });
  });

  const poolCases: Array<[string, number[], (x: T) => T]> = [
    ['MaxPooling2D 2x2', [8, 6, 3], (x) => L.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as T],
    ['MaxPooling2D 2x2 on an odd size after ReLU (ties at zero, a row and column past the last window)', [9, 7, 3], (x) => L.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(L.reLU({ name: 'r' }).apply(x)) as T],
    ['MaxPooling2D 3x2 windows, strides 3x2 (tiled, not square)', [9, 8, 3], (x) => L.maxPooling2d({ poolSize: [3, 2], strides: [3, 2], name: 'pool' }).apply(L.reLU({ name: 'r' }).apply(x)) as T],
    ['MaxPooling2D 3x3 stride 2 same, odd', [9, 7, 3], (x) => L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'pool' }).apply(x) as T],
    ['MaxPooling2D 3x3 stride 2 valid after ReLU (ties at zero)', [9, 8, 3], (x) => L.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool' }).apply(L.reLU({ name: 'r' }).apply(x)) as T],
    ['MaxPooling2D after ZeroPadding2D', [7, 7, 3], (x) => L.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool' }).apply(L.zeroPadding2d({ padding: [[1, 1], [1, 1]], name: 'pad' }).apply(L.reLU({ name: 'r' }).apply(x))) as T],
    ['AveragePooling2D 2x2 valid', [8, 7, 3], (x) => L.averagePooling2d({ poolSize: 2, name: 'pool' }).apply(x) as T],
    ['AveragePooling2D 3x3 stride 2 valid', [9, 9, 3], (x) => L.averagePooling2d({ poolSize: 3, strides: 2, name: 'pool' }).apply(x) as T],
    ['GlobalAveragePooling2D', [5, 4, 3], (x) => L.globalAveragePooling2d({ name: 'pool' }).apply(x) as T],
    ['GlobalMaxPooling2D', [5, 4, 3], (x) => L.globalMaxPooling2d({ name: 'pool' }).apply(x) as T],
    ['GlobalMaxPooling2D after ReLU (ties at zero)', [3, 3, 3], (x) => L.globalMaxPooling2d({ name: 'pool' }).apply(L.reLU({ name: 'r' }).apply(x)) as T],
  ];
  test.each(poolCases)('%s', async (_name, shape, pool) => {
    await check(build(shape, (x) => pool(L.conv2d({ filters: 3, kernelSize: 1, name: 'pre' }).apply(x) as T)));
  });

  test('MaxPooling2D 2x2 with four-way exact ties (no ReLU): each window sends its gradient to its first maximum, as tfjs', async () => {
    // A 1x1 convolution maps equal pixels to bitwise-equal outputs, so every window below holds four equal values of
    // either sign; a rule that split or copied dy over tied pixels would give the pre layer a different gradient.
    await check(build([6, 8, 2], (x) => L.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(L.conv2d({ filters: 3, kernelSize: 1, name: 'pre' }).apply(x)) as T), SOFTMAX, { ties: true });
  });

  test('AveragePooling2D same padding: dy spread over the real pixels of each window (TF), not the whole window', async () => {
    const model = build([7, 6, 2], (x) => L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'pool' }).apply(L.conv2d({ filters: 2, kernelSize: 1, name: 'pre' }).apply(x)) as T);
    exactSameAvgPools(model);
    await check(model);
  });

  test('residual Add, ZeroPadding2D, Reshape and a frozen convolution the gradient passes through', async () => {
    const model = build([6, 6, 3], (x) => {
      const a = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'a' }).apply(x) as T;
      const b = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'frozen' }).apply(a) as T;
      let y = L.add({ name: 'add' }).apply([a, b, a]) as T;
      y = L.zeroPadding2d({ padding: [[1, 0], [2, 1]], name: 'pad' }).apply(y) as T;
      y = L.conv2d({ filters: 2, kernelSize: 3, strides: 2, name: 'c' }).apply(y) as T;
      return L.reshape({ targetShape: [4, 6], name: 'reshape' }).apply(y) as T;
    });
    model.getLayer('frozen').trainable = false;
    await check(model);
  });

  test('Dropout with pinned masks on a vector and on a feature map', async () => {
    const rng = createRng(3);
    const mask = (n: number, rate: number) => Float32Array.from({ length: n }, () => (rng.next() < rate ? 0 : 1 / (1 - rate)));
    const model = build([4, 4, 2], (x) => {
      let y = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'c' }).apply(x) as T;
      y = L.dropout({ rate: 0.3, name: 'drop_map' }).apply(y) as T;
      y = L.dense({ units: 5, name: 'fc' }).apply(L.flatten({ name: 'f' }).apply(y)) as T;
      return L.dropout({ rate: 0.5, name: 'drop_vec' }).apply(y) as T;
    });
    await check(model, SOFTMAX, { masks: { drop_map: mask(3 * 4 * 4 * 3, 0.3), drop_vec: mask(3 * 5, 0.5) } });
  });

  test('Dropout with a noise_shape (EfficientNet\'s stochastic depth): one mask value per sample, broadcast', async () => {
    const model = build([4, 4, 2], (x) => {
      const y = L.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'c' }).apply(x) as T;
      const d = L.dropout({ rate: 0.5, noiseShape: [null, 1, 1, 1] as unknown as number[], name: 'drop_path' }).apply(y) as T;
      return L.dense({ units: 5, name: 'fc' }).apply(L.flatten({ name: 'f' }).apply(L.add({ name: 'res' }).apply([d, y]))) as T;
    });
    await check(model, SOFTMAX, { masks: { drop_path: Float32Array.from([0, 2, 2]) } });
  });

  const losses: Array<[string, LossOptions, number]> = [
    ['softmax, label smoothing and class weights', { outputActivation: 'softmax', labelSmoothing: 0.1, classWeights: [0.5, 2, 1] }, 3],
    ['sigmoid, several outputs', { outputActivation: 'sigmoid' }, 3],
    ['sigmoid, one output, label smoothing and class weights', { outputActivation: 'sigmoid', labelSmoothing: 0.2, classWeights: [1, 3] }, 1],
  ];
  test.each(losses)('loss: %s', async (_name, loss, units) => {
    await check(build([5], (x) => L.dense({ units: 4, activation: 'tanh', name: 'fc' }).apply(x) as T, { classes: units, activation: loss.outputActivation }), loss, { batch: 5 });
  });

  test('a saturated softmax (probabilities clipped at 1e-7) gets the clipped loss gradient, as tfjs', async () => {
    const model = build([4], (x) => L.rescaling({ scale: 60, name: 'big' }).apply(x) as T);
    await check(model);
  });
});

describe('model kinds', () => {
  test('a Sequential model (no InputLayer in its config)', async () => {
    const model = tf.sequential({
      layers: [
        L.conv2d({ inputShape: [6, 5, 2], filters: 3, kernelSize: 3, activation: 'relu', name: 'conv' }),
        L.flatten({ name: 'flat' }),
        L.dense({ units: 3, activation: 'softmax', name: 'head' }),
      ],
    });
    randomizeWeights(model, 5);
    await check(model);
  });
});

describe('tier 2 layers', () => {
  test.each([
    ['DepthwiseConv2D 3x3 same, multiplier 2', [7, 6, 3], { kernelSize: 3, padding: 'same', depthMultiplier: 2 }],
    ['DepthwiseConv2D 3x3 stride 2 same, even', [8, 8, 3], { kernelSize: 3, strides: 2, padding: 'same' }],
    ['DepthwiseConv2D 5x5 stride 2 valid, odd, no bias', [11, 9, 2], { kernelSize: 5, strides: 2, useBias: false }],
  ] as Array<[string, number[], Record<string, unknown>]>)('%s', async (_name, shape, args) => {
    await check(build(shape, (x) => L.depthwiseConv2d({ name: 'dw', ...args } as never).apply(L.conv2d({ filters: shape[2], kernelSize: 1, name: 'pre' }).apply(x)) as T));
  });

  test('SeparableConv2D (stride 2 same, multiplier 2) and Cropping2D', async () => {
    await check(
      build([9, 8, 3], (x) => {
        const y = L.separableConv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, activation: 'relu', name: 'sep' }).apply(x) as T;
        return L.cropping2D({ cropping: [[1, 0], [0, 2]], name: 'crop' }).apply(y) as T;
      }),
    );
  });

  test('Concatenate on channels and a squeeze-and-excitation Multiply (broadcast over H, W)', async () => {
    await check(
      build([5, 5, 2], (x) => {
        const a = L.conv2d({ filters: 3, kernelSize: 1, name: 'a' }).apply(x) as T;
        const b = L.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'b' }).apply(x) as T;
        const cat = L.concatenate({ name: 'cat' }).apply([a, b]) as T;
        let se = L.globalAveragePooling2d({ name: 'se_pool' }).apply(cat) as T;
        se = L.reshape({ targetShape: [1, 1, 5], name: 'se_reshape' }).apply(se) as T;
        se = L.conv2d({ filters: 5, kernelSize: 1, activation: 'sigmoid', name: 'se_conv' }).apply(se) as T;
        return L.multiply({ name: 'se_mul' }).apply([cat, se]) as T;
      }),
    );
  });
});

describe('unsupported layers', () => {
  test('a layer the compiler does not cover is a GraftError naming the layer and its class', async () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const y = L.upSampling2d({ size: [2, 2], name: 'up' }).apply(input) as T;
    const model = tf.model({ inputs: input, outputs: L.dense({ units: 2, activation: 'softmax' }).apply(L.flatten().apply(y)) as T });
    const compiled = compileTrainStep(model, { batchSize: 2, outputActivation: 'softmax', groups: [] });
    await expect(compiled).rejects.toThrow(GraftError);
    await expect(compiled).rejects.toThrow(/layer "up" \(UpSampling2D\)/);
    // What --train-engine auto reports when it falls back, and nothing for a model it can train.
    expect(await trainStepBlocker(model)).toMatch(/^the compiled training step cannot train layer "up" \(UpSampling2D\); supported layers: .*Conv2D/);
    const ok = build([4, 4, 2], (x) => L.conv2d({ filters: 2, kernelSize: 3, name: 'c' }).apply(x) as T);
    expect(await trainStepBlocker(ok)).toBeUndefined();
    ok.dispose();
    model.dispose();
  });
});
