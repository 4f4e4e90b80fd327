/**
 * Registry-driven ONNX parity, shared by test/onnx-zoo-1 and -2: every architecture (and graft's heads) exported to
 * ONNX gives tfjs's outputs to 1e-4 relative, at the architecture's minimum input size with random weights and random
 * BN statistics. The architectures are dealt into two files by weight count so jest's two workers share the work.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend';
import { listArchitectures } from '../../src/models/registry';
import { constructModel } from '../../src/models/build';
import { createClassifier } from '../../src/models/classifier';
import { inputChannels } from '../../src/models/spec';
import { exportOnnx } from '../../src/onnx/export';
import { createOnnxSession, runSession } from '../../src/engine/onnx-runtime';
import { randomizeWeights, relativeError } from './onnx-models';

async function parity(model: tf.LayersModel, seed: number, options: { kernels: boolean }): Promise<number> {
  randomizeWeights(model, seed, options);
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
// paths); width and depth variants (mobilenet_v2_0.35, efficientnet_b1..b7, ...) share their family's converters.
// They run with GRAFT_SLOW_TESTS=1 to keep npm test short.
const SLOW_ONLY = ['densenet169', 'densenet201'];
const ARCHS = listArchitectures().filter((s) => process.env.GRAFT_SLOW_TESTS === '1' || (!SLOW_ONLY.includes(s.name) && !s.variantOf));

/** The architectures of part `part` (0 or 1): dealt largest first to whichever part holds fewer weights so far. */
function partOf(part: number) {
  const load = [0, 0];
  const parts: Array<typeof ARCHS> = [[], []];
  for (const s of [...ARCHS].sort((a, b) => (b.params?.notop ?? 0) - (a.params?.notop ?? 0))) {
    const i = load[0] <= load[1] ? 0 : 1;
    parts[i].push(s);
    load[i] += s.params?.notop ?? 0;
  }
  return parts[part];
}

/** Declares the parity tests of one part; part 0 also checks every head variant. */
export function zooParityTests(part: 0 | 1): void {
  describe(`ONNX parity for every registered architecture (part ${part + 1} of 2)`, () => {
    beforeAll(() => initBackend({ backend: 'wasm', log: null }));

    test.each(partOf(part).map((s) => [s.name, s.minInputSize, inputChannels(s)] as const))(
      '%s at %i px: feature map (no top) matches tfjs',
      async (arch, size, channels) => {
        // Zero-initialised then filled by a fast seeded generator: tfjs's own initialisers take seconds on 60M weights.
        const { model } = constructModel({ arch, includeTop: false, inputShape: [size, size, channels] }, { initializer: 'zeros' });
        expect(await parity(model, 1, { kernels: true })).toBeLessThan(1e-4);
        model.dispose();
      },
      // Inception-ResNet V2 (54M weights) takes a while to convert and load on a busy machine.
      300_000,
    );

    if (part !== 0) return;
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
      expect(await parity(model, 2, { kernels: false })).toBeLessThan(1e-4);
      model.dispose();
    });
  });
}
