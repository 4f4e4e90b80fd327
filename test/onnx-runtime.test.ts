/**
 * @jest-environment ./test/helpers/onnx-environment.js
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { saveModelFolder } from '../src/io/model-folder';
import { GraftMetaInit } from '../src/io/graft-json';
import { createTfjsPredictor } from '../src/engine/predictor';
import { ONNX_CACHE_DIR, createOnnxPredictor, onnxRuntimeDoctorLine } from '../src/engine/onnx-runtime';
import { createOnnxModelRunner, createOnnxPrefixRunner } from '../src/engine/onnx-runners';
import { GraftError } from '../src/errors';
import { createModelRunner, createPredictor, createPrefixRunner } from '../src/engine';
import { splitModel } from '../src/models/split';
import { convZoo, randomizeWeights, relativeError } from './helpers/onnx-models';
import { tmpDir } from './helpers/tmp';

type T = tf.SymbolicTensor;

/** stem -> block (boundary `block_relu`) -> head; BN statistics random, so inference-mode BN matters. */
function stemBlockHead(): tf.LayersModel {
  const L = tf.layers;
  const input = tf.input({ shape: [12, 10, 3], name: 'image' });
  let x = L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'stem_conv' }).apply(input) as T;
  x = L.batchNormalization({ name: 'stem_bn' }).apply(x) as T;
  x = L.activation({ activation: 'relu', name: 'stem_relu' }).apply(x) as T;
  x = L.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'block_conv' }).apply(x) as T;
  x = L.batchNormalization({ name: 'block_bn' }).apply(x) as T;
  x = L.activation({ activation: 'relu', name: 'block_relu' }).apply(x) as T;
  x = L.conv2d({ filters: 8, kernelSize: 1, activation: 'relu', name: 'head_conv' }).apply(x) as T;
  x = L.globalAveragePooling2d({ name: 'head_pool' }).apply(x) as T;
  const out = L.dense({ units: 4, activation: 'softmax', name: 'predictions' }).apply(x) as T;
  return tf.model({ inputs: input, outputs: out, name: 'split' });
}

const HEAD = ['head_conv', 'head_pool', 'predictions'];

describe('onnxruntime engine', () => {
  const root = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('createOnnxPredictor matches the tfjs predictor, caches the graph by weights hash and leaks no tensors', async () => {
    const model = convZoo();
    randomizeWeights(model, 8);
    const meta: GraftMetaInit = { architecture: 'custom', inputShape: [13, 11, 3], preprocessing: 'none', classNames: ['a', 'b', 'c', 'd'], outputActivation: 'softmax', groups: [] };
    const dir = path.join(root, 'predictor');
    await saveModelFolder(dir, model, meta);
    const input = Float32Array.from({ length: 5 * 13 * 11 * 3 }, (_, i) => ((i * 37) % 255) - 100);

    const start = tf.memory().numTensors;
    const onnxP = await createOnnxPredictor(dir, { threads: 1 });
    expect(onnxP.engine).toBe('onnxruntime cpu x1');
    expect(onnxP.meta.classNames).toEqual(['a', 'b', 'c', 'd']);
    const viaOnnx = await onnxP.predict(input, 5);
    await onnxP.dispose();
    expect(tf.memory().numTensors).toBe(start);
    const tfjsP = await createTfjsPredictor(dir);
    const viaTfjs = await tfjsP.predict(input, 5);
    await tfjsP.dispose();
    expect(viaOnnx).toHaveLength(20);
    expect(relativeError(viaOnnx, viaTfjs)).toBeLessThan(1e-4);

    const cache = path.join(dir, ONNX_CACHE_DIR);
    // the export, onnxruntime's optimized form of it for this machine with its weights in a file of their own, and
    // the cheap key (sizes and times of the files)
    const listing = fs.readdirSync(cache).sort();
    expect(listing).toEqual([
      expect.stringMatching(/^[0-9a-f]{32}\.[0-9a-f]{10}\.ort\.onnx$/),
      expect.stringMatching(/^[0-9a-f]{32}\.[0-9a-f]{10}\.ort\.onnx\.[0-9]+-[0-9a-f]{8}\.weights$/),
      expect.stringMatching(/^[0-9a-f]{32}\.onnx$/),
      'key.json',
    ]);
    const first = listing[2];
    const optimized = listing[0];
    expect(listing[1].startsWith(optimized)).toBe(true);
    expect(fs.statSync(path.join(cache, listing[1])).size).toBeGreaterThan(1024); // the kernels, out of the graph
    const mtime = fs.statSync(path.join(cache, first)).mtimeMs;
    const optimizedMtime = fs.statSync(path.join(cache, optimized)).mtimeMs;
    const key = JSON.parse(fs.readFileSync(path.join(cache, 'key.json'), 'utf8'));
    expect(key.hash).toBe(first.slice(0, 32));
    // A second start reads the key instead of hashing, loads the optimized graph, and rewrites nothing.
    const reopened = await createOnnxPredictor(dir, { threads: 1 });
    expect(relativeError(await reopened.predict(input, 5), viaTfjs)).toBeLessThan(1e-4);
    await reopened.dispose();
    expect(fs.statSync(path.join(cache, first)).mtimeMs).toBe(mtime);
    expect(fs.statSync(path.join(cache, optimized)).mtimeMs).toBe(optimizedMtime);
    // Weights gone from beside the optimized graph: the next start optimizes again and still predicts right.
    fs.rmSync(path.join(cache, listing[1]));
    const healed = await createOnnxPredictor(dir, { threads: 1 });
    expect(relativeError(await healed.predict(input, 5), viaTfjs)).toBeLessThan(1e-4);
    await healed.dispose();
    expect(fs.readdirSync(cache).filter((e) => e.endsWith('.weights'))).toEqual([expect.stringMatching(new RegExp(`^${optimized.replace(/\./g, '\\.')}\\.`))]);

    // New weights in the same folder: a new key, the stale graph removed, and the new weights used; what
    // `graft features` caches beside it (features-*) is not this export's to remove.
    const featuresEntry = path.join(cache, `features-avg-${'0'.repeat(32)}.onnx`);
    fs.writeFileSync(featuresEntry, 'kept');
    randomizeWeights(model, 9);
    await saveModelFolder(dir, model, meta);
    const again = await createOnnxPredictor(dir, { threads: 1 });
    const after = await again.predict(input, 5);
    await again.dispose();
    const entries = fs.readdirSync(cache).filter((e) => /^[0-9a-f]{32}\.onnx$/.test(e));
    expect(entries).toHaveLength(1);
    expect(fs.readdirSync(cache).filter((e) => e.endsWith('.ort.onnx'))).toHaveLength(1);
    expect(fs.readFileSync(featuresEntry, 'utf8')).toBe('kept');
    // The stale graph's optimized form and its weights went with it.
    expect(fs.readdirSync(cache).filter((e) => e.endsWith('.weights') && !e.startsWith(entries[0].slice(0, 32)))).toEqual([]);
    expect(entries[0]).not.toBe(first);
    const expected = tf.tidy(() => (model.predict(tf.tensor4d(input, [5, 13, 11, 3])) as tf.Tensor).dataSync() as Float32Array);
    expect(relativeError(after, expected)).toBeLessThan(1e-4);
    model.dispose();
  });

  test('--threads holds on every onnx path: predictor, frozen prefix and feature runner take initBackend\'s threads', async () => {
    const meta: GraftMetaInit = { architecture: 'custom', inputShape: [12, 10, 3], preprocessing: 'none', classNames: ['a', 'b', 'c', 'd'], outputActivation: 'softmax', groups: [] };
    // Each backend start replaces tfjs's wasm backend, so the model is built afresh on each.
    const engines = async (threads: number) => {
      await initBackend({ backend: 'wasm', threads, log: null });
      const model = stemBlockHead();
      const dir = path.join(root, `threads-${threads}`);
      await saveModelFolder(dir, model, meta);
      const opened = [
        await createPredictor(dir, { engine: 'onnx', log: null }),
        await createPrefixRunner(model, 'block_relu', { engine: 'onnx', log: null }),
        await createModelRunner(model, { engine: 'onnx', log: null }),
      ];
      const labels = opened.map((o) => o.engine);
      for (const o of opened) await o.dispose();
      // An explicit thread count still wins.
      const p = await createPredictor(dir, { engine: 'onnx', threads: 1, log: null });
      labels.push(p.engine);
      await p.dispose();
      model.dispose();
      return labels;
    };
    try {
      expect(await engines(1)).toEqual(['onnxruntime cpu x1', 'onnxruntime cpu x1', 'onnxruntime cpu x1', 'onnxruntime cpu x1']);
      expect(await engines(2)).toEqual(['onnxruntime cpu x2', 'onnxruntime cpu x2', 'onnxruntime cpu x2', 'onnxruntime cpu x1']);
    } finally {
      await initBackend({ backend: 'wasm', threads: 1, log: null });
    }
  });

  test('doctor reports the onnxruntime version and providers', async () => {
    expect(await onnxRuntimeDoctorLine()).toMatch(/^ok 1\.\d+\.\d+, providers: cpu x\d+, cuda/);
  });

  test('the prefix runner returns the boundary layer output as tfjs computes it, without leaking tensors', async () => {
    const model = stemBlockHead();
    randomizeWeights(model, 10);
    const x = tf.randomUniform([3, 12, 10, 3], -1, 1, 'float32', 2);
    const start = tf.memory().numTensors;
    const runner = await createOnnxPrefixRunner(model, 'block_relu', { threads: 1 });
    expect(runner.outputShape).toEqual([6, 5, 8]);
    const out = await runner.run(x.dataSync() as Float32Array, 3);
    await runner.dispose();
    expect(tf.memory().numTensors).toBe(start);
    const prefix = tf.model({ inputs: model.inputs, outputs: model.getLayer('block_relu').getOutputAt(0) as T });
    const expected = tf.tidy(() => (prefix.predict(x) as tf.Tensor).dataSync() as Float32Array);
    expect(relativeError(out, expected)).toBeLessThan(1e-4);
    await expect(createOnnxPrefixRunner(model, 'nope')).rejects.toThrow(GraftError);
    // After the training split re-applied the layers, the boundary is still found in the model's own graph.
    splitModel(model, 'block_relu').dispose();
    const again = await createOnnxPrefixRunner(model, 'block_relu', { threads: 1 });
    expect(relativeError(await again.run(x.dataSync() as Float32Array, 3), expected)).toBeLessThan(1e-4);
    await again.dispose();
    // The whole model on onnxruntime (what feature extraction uses) gives tfjs's outputs too.
    const whole = await createOnnxModelRunner(model, { threads: 1 });
    expect(whole.outputShape).toEqual([4]);
    const probs = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    expect(relativeError(await whole.run(x.dataSync() as Float32Array, 3), probs)).toBeLessThan(1e-4);
    await whole.dispose();
    x.dispose();
    model.dispose();
  });

  test('training the head on an onnxruntime prefix gives the all-tfjs losses to 1e-4', async () => {
    const model = stemBlockHead();
    randomizeWeights(model, 11);
    const batch = 8;
    const x = tf.randomUniform([batch, 12, 10, 3], -1, 1, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 3, 2, 1, 0], 'int32'), 4);
    const headLayers = HEAD.map((n) => model.getLayer(n));
    const headVars = headLayers.flatMap((l) => l.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
    const initial = headLayers.map((l) => l.getWeights().map((w) => w.clone()));
    const steps = 5;

    // All tfjs: the whole model forward (inference-mode BN in the frozen part), gradients for the head only.
    const tfjsLosses: number[] = [];
    const sgdA = tf.train.sgd(0.5);
    for (let s = 0; s < steps; s++) {
      const loss = sgdA.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.log(model.apply(x, { training: false }) as tf.Tensor)) as tf.Scalar, true, headVars)!;
      tfjsLosses.push(loss.dataSync()[0]);
      loss.dispose();
    }

    // Prefix on onnxruntime, the head in tfjs, from the same initial head weights.
    headLayers.forEach((l, i) => l.setWeights(initial[i]));
    const runner = await createOnnxPrefixRunner(model, 'block_relu', { threads: 1 });
    const features = tf.input({ shape: runner.outputShape });
    const head = tf.model({ inputs: features, outputs: headLayers.reduce((t, l) => l.apply(t) as T, features as T) });
    const onnxLosses: number[] = [];
    const sgdB = tf.train.sgd(0.5);
    const pixels = x.dataSync() as Float32Array;
    for (let s = 0; s < steps; s++) {
      const f = tf.tensor4d(await runner.run(pixels, batch), [batch, ...runner.outputShape] as [number, number, number, number]);
      const loss = sgdB.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.log(head.apply(f) as tf.Tensor)) as tf.Scalar, true, headVars)!;
      onnxLosses.push(loss.dataSync()[0]);
      tf.dispose([f, loss]);
    }
    await runner.dispose();

    expect(tfjsLosses[steps - 1]).toBeLessThan(tfjsLosses[0] - 0.05); // it trains
    onnxLosses.forEach((l, i) => expect(Math.abs(l - tfjsLosses[i])).toBeLessThan(1e-4 * Math.max(1, tfjsLosses[i])));
    tf.dispose([x, y, ...initial.flat()]);
    sgdA.dispose();
    sgdB.dispose();
    model.dispose();
  });
});
