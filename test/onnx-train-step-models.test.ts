/**
 * @jest-environment ./test/helpers/onnx-environment.js
 *
 * Whole-model gradients of the compiled training step against tfjs autodiff (cpu backend): simple_cnn, a small
 * ResNet-like and a small VGG-like network, batch norm in training and in frozen mode. GRAFT_SLOW_TESTS=1 adds every
 * registry architecture at its minimum input size, fully unfrozen with a new head.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { createClassifier } from '../src/models/classifier';
import { listArchitectures } from '../src/models/registry';
import { allLayers } from '../src/train/freeze';
import { splitModel } from '../src/models/split';
import { createRng } from '../src/util/rng';
import { randomizeWeights } from './helpers/onnx-models';
import { compareGradients, exactSameAvgPools, maskShape, randomBatch, referenceGradients, relErr, useFastCpuFilterGrad } from './helpers/train-step';

type T = tf.SymbolicTensor;
const L = tf.layers;

/** Pinned masks for every Dropout layer of `model` at batch `n`, of the layer's `noise_shape` where it has one. */
function dropoutMasks(model: tf.LayersModel, n: number, seed: number): Record<string, Float32Array> {
  const rng = createRng(seed);
  const masks: Record<string, Float32Array> = {};
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Dropout') continue;
    const rate = (layer as unknown as { rate: number }).rate;
    if (!(rate > 0)) continue;
    const size = maskShape(layer, [n, ...((layer.getInputAt(0) as T).shape.slice(1) as number[])]).reduce((a, b) => a * b, 1);
    masks[layer.name] = Float32Array.from({ length: size }, () => (rng.next() < rate ? 0 : 1 / (1 - rate)));
  }
  return masks;
}

/** Softmax cross-entropy with label smoothing, as every case here trains. */
const LOSS = { outputActivation: 'softmax', labelSmoothing: 0.1 } as const;

async function checkModel(model: tf.LayersModel, options: { frozenBn: boolean; batch: number; tol?: number }): Promise<void> {
  for (const layer of allLayers(model)) if (layer.getClassName() === 'BatchNormalization') layer.trainable = !options.frozenBn;
  const shape = [options.batch, ...(model.inputs[0].shape.slice(1) as number[])];
  const units = Number(model.outputs[0].shape[1]);
  const b = randomBatch(shape, units, 5);
  const r = await compareGradients(model, { ...b, shape }, LOSS, dropoutMasks(model, options.batch, 9));
  const bad = Object.entries({ loss: r.loss, ...r.grads, ...r.stats }).filter(([, e]) => !(e < (options.tol ?? 1e-4)));
  expect(bad).toEqual([]);
  expect(Object.keys(r.grads).length).toBe(model.trainableWeights.length);
}

function resnetLike(): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3] });
  let x = L.zeroPadding2d({ padding: 3, name: 'stem_pad' }).apply(input) as T;
  x = L.conv2d({ filters: 8, kernelSize: 7, strides: 2, name: 'stem_conv' }).apply(x) as T;
  x = L.batchNormalization({ name: 'stem_bn', epsilon: 1.001e-5 }).apply(x) as T;
  x = L.activation({ activation: 'relu', name: 'stem_relu' }).apply(x) as T;
  x = L.zeroPadding2d({ padding: 1, name: 'pool_pad' }).apply(x) as T;
  x = L.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool' }).apply(x) as T;
  for (const [i, [filters, stride]] of ([[8, 1], [12, 2]] as const).entries()) {
    const shortcut = L.batchNormalization({ name: `b${i}_sc_bn` }).apply(L.conv2d({ filters: filters * 2, kernelSize: 1, strides: stride, name: `b${i}_sc` }).apply(x)) as T;
    let y = L.conv2d({ filters, kernelSize: 1, strides: stride, name: `b${i}_c1` }).apply(x) as T;
    y = L.activation({ activation: 'relu', name: `b${i}_r1` }).apply(L.batchNormalization({ name: `b${i}_bn1` }).apply(y)) as T;
    y = L.conv2d({ filters, kernelSize: 3, padding: 'same', name: `b${i}_c2` }).apply(y) as T;
    y = L.activation({ activation: 'relu', name: `b${i}_r2` }).apply(L.batchNormalization({ name: `b${i}_bn2` }).apply(y)) as T;
    y = L.batchNormalization({ name: `b${i}_bn3` }).apply(L.conv2d({ filters: filters * 2, kernelSize: 1, name: `b${i}_c3` }).apply(y)) as T;
    x = L.activation({ activation: 'relu', name: `b${i}_out` }).apply(L.add({ name: `b${i}_add` }).apply([shortcut, y])) as T;
  }
  x = L.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as T;
  x = L.dropout({ rate: 0.3, name: 'head_dropout' }).apply(x) as T;
  const out = L.dense({ units: 4, activation: 'softmax', name: 'predictions' }).apply(x) as T;
  const model = tf.model({ inputs: input, outputs: out });
  randomizeWeights(model, 3);
  return model;
}

function vggLike(): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 3] });
  let x: T = input;
  for (const [b, filters] of [8, 12].entries()) {
    for (let c = 0; c < 2; c++) x = L.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', name: `block${b + 1}_conv${c + 1}` }).apply(x) as T;
    x = L.maxPooling2d({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x) as T;
  }
  x = L.flatten({ name: 'flatten' }).apply(x) as T;
  x = L.dense({ units: 16, activation: 'relu', name: 'fc1' }).apply(x) as T;
  x = L.dropout({ rate: 0.5, name: 'drop' }).apply(x) as T;
  const out = L.dense({ units: 3, activation: 'softmax', name: 'predictions' }).apply(x) as T;
  const model = tf.model({ inputs: input, outputs: out });
  randomizeWeights(model, 4);
  return model;
}

let stockFilterGrad: () => void;
beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: null });
  stockFilterGrad = useFastCpuFilterGrad();
});
afterAll(() => stockFilterGrad());

test('the reference\'s faster filter-gradient kernel gives the cpu backend\'s bits', () => {
  const cases: Array<[number[], number[], number, 'same' | 'valid']> = [
    [[2, 7, 6, 3], [3, 3, 3, 4], 1, 'same'],
    [[2, 9, 8, 3], [3, 3, 3, 5], 2, 'same'],
    [[1, 11, 11, 2], [7, 7, 2, 3], 2, 'valid'],
    [[3, 5, 5, 4], [1, 1, 4, 6], 1, 'valid'],
    [[2, 8, 8, 2], [3, 3, 2, 2], 2, 'valid'],
  ];
  const fast = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
  for (const [xs, fs, stride, pad] of cases) {
    const rng = createRng(xs[1] * 100 + fs[0]);
    const random = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => rng.uniform(-1, 1)), shape);
    const x = random(xs) as tf.Tensor4D;
    const f = random(fs) as tf.Tensor4D;
    const dy = random(tf.tidy(() => tf.conv2d(x, f, stride, pad).shape));
    // The gradient of sum(conv(x, k) * dy) with respect to k is Conv2DBackpropFilter(x, dy).
    const grad = () => tf.tidy(() => tf.grad((k) => tf.sum(tf.mul(tf.conv2d(x, k as tf.Tensor4D, stride, pad), dy)))(f).dataSync());
    const mine = grad();
    stockFilterGrad();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).not.toBe(fast);
    const stock = grad();
    stockFilterGrad = useFastCpuFilterGrad();
    expect(Array.from(mine)).toEqual(Array.from(stock));
    tf.dispose([x, f, dy]);
  }
});

describe('whole-model gradients of the compiled step match tfjs autodiff', () => {
  test.each([false, true])('simple_cnn 12x12, batch norm: %s', async (batchNorm) => {
    // The default filters at a small size: tfjs's cpu backend, the reference, is slow on wide convolutions.
    const { model } = await createClassifier({ arch: 'simple_cnn', weights: null, inputShape: [12, 12, 1], classNames: ['a', 'b', 'c', 'd', 'e'], simpleCnn: { batchNorm, filters: [8, 16], dense: [32] } });
    randomizeWeights(model, 2, { kernels: false });
    await checkModel(model, { frozenBn: false, batch: 3 });
    model.dispose();
  });

  test.each([false, true])('ResNet-like (bottlenecks, strided shortcuts, padded max pool), BN frozen: %s', async (frozenBn) => {
    const model = resnetLike();
    await checkModel(model, { frozenBn, batch: 4 });
    model.dispose();
  });

  test('the trainable suffix after a frozen prefix (splitModel), fed the boundary tensor', async () => {
    const model = resnetLike();
    const split = splitModel(model, 'b0_out');
    await checkModel(split.suffix, { frozenBn: false, batch: 4 });
    split.dispose();
    model.dispose();
  });

  test('VGG-like (stacked 3x3 convs, max pools, Flatten, dropout head)', async () => {
    const model = vggLike();
    await checkModel(model, { frozenBn: true, batch: 3 });
    model.dispose();
  });
});

/**
 * The spread of tfjs's own float32 gradients: the worst relative difference between its cpu backend (the reference)
 * and its wasm backend on the same model, batch and masks.
 */
async function tfjsSpread(model: tf.LayersModel, reference: Record<string, Float32Array>, batch: { x: Float32Array; labels: Int32Array; shape: number[] }, masks: Record<string, Float32Array>): Promise<number> {
  await initBackend({ backend: 'wasm', threads: 1, log: null });
  try {
    const wasm = referenceGradients(model, batch, LOSS, masks);
    return Math.max(...Object.entries(reference).map(([k, g]) => relErr(wasm.grads[k], g)));
  } finally {
    await initBackend({ backend: 'cpu', log: null });
  }
}

/**
 * Scales the last Dense layer's kernel so that the largest logit on `x` is 2 in magnitude (BN in training mode when
 * `training`): a test point where the softmax is not saturated.
 */
function tameLogits(model: tf.LayersModel, x: Float32Array, shape: number[], training: boolean): void {
  const head = allLayers(model).filter((l) => l.getClassName() === 'Dense').pop()!;
  const [kernel, ...rest] = head.getWeights();
  const scaled = tf.tidy(() => {
    const features = tf.model({ inputs: model.inputs, outputs: head.input as tf.SymbolicTensor }).apply(tf.tensor(x, shape), { training }) as tf.Tensor;
    const largest = tf.matMul(features, kernel).abs().max().dataSync()[0];
    return kernel.mul(2 / largest);
  });
  head.setWeights([scaled, ...rest]);
  scaled.dispose();
}

// GRAFT_SLOW_TESTS=1: every registry architecture but the width variants, which share all their code with the entry
// they vary (GRAFT_SLOW_VARIANTS=1 adds them); GRAFT_ARCHS=a,b runs only those. The cost is the reference, tfjs's
// cpu backend, whose kernels are plain JS loops: a case takes minutes, VGG and the deep ResNets longer.
const slow = process.env.GRAFT_SLOW_TESTS === '1' ? describe : describe.skip;
slow('every registry architecture at its minimum size, fully unfrozen with a head (GRAFT_SLOW_TESTS=1)', () => {
  const only = process.env.GRAFT_ARCHS?.split(',').map((a) => a.trim());
  const specs = listArchitectures().filter((s) => (only ? only.includes(s.name) : !s.variantOf || process.env.GRAFT_SLOW_VARIANTS === '1'));
  test.each(specs.map((s) => [s.name, s.minInputSize, s.inputChannels ?? 3] as const))('%s @%i, batch norm frozen, then in training mode', async (arch, size, channels) => {
    // Seeded kernels: a case's margins are the same from run to run.
    const { model } = await createClassifier({ arch, weights: null, inputShape: [size, size, channels], classNames: ['a', 'b', 'c'], seed: 6 });
    randomizeWeights(model, 6, { kernels: false });
    exactSameAvgPools(model);
    const bns = allLayers(model).filter((l) => l.getClassName() === 'BatchNormalization');
    const failures: Record<string, Array<[string, number]>> = {};
    const batch = 4;
    const shape = [batch, size, size, channels];
    const b = { ...randomBatch(shape, 3, 5), shape };
    const masks = dropoutMasks(model, batch, 9);
    // Without batch norm both modes are the same step: one run.
    for (const frozenBn of bns.length ? [true, false] : [true]) {
      const started = Date.now();
      for (const bn of bns) bn.trainable = !frozenBn;
      let r = await compareGradients(model, b, LOSS, masks);
      expect(Object.keys(r.grads).length).toBe(model.trainableWeights.length);
      // The test point must keep the softmax off its clip. tfjs and Keras clip the probabilities at 1e-7 before the
      // log, and no gradient passes where a probability is clipped: near that kink float32 rounding decides which side
      // each engine is on. resnet152 at these weights is past it (its residual stream grows through 50 unnormalised
      // Adds, the logits reach ~30, every kernel's gradient was exactly zero on both sides: a check that cannot fail).
      // Where a probability is below 1e-5, the head's kernel is scaled so the largest logit is 2, and the comparison
      // runs again.
      if (Math.min(...r.probs) < 1e-5) {
        process.stderr.write(`${arch} @${size}: a probability of ${Math.min(...r.probs).toExponential(1)} (a saturated softmax); head scaled to logits of at most 2\n`);
        tameLogits(model, b.x, shape, !frozenBn);
        r = await compareGradients(model, b, LOSS, masks);
      }
      // Every kernel gets some gradient: a check of all-zero gradients could not fail.
      const silent = model.trainableWeights.filter((w) => w.shape.length > 1 && !r.reference[w.originalName].some((v) => v !== 0)).map((w) => w.originalName);
      expect(silent).toEqual([]);
      let tol = 1e-4;
      const errors = Object.entries({ loss: r.loss, ...r.grads, ...r.stats });
      if (!frozenBn && errors.some(([, e]) => !(e < tol))) {
        // Training-mode BN at the minimum size normalises a handful of values per channel (4 on the last stages'
        // 1x1 maps), and through tens of such layers the backward pass turns float32 rounding into errors of 1e-4 to
        // a few 1e-3 in any implementation: tfjs's own cpu and wasm backends differ that much (mobilenet_v3_small
        // 1.1e-3, or 3.3e-4 at batch 8, mobilenet_v3_large 3.6e-3, efficientnet_b0 2.6e-4), while the compiled step
        // is 0.7-1.2 times that spread from the cpu reference. There the bar is twice the spread, measured on the
        // case; a wrong rule is off by far more. Frozen BN, and every model without BN, keep the plain 1e-4. Above a
        // spread of 1e-2 the case is undecidable and fails: on 2026-12-02 mobilenet_v2 (0.38: the compiled step is
        // 3.3e-3 from tfjs's wasm backend there, and both 0.38 from its cpu backend, whose JS kernels accumulate in
        // float64), resnet50 (0.062) and the deepest nets (0.07-1.25). It is the test point, not the size: the
        // forward pass of mobilenet_v2 drifts from 3e-7 at the first BN to 1.2e-3 at the last between tfjs's two
        // backends, and at twice and four times the size the spread was 0.044 and 0.33 (resnet50 @64: 0.30); the
        // compiled step's error equalled tfjs wasm's spread every time (2026-12-03). Nor is it the batch or the
        // images: mobilenet_v2 at batch 16 and 64 spread 0.032 and 0.12, with per-image patterns instead of noise
        // 0.26. The README lists every architecture's figures.
        const spread = await tfjsSpread(model, r.reference, b, masks);
        expect(spread).toBeLessThan(1e-2);
        tol = Math.max(tol, 2 * spread);
      }
      const bad = errors.filter(([, e]) => !(e < tol));
      const worst = Math.max(...errors.map(([, e]) => e));
      // A line per mode on stderr, live: these runs take long enough that their progress and margins are worth seeing.
      process.stderr.write(`${arch} @${size}, BN ${frozenBn ? 'frozen' : 'training'}: worst ${worst.toExponential(2)}, tolerance ${tol.toExponential(1)}, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
      if (bad.length) failures[`BN ${frozenBn ? 'frozen' : 'training'} (tolerance ${tol.toExponential(1)})`] = bad;
    }
    expect(failures).toEqual({});
    model.dispose();
  }, 4 * 3600 * 1000);
});
