import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { saveModelFolder, loadModelFolder } from '../src/io/model-folder';
import { describeTrainable, freeze, freezeTo, isInInferenceMode, selectLayers, syncFrozenBatchNorm, unfreeze } from '../src/train/freeze';
import { fit } from '../src/train/loop';
import { splitModel } from '../src/models/split';
import { createPrefixRunner } from '../src/engine';
import { blobs, mlp, weightValues } from './helpers/train-models';
import { tmpDir } from './helpers/tmp';

describe('freezing', () => {
  const root = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('frozen layers, BN moving mean and variance stay bit-identical while the head trains', async () => {
    const { model, groups } = mlp(1);
    freeze(model, { groups: ['body', 'mid'] }, { groups });
    expect(isInInferenceMode(model.getLayer('bn1'))).toBe(true);
    const before = weightValues(model);
    const { source } = blobs(64);
    await fit({ model, groups, train: source, epochs: 2, lr: 0.05, optimizer: 'adam', loss: { outputActivation: 'softmax' } });
    const after = weightValues(model);
    for (const name of ['fc1/kernel', 'fc1/bias', 'bn1/gamma', 'bn1/beta', 'bn1/moving_mean', 'bn1/moving_variance', 'fc2/kernel']) {
      expect(Buffer.from(after[name].buffer).equals(Buffer.from(before[name].buffer))).toBe(true);
    }
    expect(after['predictions/kernel']).not.toEqual(before['predictions/kernel']);
    // In inference mode the frozen BN normalises with its moving statistics even when training is on.
    const x = tf.randomNormal([5, 6], 0, 1, 'float32', 1);
    const trainMode = model.apply(x, { training: true }) as tf.Tensor;
    const predictMode = model.predict(x) as tf.Tensor;
    expect(Array.from(trainMode.dataSync())).toEqual(Array.from(predictMode.dataSync()));
    tf.dispose([x, trainMode, predictMode]);
    model.dispose();
  });

  test('trainBn keeps BN training (batch statistics, moving stats move) while the rest of the trunk is frozen', async () => {
    const { model, groups } = mlp(2);
    freeze(model, { groups: ['body', 'mid'] }, { groups, trainBn: true });
    expect(model.getLayer('bn1').trainable).toBe(true);
    expect(isInInferenceMode(model.getLayer('bn1'))).toBe(false);
    const before = weightValues(model);
    await fit({ model, groups, train: blobs(32).source, epochs: 1, lr: 0.01, loss: { outputActivation: 'softmax' } });
    const after = weightValues(model);
    expect(after['fc1/kernel']).toEqual(before['fc1/kernel']);
    expect(after['bn1/moving_mean']).not.toEqual(before['bn1/moving_mean']);
    expect(after['bn1/gamma']).not.toEqual(before['bn1/gamma']);
    model.dispose();
  });

  test('saved models hold only stock classes and the trainable flags; loading restores BN inference mode', async () => {
    const { model, groups } = mlp(3);
    freeze(model, { upTo: 'relu1' }, { groups });
    const dir = path.join(root, 'frozen');
    await saveModelFolder(dir, model, {
      architecture: 'custom', inputShape: [1, 1, 6], preprocessing: 'none', classNames: ['a', 'b', 'c'], outputActivation: 'softmax', groups,
    });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    const layers = json.modelTopology.config.layers as Array<{ class_name: string; config: { name: string; trainable: boolean } }>;
    expect([...new Set(layers.map((l) => l.class_name))].sort()).toEqual(['Activation', 'BatchNormalization', 'Dense', 'InputLayer']);
    expect(Object.fromEntries(layers.map((l) => [l.config.name, l.config.trainable]))).toMatchObject({ fc1: false, bn1: false, fc2: true, predictions: true });
    const loaded = await loadModelFolder(dir);
    syncFrozenBatchNorm(loaded.model);
    expect(isInInferenceMode(loaded.model.getLayer('bn1'))).toBe(true);
    loaded.model.dispose();
    model.dispose();
  });

  test('selection by group, name, pattern, index and upTo; freezeTo over groups; bad names are errors', () => {
    const { model, groups } = mlp(4);
    const names = (sel: Parameters<typeof selectLayers>[1]) => selectLayers(model, sel, { groups }).map((l) => l.name);
    expect(names({ groups: ['mid'] })).toEqual(['fc2']);
    expect(names({ layers: ['bn1', 'fc1'] })).toEqual(['fc1', 'bn1']);
    expect(names({ pattern: /^fc/ })).toEqual(['fc1', 'fc2']);
    expect(names({ indices: [0, -1] })).toEqual(['in', 'predictions']);
    expect(names({ upTo: 2 })).toEqual(['in', 'fc1']);
    expect(names({ upTo: 'bn1' })).toEqual(['in', 'fc1', 'bn1']);
    expect(() => names({ groups: ['block9'] })).toThrow(/layer group "block9" does not exist; valid groups are body, mid, head/);
    expect(() => names({ layers: ['fc9'] })).toThrow(/layer "fc9" is not a layer/);
    expect(() => names({ indices: [7] })).toThrow(/layer index 7 is out of range; the model has 6 layers/);

    freezeTo(model, groups, -1);
    expect(model.layers.map((l) => l.trainable)).toEqual([false, false, false, false, false, true]);
    const report = describeTrainable(model);
    expect(report.trainableParams).toBe(8 * 3 + 3);
    expect(report.totalParams).toBe(6 * 8 + 8 + 4 * 8 + 8 * 8 + 8 + 8 * 3 + 3);
    expect(report.layers.find((l) => l.name === 'bn1')).toMatchObject({ trainable: false, inferenceMode: true, params: 32 });
    freezeTo(model, groups, 1);
    expect(isInInferenceMode(model.getLayer('bn1'))).toBe(true);
    expect(model.getLayer('fc2').trainable).toBe(true);
    unfreeze(model, { groups: ['body'] }, { groups });
    expect(isInInferenceMode(model.getLayer('bn1'))).toBe(false);
    model.dispose();
  });
});

describe('splitModel', () => {
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  /** A residual block after the boundary: the suffix has a branch and an add. */
  function residual(): tf.LayersModel {
    const input = tf.input({ shape: [4] });
    const stem = tf.layers.dense({ name: 'stem', units: 6, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
    const branch = tf.layers.dense({ name: 'branch', units: 6, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(stem) as tf.SymbolicTensor;
    const sum = tf.layers.add({ name: 'add' }).apply([stem, branch]) as tf.SymbolicTensor;
    const out = tf.layers.dense({ name: 'head', units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(sum) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out, name: 'res' });
  }

  test('prefix then suffix equals the model, the halves share weights, disposing them frees nothing of the model', () => {
    const model = residual();
    const x = tf.randomNormal([3, 4], 0, 1, 'float32', 5);
    const start = tf.memory().numTensors;
    const split = splitModel(model, 'stem');
    expect(split.suffix.layers.map((l) => l.name).slice(1)).toEqual(['branch', 'add', 'head']);
    const whole = model.predict(x) as tf.Tensor;
    const mid = split.prefix.predict(x) as tf.Tensor;
    const composed = split.suffix.predict(mid) as tf.Tensor;
    expect(Array.from(composed.dataSync())).toEqual(Array.from(whole.dataSync()));
    // Shared layer objects: changing the suffix's head changes the model.
    expect(split.suffix.getLayer('head')).toBe(model.getLayer('head'));
    tf.dispose([whole, mid, composed]);
    split.dispose();
    expect(tf.memory().numTensors).toBe(start);
    const again = model.predict(x) as tf.Tensor;
    expect(again.shape).toEqual([3, 2]);
    tf.dispose([again, x]);
    expect(() => splitModel(model, 'branch')).toThrow(/layer branch does not separate the model/);
    expect(() => splitModel(model, 'nope')).toThrow(/the model has no such layer/);
    model.dispose();
  });

  test('the tfjs prefix runner gives the boundary outputs of the model and leaks nothing', async () => {
    const model = residual();
    const x = tf.randomNormal([3, 4], 0, 1, 'float32', 6);
    const expected = tf.tidy(() => splitModel(model, 'stem').prefix.predict(x) as tf.Tensor);
    const start = tf.memory().numTensors;
    const runner = await createPrefixRunner(model, 'stem', { engine: 'tfjs' });
    expect(runner.engine).toBe('tfjs wasm');
    expect(runner.outputShape).toEqual([6]);
    const out = await runner.run(x.dataSync() as Float32Array, 3);
    await runner.dispose();
    expect(tf.memory().numTensors).toBe(start);
    expect(Array.from(out)).toEqual(Array.from(expected.dataSync()));
    await expect(createPrefixRunner(model, 'stem', { engine: 'gpu' })).rejects.toThrow(/prefix engine must be one of auto, onnx, tfjs; received "gpu"/);
    tf.dispose([x, expected]);
    model.dispose();
  });
});
