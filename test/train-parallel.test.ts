import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { freezeTo } from '../src/train/freeze';
import { FitOptions, fit } from '../src/train/loop';
import { pooledGradients } from '../src/engine/pooled-gradients';
import { blobs, mlp, weightValues } from './helpers/train-models';

describe('data-parallel steps on worker threads', () => {
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('two workers train to the same weights as one thread (frozen BN, no dropout), and leak nothing', async () => {
    const data = blobs(64, { batchSize: 16 });
    const run = async (parallel: boolean) => {
      const { model, groups } = mlp(8);
      freezeTo(model, groups, 1);
      const options: FitOptions = { model, groups, train: data.source, epochs: 2, lr: 0.01, lrMult: 3, optimizer: 'adam', loss: { outputActivation: 'softmax' } };
      const result = await fit({ ...options, gradients: parallel ? pooledGradients(2) : undefined });
      const weights = weightValues(model);
      model.dispose();
      return { result, weights };
    };
    const one = await run(false);
    const start = tf.memory().numTensors;
    const two = await run(true);
    expect(tf.memory().numTensors).toBe(start);
    two.result.history.forEach((h, i) => expect(h.loss).toBeCloseTo(one.result.history[i].loss, 5));
    for (const [name, values] of Object.entries(one.weights)) values.forEach((v, i) => expect(two.weights[name][i]).toBeCloseTo(v, 4));
  });
});
