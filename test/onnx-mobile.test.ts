/**
 * @jest-environment ./test/helpers/onnx-environment.js
 *
 * ONNX parity for what only the mobile families' ImageNet build has (test/onnx-zoo.test.ts covers each family's
 * plain build): EfficientNet's stem with the per-channel Rescaling by 1/sqrt(stddev) and the Normalization stand-in.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { constructModel } from '../src/models/build';
import { exportOnnx } from '../src/onnx/export';
import { createOnnxSession, runSession } from '../src/engine/onnx-runtime';
import { randomizeWeights, relativeError } from './helpers/onnx-models';

describe('ONNX parity: EfficientNet\'s ImageNet stem', () => {
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('efficientnet_b0 as built for ImageNet weights (Rescaling per channel, Normalization) matches tfjs on 0..255 input', async () => {
    const { model } = constructModel({ arch: 'efficientnet_b0', includeTop: false, pooling: 'avg', inputShape: [32, 32, 3], weights: 'imagenet' });
    expect(model.getLayer('rescaling_1').getConfig().scale).toHaveLength(3);
    randomizeWeights(model, 5, { kernels: false });
    model.getLayer('normalization').setWeights([tf.tensor1d([0.485, 0.456, 0.406]), tf.tensor1d([0.229, 0.224, 0.225])]);
    const shape = [2, 32, 32, 3];
    const x = tf.randomUniform(shape, 0, 255, 'float32', 6);
    const expected = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const input = x.dataSync() as Float32Array;
    x.dispose();
    const { bytes } = await exportOnnx(model);
    const { session } = await createOnnxSession(bytes, { threads: 2 });
    try {
      expect(relativeError(await runSession(session, input, shape), expected)).toBeLessThan(1e-4);
    } finally {
      await session.release();
      model.dispose();
    }
  });
});
