import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { buildModel, constructModel } from '../src/models/build';
import { loadKerasWeights, loadH5wasm, readKerasH5Layers, writeKerasWeights } from '../src/models/keras-h5';
import { importKeras } from '../src/models/import-keras';
import { loadModelFolder } from '../src/io/model-folder';
import { tmpDir } from './helpers/tmp';
import { scrambleWeights } from './helpers/scramble';

async function weightsOf(model: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}

/** Index of the first differing value, or -1 (jest's toEqual walks typed arrays element by element: minutes on 20M). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  if (Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) return -1;
  return a.findIndex((v, i) => v !== b[i]);
}

async function predict(model: tf.LayersModel, shape: number[], seed: number): Promise<Float32Array> {
  const out = tf.tidy(() => model.predict(tf.randomUniform([1, ...shape], -1, 1, 'float32', seed)) as tf.Tensor);
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

/** Keras 1 / early Keras 2 counted automatic names from 1 (`conv2d_1` for the first); rename as such a session would. */
function kerasOneBased(name: string): string {
  const m = /^(conv2d|batch_normalization|activation|max_pooling2d|average_pooling2d|concatenate|add)(?:_(\d+))?$/.exec(name);
  return m ? `${m[1]}_${Number(m[2] ?? 0) + 1}` : name;
}

describe('Keras .h5 weights', () => {
  const dir = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('simple_cnn: a file written from one model loads into another and gives the same outputs; no leaks', async () => {
    const a = await buildModel({ arch: 'simple_cnn' });
    const b = await buildModel({ arch: 'simple_cnn' });
    const file = path.join(dir, 'simple.h5');
    await writeKerasWeights(file, a.model);
    expect(await predict(b.model, [28, 28, 1], 1)).not.toEqual(await predict(a.model, [28, 28, 1], 1));
    const start = tf.memory().numTensors;
    const report = await loadKerasWeights(b.model, file);
    expect(tf.memory().numTensors).toBe(start);
    expect(report).toEqual({ byName: 4, byOrder: 0, unused: [] });
    expect(await predict(b.model, [28, 28, 1], 1)).toEqual(await predict(a.model, [28, 28, 1], 1));
    a.model.dispose();
    b.model.dispose();
  });

  test('inception_v3 (all auto-named): model_weights layout, chunked attributes, 1-based names, matched by creation order', async () => {
    const shape = [75, 75, 3];
    const a = constructModel({ arch: 'inception_v3', includeTop: false, inputShape: shape }, { initializer: 'zeros' });
    const b = constructModel({ arch: 'inception_v3', includeTop: false, inputShape: shape }, { initializer: 'zeros' });
    scrambleWeights(a.model, 11);
    const file = path.join(dir, 'inception.h5');
    await writeKerasWeights(file, a.model, { layout: 'model_weights', chunkBytes: 512, rename: kerasOneBased });

    const h5 = await loadH5wasm();
    h5.FS!.writeFile('/check.h5', fs.readFileSync(file));
    const f = new h5.File('/check.h5', 'r');
    const attrs = Object.keys((f.get('model_weights') as unknown as { attrs: object }).attrs);
    f.close();
    h5.FS!.unlink('/check.h5');
    expect(attrs).toEqual(expect.arrayContaining(['layer_names0', 'layer_names1', 'layer_names2']));
    expect(attrs).not.toContain('layer_names');

    const layers = await readKerasH5Layers(file);
    expect(layers[0].name).toBe('conv2d_1');
    expect(layers.length).toBe(188);

    const report = await loadKerasWeights(b.model, file);
    expect(report).toEqual({ byName: 0, byOrder: 188, unused: [] });
    const [wa, wb] = [await weightsOf(a.model), await weightsOf(b.model)];
    expect(wb.map((w, i) => firstDifference(w, wa[i]))).toEqual(wa.map(() => -1));
    expect(await predict(b.model, shape, 2)).toEqual(await predict(a.model, shape, 2));
    a.model.dispose();
    b.model.dispose();
  });

  test('xception: named layers by name, the unnamed residual branch by order; a top file feeds a no-top model', async () => {
    const shape = [71, 71, 3];
    const a = constructModel({ arch: 'xception', includeTop: true, inputShape: shape }, { initializer: 'zeros' });
    const b = constructModel({ arch: 'xception', includeTop: false, inputShape: shape }, { initializer: 'zeros' });
    scrambleWeights(a.model, 5);
    const file = path.join(dir, 'xception-top.h5');
    await writeKerasWeights(file, a.model);
    const report = await loadKerasWeights(b.model, file);
    expect(report.byOrder).toBe(8);
    expect(report.unused).toEqual(['predictions']);
    const trunkOut = tf.model({ inputs: a.model.inputs, outputs: a.model.getLayer('block14_sepconv2_act').output as tf.SymbolicTensor });
    expect(await predict(b.model, shape, 3)).toEqual(await predict(trunkOut, shape, 3));
    await expect(loadKerasWeights(b.model, file, { strict: true })).rejects.toThrow(/layers the model does not use: predictions/);
    a.model.dispose();
    b.model.dispose();
  });

  test('resnet50 round trips by name', async () => {
    for (const arch of ['resnet50']) {
      const a = constructModel({ arch, includeTop: false, inputShape: [32, 32, 3] }, { initializer: 'zeros' });
      const b = constructModel({ arch, includeTop: false, inputShape: [32, 32, 3] }, { initializer: 'zeros' });
      scrambleWeights(a.model, 7);
      const file = path.join(dir, `${arch}.h5`);
      await writeKerasWeights(file, a.model);
      const report = await loadKerasWeights(b.model, file);
      expect(report.byOrder).toBe(0);
      expect(report.byName).toBe(a.model.layers.filter((l) => l.weights.length).length);
      expect(await predict(b.model, [32, 32, 3], 4)).toEqual(await predict(a.model, [32, 32, 3], 4));
      a.model.dispose();
      b.model.dispose();
    }
  });

  test('densenet121: every layer by name; the ImageNet files\' older names (conv1/conv, conv1/bn, fc1000) import as Keras 3\'s', async () => {
    const shape = [32, 32, 3];
    const a = constructModel({ arch: 'densenet121', inputShape: shape, classes: 5 }, { initializer: 'zeros' });
    scrambleWeights(a.model, 17);
    const file = path.join(dir, 'densenet.h5');
    await writeKerasWeights(file, a.model);
    const b = constructModel({ arch: 'densenet121', inputShape: shape, classes: 5 }, { initializer: 'zeros' });
    const report = await loadKerasWeights(b.model, file);
    expect(report).toEqual({ byName: a.model.layers.filter((l) => l.weights.length).length, byOrder: 0, unused: [] });
    expect(await predict(b.model, shape, 8)).toEqual(await predict(a.model, shape, 8));
    b.model.dispose();

    // keras-applications' densenet.py, which saved the ImageNet files Keras still downloads (same md5s), named these
    // layers so; h5py stores `conv1/conv` as group conv1 holding group conv.
    const legacy: Record<string, string> = { conv1_conv: 'conv1/conv', conv1_bn: 'conv1/bn', predictions: 'fc1000' };
    const old = path.join(dir, 'densenet-keras2.h5');
    await writeKerasWeights(old, a.model, { layout: 'model_weights', rename: (n) => legacy[n] ?? n });
    const layers = await readKerasH5Layers(old);
    expect(layers.map((l) => l.name)).toEqual(expect.arrayContaining(['conv1/conv', 'conv1/bn', 'fc1000']));
    expect(layers.map((l) => l.name)).not.toContain('conv1_conv');
    const c = constructModel({ arch: 'densenet121', inputShape: shape, classes: 5 }, { initializer: 'zeros' });
    // Slashed names map to underscores by themselves (MobileNetV3's files need that); fc1000 needs the alias.
    await expect(loadKerasWeights(c.model, old)).rejects.toThrow(/has no weights for layer predictions/);
    c.model.dispose();
    const imported = await importKeras(old, { arch: 'densenet121', includeTop: true, inputSize: 32, out: path.join(dir, 'densenet-imported') });
    expect(imported.report).toEqual(report);
    const { model } = await loadModelFolder(imported.dir);
    expect(model.outputs[0].shape).toEqual([null, 5]);
    expect(await predict(model, shape, 8)).toEqual(await predict(a.model, shape, 8));
    model.dispose();
    a.model.dispose();
  });

  test('inception_resnet_v2: named blocks by name, the 406 unnamed convs and batch norms by creation order (1-based Keras 2 names)', async () => {
    const shape = [75, 75, 3];
    const a = constructModel({ arch: 'inception_resnet_v2', includeTop: false, inputShape: shape }, { initializer: 'zeros' });
    const b = constructModel({ arch: 'inception_resnet_v2', includeTop: false, inputShape: shape }, { initializer: 'zeros' });
    scrambleWeights(a.model, 19);
    const file = path.join(dir, 'inception-resnet.h5');
    await writeKerasWeights(file, a.model, { rename: kerasOneBased });
    const layers = await readKerasH5Layers(file);
    expect(layers[0].name).toBe('conv2d_1');
    expect(layers.map((l) => l.name)).toContain('conv2d_203');
    const report = await loadKerasWeights(b.model, file);
    // 40 block convs, conv_7b and conv_7b_bn by name; every branch conv and its batch norm by order.
    expect(report).toEqual({ byName: 42, byOrder: 406, unused: [] });
    const [wa, wb] = [await weightsOf(a.model), await weightsOf(b.model)];
    expect(wb.map((w, i) => firstDifference(w, wa[i]))).toEqual(wa.map(() => -1));
    expect(await predict(b.model, shape, 9)).toEqual(await predict(a.model, shape, 9));
    a.model.dispose();
    b.model.dispose();
  });

  test('a Keras model nested as a layer (trunk inside a Sequential) is split into its layers and matched by name', async () => {
    const trunk = constructModel({ arch: 'simple_cnn', includeTop: false }, { initializer: 'zeros' });
    scrambleWeights(trunk.model, 13);
    const h5 = await loadH5wasm();
    const f = new h5.File('/nested.h5', 'w');
    f.create_attribute('layer_names', ['simple_cnn', 'flatten', 'dense'], [3], 'S10');
    const g = f.create_group('simple_cnn');
    const weighted = trunk.model.layers.filter((l) => l.weights.length);
    const names = weighted.flatMap((l) => l.weights.map((w) => `${l.name}/${w.originalName.split('/').pop()}:0`));
    g.create_attribute('weight_names', names, [names.length], 'S32');
    weighted.forEach((l) => {
      g.create_group(l.name);
      l.getWeights().forEach((v, i) => g.create_dataset({ name: `${l.name}/${l.weights[i].originalName.split('/').pop()}:0`, data: v.dataSync() as Float32Array, shape: v.shape, dtype: '<f' }));
    });
    f.create_group('flatten').create_attribute('weight_names', [], [0], 'S1');
    const d = f.create_group('dense');
    d.create_attribute('weight_names', ['dense/kernel:0', 'dense/bias:0'], [2], 'S16');
    d.create_group('dense');
    d.create_dataset({ name: 'dense/kernel:0', data: new Float32Array(3136 * 2), shape: [3136, 2], dtype: '<f' });
    d.create_dataset({ name: 'dense/bias:0', data: new Float32Array(2), shape: [2], dtype: '<f' });
    f.close();
    const file = path.join(dir, 'nested.h5');
    fs.writeFileSync(file, h5.FS!.readFile('/nested.h5'));
    h5.FS!.unlink('/nested.h5');

    const target = constructModel({ arch: 'simple_cnn', includeTop: false }, { initializer: 'zeros' });
    const report = await loadKerasWeights(target.model, file);
    expect(report).toEqual({ byName: 2, byOrder: 0, unused: ['dense'] });
    expect(await predict(target.model, [28, 28, 1], 6)).toEqual(await predict(trunk.model, [28, 28, 1], 6));
    trunk.model.dispose();
    target.model.dispose();
  });

  test('wrong shape, missing layer, truncated file and non-Keras files give one-line errors and change nothing', async () => {
    const small = await buildModel({ arch: 'simple_cnn', simpleCnn: { filters: [8, 16] } });
    const file = path.join(dir, 'small.h5');
    await writeKerasWeights(file, small.model);

    const other = await buildModel({ arch: 'simple_cnn', simpleCnn: { filters: [8, 12] } });
    const before = await weightsOf(other.model);
    await expect(loadKerasWeights(other.model, file)).rejects.toThrow(
      /layer block2_conv1 weight block2_conv1\/kernel:0 has shape \[3,3,8,16\] in the file but the model expects \[3,3,8,12\]/,
    );
    // block1_conv1 matches the file, yet nothing was assigned because validation precedes assignment.
    expect((await weightsOf(other.model)).map((w, i) => firstDifference(w, before[i]))).toEqual(before.map(() => -1));

    const deeper = await buildModel({ arch: 'simple_cnn', simpleCnn: { filters: [8, 16, 32] } });
    await expect(loadKerasWeights(deeper.model, file)).rejects.toThrow(/has no weights for layer block3_conv1 \(\[3,3,16,32\] \[32\]\)/);

    const truncated = path.join(dir, 'truncated.h5');
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const start = tf.memory().numTensors;
    await expect(loadKerasWeights(small.model, truncated)).rejects.toThrow(/truncated/);
    expect(tf.memory().numTensors).toBe(start);

    const notKeras = path.join(dir, 'not-keras.h5');
    const h5 = await loadH5wasm();
    const f = new h5.File('/not-keras.h5', 'w');
    f.create_group('layers');
    f.close();
    fs.writeFileSync(notKeras, h5.FS!.readFile('/not-keras.h5'));
    h5.FS!.unlink('/not-keras.h5');
    await expect(loadKerasWeights(small.model, notKeras)).rejects.toThrow(/not a Keras 2 weights file/);
    await expect(loadKerasWeights(small.model, path.join(dir, 'absent.h5'))).rejects.toThrow(/cannot read weights file .*no such file/);
    for (const m of [small, other, deeper]) m.model.dispose();
  });
});
