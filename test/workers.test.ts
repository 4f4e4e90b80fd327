import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { GraftError } from '../src/errors';
import { saveModelFolder } from '../src/io/model-folder';
import { createTfjsPredictor } from '../src/engine/predictor';
import { createGradientPool, createTfjsEnginePredictor, createWorkerPredictor } from '../src/engine/workers';
import { classificationLoss } from '../src/train/losses';
import { randomValues, relativeError } from './helpers/compare-backends';
import { tmpDir } from './helpers/tmp';

const INPUT: [number, number, number] = [8, 8, 3];

function smallConvNet(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: INPUT, filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }),
      tf.layers.separableConv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'sep1' }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions' }),
    ],
  });
}

const root = tmpDir('graft-workers-');
const modelDir = path.join(root, 'model');
let model: tf.LayersModel;

let modelDisposed = false;

beforeAll(async () => {
  // Worker threads are how a single-threaded wasm backend uses more cores; the last block covers threaded wasm.
  await initBackend({ backend: 'wasm', threads: 1, log: null });
  model = smallConvNet();
  await saveModelFolder(modelDir, model, {
    architecture: 'custom', inputShape: INPUT, preprocessing: 'none', classNames: ['a', 'b', 'c'], outputActivation: 'softmax',
    groups: [{ name: 'head', layers: ['conv1', 'sep1', 'gap', 'predictions'] }],
  });
});

afterAll(() => {
  if (!modelDisposed) model.dispose();
});

const rows = (batch: number) => randomValues(`x${batch}`, batch * INPUT[0] * INPUT[1] * INPUT[2]);

describe('worker predictor', () => {
  test('splits a batch over 2 workers (TS source through the transpiling boot) and matches the in-thread predictor', async () => {
    const local = await createTfjsPredictor(modelDir);
    const workers = await createWorkerPredictor(modelDir, { threads: 2 });
    try {
      expect(workers.engine).toBe('tfjs wasm x2 workers');
      expect(workers.meta.classNames).toEqual(['a', 'b', 'c']);
      for (const batch of [5, 1]) {
        const input = rows(batch);
        const copy = input.slice();
        const expected = await local.predict(input, batch);
        const actual = await workers.predict(input, batch);
        expect(actual).toHaveLength(batch * 3);
        expect(relativeError(actual, expected)).toBeLessThan(1e-5);
        // The caller's input is not detached or changed by the transfer to workers.
        expect(input).toEqual(copy);
      }
      await expect(workers.predict(new Float32Array(10), 2)).rejects.toThrow(/predict got 10 values for batch 2; expected batch x 8x8x3 = 384/);
    } finally {
      await workers.dispose();
      await local.dispose();
    }
  });

  test('the built dist/ module starts its compiled worker entry and gives the same results', async () => {
    const dist = path.join(__dirname, '..', 'dist', 'src', 'engine', 'workers.js');
    // npm test builds first (pretest); for a direct jest run, `npm run build` must have been run.
    expect(fs.existsSync(dist)).toBe(true);
    const built = require(dist) as typeof import('../src/engine/workers');
    const workers = await built.createWorkerPredictor(modelDir, { threads: 2 });
    const local = await createTfjsPredictor(modelDir);
    try {
      const input = rows(4);
      expect(relativeError(await workers.predict(input, 4), await local.predict(input, 4))).toBeLessThan(1e-5);
    } finally {
      await workers.dispose();
      await local.dispose();
    }
  });
});

describe('tfjs engine predictor', () => {
  test('keeps a fast model in this thread, and moves a slow one (threshold lowered here) to worker threads', async () => {
    const fast = await createTfjsEnginePredictor(modelDir, { threads: 2 });
    const single = await createTfjsEnginePredictor(modelDir, { threads: 1, minMsPerImage: 0 });
    const slow = await createTfjsEnginePredictor(modelDir, { threads: 2, minMsPerImage: 0 });
    try {
      expect(fast.engine).toBe('tfjs wasm');
      expect(single.engine).toBe('tfjs wasm');
      expect(slow.engine).toBe('tfjs wasm x2 workers');
      const input = rows(3);
      expect(relativeError(await slow.predict(input, 3), await fast.predict(input, 3))).toBeLessThan(1e-5);
    } finally {
      await Promise.all([fast.dispose(), single.dispose(), slow.dispose()]);
    }
  });
});

describe('gradient pool', () => {
  const labels = Int32Array.from([0, 2, 1, 1, 0, 2, 2]);
  const batch = labels.length;

  /** Loss and gradients in this thread, the reference the pool must reproduce. */
  function localGrads(m: tf.LayersModel, x: Float32Array): { loss: number; grads: Record<string, Float32Array> } {
    return tf.tidy(() => {
      const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => classificationLoss(m.apply(tf.tensor(x, [batch, ...INPUT]), { training: true }) as tf.Tensor, labels, { outputActivation: 'softmax' }),
        vars,
      );
      const out: Record<string, Float32Array> = {};
      m.trainableWeights.forEach((w, i) => (out[w.originalName] = grads[vars[i].name].dataSync() as Float32Array));
      return { loss: value.dataSync()[0], grads: out };
    });
  }

  test('2 workers on uneven slices give the full-batch loss and gradients; setWeights keeps them in step; no main-thread leaks', async () => {
    const pool = await createGradientPool({ model, threads: 2, loss: { outputActivation: 'softmax' } });
    try {
      expect(pool.threads).toBe(2);
      expect(pool.trainable).toEqual(model.trainableWeights.map((w) => w.originalName));
      const x = rows(batch);
      for (let step = 0; step < 2; step++) {
        const before = tf.memory().numTensors;
        const expected = localGrads(model, x);
        const got = await pool.grads({ x, labels, batch });
        expect(got.probs).toHaveLength(batch * 3);
        expect(Math.abs(got.loss - expected.loss)).toBeLessThan(1e-5 * Math.abs(expected.loss));
        for (const name of pool.trainable) {
          expect(relativeError(got.grads[name].dataSync() as Float32Array, expected.grads[name])).toBeLessThan(1e-4);
        }
        tf.dispose(Object.values(got.grads));
        expect(tf.memory().numTensors).toBe(before);
        // An SGD step in the main thread, pushed to the workers: the next gradients must follow the new weights.
        const updated: Record<string, tf.Tensor> = {};
        for (const w of model.trainableWeights) {
          updated[w.originalName] = tf.tidy(() => w.read().sub(tf.tensor(expected.grads[w.originalName], w.shape as number[]).mul(0.5)));
          w.write(updated[w.originalName]);
        }
        await pool.setWeights(updated);
        tf.dispose(Object.values(updated));
      }
    } finally {
      await pool.dispose();
    }
  });

  test('with a frozen prefix split off at a boundary, the pool gives the same gradients for the trainable rest', async () => {
    const frozen = smallConvNet();
    frozen.setWeights(model.getWeights());
    frozen.getLayer('conv1').trainable = false;
    const pool = await createGradientPool({ model: frozen, threads: 2, loss: { outputActivation: 'softmax' }, boundary: 'conv1' });
    try {
      expect(pool.trainable).toEqual(frozen.trainableWeights.map((w) => w.originalName));
      expect(pool.trainable).not.toContain('conv1/kernel');
      const x = rows(batch);
      const expected = localGrads(frozen, x);
      const got = await pool.grads({ x, labels, batch });
      expect(Math.abs(got.loss - expected.loss)).toBeLessThan(1e-5 * Math.abs(expected.loss));
      for (const name of pool.trainable) {
        expect(relativeError(got.grads[name].dataSync() as Float32Array, expected.grads[name])).toBeLessThan(1e-4);
      }
      tf.dispose(Object.values(got.grads));
    } finally {
      await pool.dispose();
      frozen.dispose();
    }
  });

  test('an unknown weight name is a GraftError from the worker, and the pool keeps working', async () => {
    const pool = await createGradientPool({ model, threads: 1, loss: { outputActivation: 'softmax' } });
    try {
      const x = rows(2);
      const err = await pool.grads({ x, labels: Int32Array.from([0, 1]), batch: 2, trainable: ['conv1/kernal'] }).catch((e) => e);
      expect(err).toBeInstanceOf(GraftError);
      expect(err.message).toMatch(/no weight named conv1\/kernal/);
      const ok = await pool.grads({ x, labels: Int32Array.from([0, 1]), batch: 2, trainable: ['conv1/kernel'] });
      expect(Object.keys(ok.grads)).toEqual(['conv1/kernel']);
      tf.dispose(Object.values(ok.grads));
    } finally {
      await pool.dispose();
    }
  });
});

describe('on a threaded wasm backend', () => {
  beforeAll(async () => {
    // Replacing the backend drops its tensors, so the shared model goes first.
    model.dispose();
    modelDisposed = true;
    await initBackend({ backend: 'wasm', threads: 2, log: null });
  });

  test('the tfjs engine keeps even a slow model in this thread, which already computes on every core', async () => {
    const predictor = await createTfjsEnginePredictor(modelDir, { threads: 2, minMsPerImage: 0 });
    try {
      expect(predictor.engine).toBe('tfjs wasm');
      expect(await predictor.predict(rows(2), 2)).toHaveLength(6);
    } finally {
      await predictor.dispose();
    }
  });
});
