import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { loadModelFolder, saveModelFolder, recoverInterruptedSwap, MODEL_JSON } from '../src/io/model-folder';
import { GraftMetaInit, readGraftMeta } from '../src/io/graft-json';
import { GraftError } from '../src/errors';
import { tmpDir } from './helpers/tmp';

function smallModel(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 4, kernelSize: 3, kernelInitializer: tf.initializers.glorotUniform({ seed }) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ name: 'relu1', activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'predictions', units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'small' });
}

const meta: GraftMetaInit = {
  architecture: 'custom',
  inputShape: [8, 8, 3],
  preprocessing: 'unit',
  classNames: ['a', 'b', 'c'],
  outputActivation: 'softmax',
  groups: [
    { name: 'stem', layers: ['conv1', 'bn1', 'relu1'] },
    { name: 'head', layers: ['pool', 'predictions'] },
  ],
  weights: null,
  training: { epochs: 3, note: 'kept on round trip' },
};

describe('model folder', () => {
  const root = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('round trip: identical predictions, graft.json preserved, no leaked tensors', async () => {
    const model = smallModel(1);
    const dir = path.join(root, 'round');
    const x = tf.randomUniform([2, 8, 8, 3], 0, 1, 'float32', 7);
    const before = model.predict(x) as tf.Tensor;
    const saved = await saveModelFolder(dir, model, meta, { shardBytes: 100 });
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).length).toBeGreaterThan(1);

    const start = tf.memory().numTensors;
    const loaded = await loadModelFolder(dir);
    const after = loaded.model.predict(x) as tf.Tensor;
    expect(Array.from(await after.data())).toEqual(Array.from(await before.data()));
    expect(loaded.meta).toEqual(saved);
    expect(loaded.meta.training).toEqual({ epochs: 3, note: 'kept on round trip' });
    expect(loaded.meta.graftVersion).toMatch(/^\d+\.\d+\.\d+/);
    after.dispose();
    loaded.model.dispose();
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([x, before]);
    model.dispose();
  });

  test('a saved folder loads with stock tf.loadLayersModel and a plain in-memory handler', async () => {
    const model = smallModel(2);
    const dir = path.join(root, 'stock');
    await saveModelFolder(dir, model, meta);
    const json = JSON.parse(fs.readFileSync(path.join(dir, MODEL_JSON), 'utf8'));
    const weightData = Buffer.concat(json.weightsManifest[0].paths.map((p: string) => fs.readFileSync(path.join(dir, p))));
    const stock = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
      }),
    );
    const classes = new Set<string>();
    const walk = (layers: Array<{ class_name: string }>) => layers.forEach((l) => classes.add(l.class_name));
    walk(json.modelTopology.config.layers);
    expect([...classes].sort()).toEqual(['Activation', 'BatchNormalization', 'Conv2D', 'Dense', 'GlobalAveragePooling2D', 'InputLayer']);
    const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 3);
    expect(Array.from((stock.predict(x) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(x) as tf.Tensor).dataSync()));
  });

  test('a save that fails part-way leaves the previous folder intact and no staging folder behind', async () => {
    const dir = path.join(root, 'atomic');
    const first = smallModel(3);
    await saveModelFolder(dir, first, meta, { files: { 'history.json': '[1]' } });
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'user file');
    const snapshot = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));

    await expect(
      saveModelFolder(dir, smallModel(4), { ...meta, classNames: ['x', 'y', 'z'] }, {
        files: { 'history.json': '[1,2]' },
        beforeSwap: () => {
          throw new Error('disk full');
        },
      }),
    ).rejects.toThrow('disk full');
    const now = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
    expect(now).toEqual(snapshot);
    expect(fs.readdirSync(root).filter((e) => e.includes('.tmp-'))).toEqual([]);

    // A later successful save replaces the model but keeps files graft did not write.
    await saveModelFolder(dir, smallModel(5), { ...meta, classNames: ['x', 'y', 'z'] });
    expect(readGraftMeta(dir).classNames).toEqual(['x', 'y', 'z']);
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('user file');
    expect(fs.readFileSync(path.join(dir, 'history.json'), 'utf8')).toBe('[1]');
  });

  test('a crash between the swap renames is recovered: the last complete save loads', async () => {
    const dir = path.join(root, 'swap');
    const model = smallModel(6);
    await saveModelFolder(dir, model, meta);
    // What a kill between `rename(dir, old)` and `rename(tmp, dir)` leaves behind.
    const old = path.join(root, '.swap.old-123-abcd');
    const staged = path.join(root, '.swap.tmp-123-abcd');
    fs.renameSync(dir, old);
    fs.mkdirSync(staged);
    fs.writeFileSync(path.join(staged, MODEL_JSON), '{"trunc');
    expect(fs.existsSync(dir)).toBe(false);
    const loaded = await loadModelFolder(dir);
    expect(loaded.meta.classNames).toEqual(['a', 'b', 'c']);
    expect(fs.existsSync(old)).toBe(false);
    recoverInterruptedSwap(dir);
    expect(fs.existsSync(dir)).toBe(true);
  });

  test('damaged or foreign folders give one clear error each', async () => {
    const dir = path.join(root, 'damaged');
    await saveModelFolder(dir, smallModel(7), meta);
    await expect(loadModelFolder(path.join(root, 'nope'))).rejects.toThrow(/model folder .*nope does not exist/);

    fs.rmSync(path.join(dir, 'graft.json'));
    await expect(loadModelFolder(dir)).rejects.toThrow(/has no graft\.json; it is not a graft model folder/);

    await saveModelFolder(dir, smallModel(7), meta);
    const shard = fs.readdirSync(dir).find((f) => f.endsWith('.bin'))!;
    fs.truncateSync(path.join(dir, shard), 10);
    const err = await loadModelFolder(dir).catch((e) => e);
    expect(err).toBeInstanceOf(GraftError);
    expect(err.message).toMatch(/weight files hold 10 bytes but model.json describes \d+/);

    fs.writeFileSync(path.join(dir, 'graft.json'), JSON.stringify({ format: 'graft-model', formatVersion: 1, inputShape: [8, 8], preprocessing: 'unit' }));
    expect(() => readGraftMeta(dir)).toThrow(/inputShape must be \[height, width, channels\]; received \[8,8\]/);
  });
});
