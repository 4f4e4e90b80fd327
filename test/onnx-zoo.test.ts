/**
 * @jest-environment ./test/helpers/onnx-environment.js
 *
 * Registry-driven parity: every architecture (and graft's heads) exported to ONNX gives tfjs's outputs to 1e-4
 * relative, at the architecture's minimum input size with random weights and random BN statistics.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { listArchitectures } from '../src/models/registry';
import { buildModel } from '../src/models/build';
import { createClassifier } from '../src/models/classifier';
import { exportOnnx } from '../src/onnx/export';
import { createOnnxSession, runSession } from '../src/engine/onnx-runtime';
import { randomizeWeights, relativeError } from './helpers/onnx-models';

async function parity(model: tf.LayersModel, seed: number): Promise<number> {
  // tfjs's random initial kernels serve; biases and BN statistics start at 0 / 1 and must not.
  randomizeWeights(model, seed, { kernels: false });
  const shape = [2, ...(model.inputs[0].shape.slice(1) as number[])];
  const x = tf.randomUniform(shape, -1, 1, 'float32', seed);
  const expected = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
  const input = x.dataSync() as Float32Array;
  x.dispose();
  const { bytes } = await exportOnnx(model);
  const { session } = await createOnnxSession(bytes, { threads: 2 });
  try {
    return relativeError(await runSession(session, input, shape), expected);
  } finally {
    await session.release();
  }
}

// DenseNet169 and 201 are DenseNet121's builder with more blocks per stage (the same layers, configs and converter
// paths); they run with GRAFT_SLOW_TESTS=1 to keep npm test short.
const SLOW_ONLY = ['densenet169', 'densenet201'];
// Width and depth variants (mobilenet_v2_0.35, efficientnet_b1..b7, ...) and the larger DenseNets share their family's
// converters; they run with GRAFT_SLOW_TESTS=1.
const ARCHS = listArchitectures().filter((s) => process.env.GRAFT_SLOW_TESTS === '1' || (!SLOW_ONLY.includes(s.name) && !s.variantOf));

describe('ONNX parity for every registered architecture', () => {
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test.each(ARCHS.map((s) => [s.name, s.minInputSize, s.name === 'simple_cnn' ? 1 : 3] as const))(
    '%s at %i px: feature map (no top) matches tfjs',
    async (arch, size, channels) => {
      const { model } = await buildModel({ arch, includeTop: false, inputShape: [size, size, channels] });
      expect(await parity(model, 1)).toBeLessThan(1e-4);
      model.dispose();
    },
    // Inception-ResNet V2 (54M weights) takes a while to initialise, convert and load on a busy machine.
    300_000,
  );

  // Heads are the same code on every trunk, so each head variant runs on the small simple_cnn trunk.
  test.each([
    [{ pooling: 'flatten', hidden: [16], activation: 'leaky_relu', dropout: 0.3, outputActivation: 'softmax' }],
    [{ pooling: 'max', hidden: [8, 8], activation: 'elu', outputActivation: 'sigmoid' }],
    [{ pooling: 'avg', hidden: [8], activation: 'tanh', dropout: 0.2 }],
    [{ pooling: 'avg', hidden: [8], activation: 'sigmoid' }],
    [{ pooling: 'avg', hidden: [8], activation: 'relu' }],
    [{}],
  ] as const)('graft head %j matches tfjs', async (head) => {
    const { model } = await createClassifier({ arch: 'simple_cnn', classNames: ['a', 'b', 'c'], inputShape: [12, 12, 1], head: { ...head } });
    expect(await parity(model, 2)).toBeLessThan(1e-4);
    model.dispose();
  });
});
