import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { saveModelFolder } from '../src/io/model-folder';
import { freeze, syncFrozenBatchNorm, unfreeze, isInInferenceMode } from '../src/train/freeze';
import { tmpDir } from './helpers/tmp';

const EPS = 1e-3;
const MOMENTUM = 0.9;

/** conv -> BatchNormalization({scale: false}) -> relu -> global average pool -> dense (logits). */
function tinyModel(center = true): tf.LayersModel {
  const input = tf.input({ shape: [5, 5, 2] });
  let y = tf.layers.conv2d({ name: 'conv', filters: 3, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  y = tf.layers.batchNormalization({ name: 'bn', scale: false, center, momentum: MOMENTUM, epsilon: EPS }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.activation({ activation: 'relu' }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.globalAveragePooling2d({}).apply(y) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'fc', units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

const read = (model: tf.LayersModel, name: string) => model.weights.find((w) => w.originalName === name)!.read();

describe('BatchNormalization without gamma (scale: false) in training mode', () => {
  const root = tmpDir();
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  test('stock tfjs-layers 4.22 cannot train it (the reason for the patch)', () => {
    const model = tinyModel();
    const x = tf.randomNormal([4, 5, 5, 2], 0, 1, 'float32', 3);
    expect(() => model.apply(x, { training: true })).toThrow();
    x.dispose();
    model.dispose();
  });

  test('forward, gradients and moving statistics match a hand-written reference; no leak', () => {
    const model = tinyModel();
    syncFrozenBatchNorm(model);
    const bn = model.getLayer('bn');
    expect(bn.weights.map((w) => w.originalName)).toEqual(['bn/beta', 'bn/moving_mean', 'bn/moving_variance']);
    // Non-trivial starting values, so the update formula is really tested.
    bn.setWeights([tf.tensor1d([0.1, -0.2, 0.3]), tf.tensor1d([0.5, -0.5, 1]), tf.tensor1d([2, 0.5, 1.5])]);
    const x = tf.randomNormal([4, 5, 5, 2], 0, 1, 'float32', 3);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 1, 0], 'int32'), 2);
    const mm0 = read(model, 'bn/moving_mean').dataSync().slice();
    const mv0 = read(model, 'bn/moving_variance').dataSync().slice();

    // Reference, by hand with tf ops on the same variables (and no moving-stat updates).
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const reference = tf.tidy(() => {
      const y = tf.conv2d(x as tf.Tensor4D, read(model, 'conv/kernel') as tf.Tensor4D, 1, 'same');
      const { mean, variance } = tf.moments(y, [0, 1, 2]);
      const normed = tf.add(tf.div(tf.sub(y, mean), tf.sqrt(tf.add(variance, EPS))), read(model, 'bn/beta'));
      const pooled = tf.mean(tf.relu(normed), [1, 2]);
      return { y, mean, variance, pooled };
    });
    const refGrads = tf.variableGrads(() => tf.tidy(() => {
      const y = tf.conv2d(x as tf.Tensor4D, read(model, 'conv/kernel') as tf.Tensor4D, 1, 'same');
      const { mean, variance } = tf.moments(y, [0, 1, 2]);
      const normed = tf.add(tf.div(tf.sub(y, mean), tf.sqrt(tf.add(variance, EPS))), read(model, 'bn/beta'));
      const logits = tf.add(tf.matMul(tf.mean(tf.relu(normed), [1, 2]), read(model, 'fc/kernel') as tf.Tensor2D), read(model, 'fc/bias'));
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }), variables);

    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.tidy(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }), variables);
    expect(value.dataSync()[0]).toBeCloseTo(refGrads.value.dataSync()[0], 5);
    for (const v of variables) {
      expect(grads[v.name]).toBeDefined();
      const got = grads[v.name].dataSync();
      const want = refGrads.grads[v.name].dataSync();
      expect(got.length).toBe(want.length);
      got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 5));
      expect(Math.max(...Array.from(got, Math.abs))).toBeGreaterThan(0);
    }
    value.dispose();
    tf.dispose(grads);
    expect(tf.memory().numTensors).toBe(before);

    // moving = moving * momentum + batch * (1 - momentum), with the (biased) variance of tf.moments.
    const mean = reference.mean.dataSync();
    const variance = reference.variance.dataSync();
    const mm = read(model, 'bn/moving_mean').dataSync();
    const mv = read(model, 'bn/moving_variance').dataSync();
    for (let c = 0; c < 3; c++) {
      expect(mm[c]).toBeCloseTo(mm0[c] * MOMENTUM + mean[c] * (1 - MOMENTUM), 5);
      expect(mv[c]).toBeCloseTo(mv0[c] * MOMENTUM + variance[c] * (1 - MOMENTUM), 5);
    }
    // The training-mode forward output itself (up to the pool) equals the reference.
    const pooledModel = tf.model({ inputs: model.inputs, outputs: model.layers[4].output as tf.SymbolicTensor });
    const pooled = pooledModel.apply(x, { training: true }) as tf.Tensor;
    expect(Array.from(pooled.dataSync())).toEqual(Array.from(reference.pooled.dataSync()).map((v) => expect.closeTo(v, 5)));

    // Inference mode still normalises with the moving statistics (the stock call).
    const inference = tf.tidy(() => {
      const y = tf.conv2d(x as tf.Tensor4D, read(model, 'conv/kernel') as tf.Tensor4D, 1, 'same');
      return tf.add(tf.div(tf.sub(y, read(model, 'bn/moving_mean')), tf.sqrt(tf.add(read(model, 'bn/moving_variance'), EPS))), read(model, 'bn/beta'));
    });
    const bnOut = tf.model({ inputs: model.inputs, outputs: bn.output as tf.SymbolicTensor }).apply(x, { training: false }) as tf.Tensor;
    Array.from(bnOut.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(inference.dataSync()[i], 5));
    tf.dispose([x, labels, pooled, bnOut, inference, reference, refGrads.value, refGrads.grads]);
    model.dispose();
  });

  test('center: false (no beta) and a channel axis that is not last', () => {
    const model = tinyModel(false);
    syncFrozenBatchNorm(model);
    const x = tf.randomNormal([3, 5, 5, 2], 0, 1, 'float32', 5);
    expect(model.getLayer('bn').weights.map((w) => w.originalName)).toEqual(['bn/moving_mean', 'bn/moving_variance']);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    expect(variables.length).toBe(3);
    const { value, grads } = tf.variableGrads(() => tf.sum(model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, variables);
    expect(Object.keys(grads).length).toBe(3);
    value.dispose();
    tf.dispose(grads);

    const bn = tf.layers.batchNormalization({ axis: 1, scale: false, momentum: MOMENTUM });
    const input = tf.input({ shape: [3, 4, 2] });
    const m = tf.model({ inputs: input, outputs: bn.apply(input) as tf.SymbolicTensor });
    syncFrozenBatchNorm(m);
    const z = tf.randomNormal([2, 3, 4, 2], 1, 2, 'float32', 6);
    const out = m.apply(z, { training: true }) as tf.Tensor;
    const want = tf.tidy(() => {
      const { mean, variance } = tf.moments(z, [0, 2, 3], true);
      return tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, EPS)));
    });
    Array.from(out.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want.dataSync()[i], 4));
    const batchMean = tf.moments(z, [0, 2, 3]).mean.dataSync();
    const mm = bn.getWeights()[1].dataSync();
    for (let c = 0; c < 3; c++) expect(mm[c]).toBeCloseTo(batchMean[c] * (1 - MOMENTUM), 5);
    tf.dispose([x, z, out, want]);
    m.dispose();
    model.dispose();
  });

  test('freezing switches to inference mode and back; the saved model has stock classes and no gamma', async () => {
    const model = tinyModel();
    freeze(model, { layers: ['bn'] });
    expect(isInInferenceMode(model.getLayer('bn'))).toBe(true);
    unfreeze(model, { layers: ['bn'] });
    expect(isInInferenceMode(model.getLayer('bn'))).toBe(false);
    syncFrozenBatchNorm(model);
    const x = tf.randomNormal([2, 5, 5, 2], 0, 1, 'float32', 7);
    tf.dispose(model.apply(x, { training: true }) as tf.Tensor);
    x.dispose();
    expect(model.countParams()).toBe(3 * 3 * 2 * 3 + 3 * 3 + 3 * 2 + 2);
    const dir = path.join(root, 'noscale');
    await saveModelFolder(dir, model, {
      architecture: 'custom', inputShape: [5, 5, 2], preprocessing: 'none', classNames: ['a', 'b'], outputActivation: 'softmax', groups: [],
    });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    const layers = json.modelTopology.config.layers as Array<{ class_name: string; config: { name: string; scale?: boolean } }>;
    expect([...new Set(layers.map((l) => l.class_name))].sort()).toEqual(['Activation', 'BatchNormalization', 'Conv2D', 'Dense', 'GlobalAveragePooling2D', 'InputLayer']);
    expect(layers.find((l) => l.config.name === 'bn')!.config.scale).toBe(false);
    const names = (json.weightsManifest as Array<{ weights: Array<{ name: string }> }>).flatMap((g) => g.weights.map((w) => w.name));
    expect(names.filter((n) => n.startsWith('bn/')).sort()).toEqual(['bn/beta', 'bn/moving_mean', 'bn/moving_variance']);
    model.dispose();
  });
  test('frozen (inference mode) inside a gradient tape: gradients equal those of the same layer with gamma = 1', () => {
    // Stock tfjs passes the missing gamma to batchNorm as undefined, which the tape cannot save: it crashes.
    const build = (scale: boolean) => {
      const input = tf.input({ shape: [5, 5, 2] });
      let y = tf.layers.conv2d({ name: 'conv', filters: 3, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
      y = tf.layers.batchNormalization({ name: 'bn', scale, epsilon: EPS, movingMeanInitializer: 'ones', movingVarianceInitializer: tf.initializers.constant({ value: 2 }) }).apply(y) as tf.SymbolicTensor;
      y = tf.layers.globalAveragePooling2d({}).apply(y) as tf.SymbolicTensor;
      const out = tf.layers.dense({ name: 'fc', units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(y) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: out });
      model.getLayer('bn').trainable = false;
      syncFrozenBatchNorm(model);
      return model;
    };
    const start = tf.memory().numTensors;
    const x = tf.randomNormal([3, 5, 5, 2], 0, 1, 'float32', 7);
    const grads = (model: tf.LayersModel) => {
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads: g } = tf.variableGrads(() => tf.sum(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, vars);
      const out = [value, ...vars.map((v) => g[v.name])].map((t) => Array.from(t.dataSync()));
      tf.dispose([value, ...Object.values(g)]);
      return out;
    };
    const without = build(false);
    const withOnes = build(true);
    try {
      expect(without.trainableWeights.map((w) => w.originalName)).toEqual(['conv/kernel', 'fc/kernel', 'fc/bias']);
      const a = grads(without);
      const b = grads(withOnes);
      expect(a).toHaveLength(4);
      a.forEach((values, i) => values.forEach((v, j) => expect(v).toBeCloseTo(b[i][j], 5)));
      expect(a[1].some((v) => v !== 0)).toBe(true);
    } finally {
      without.dispose();
      withOnes.dispose();
      x.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
