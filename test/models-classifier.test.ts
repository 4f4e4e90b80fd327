import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { createClassifier } from '../src/models/classifier';
import { constructModel } from '../src/models/build';
import { SIMPLE_CNN_DEFAULTS } from '../src/models/simple_cnn';
import { checkGroups } from '../src/models/groups';
import { writeKerasWeights } from '../src/models/keras-h5';
import { loadModelFolder, saveModelFolder } from '../src/io/model-folder';
import { tmpDir } from './helpers/tmp';
import { randomizeWeights } from './helpers/onnx-models';

async function values(t: tf.Tensor | tf.LayerVariable): Promise<number[]> {
  return Array.from(await ('read' in t ? t.read() : t).data());
}

async function run(model: tf.LayersModel, x: tf.Tensor): Promise<number[]> {
  const y = model.predict(x) as tf.Tensor;
  try {
    return Array.from(await y.data());
  } finally {
    y.dispose();
  }
}

describe('createClassifier', () => {
  const dir = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('a Keras .h5 trunk plus a head with hidden layers, dropout and leaky relu; groups end with head; no leaks', async () => {
    const start = tf.memory().numTensors;
    const donor = constructModel({ arch: 'vgg16', includeTop: false, inputShape: [32, 32, 3] }, { initializer: 'zeros' });
    randomizeWeights(donor.model, 3);
    const file = path.join(dir, 'vgg16-notop.h5');
    await writeKerasWeights(file, donor.model);

    const { model, meta } = await createClassifier({
      arch: 'vgg16',
      weights: file,
      inputShape: [32, 32, 3],
      classNames: ['cat', 'dog', 'fox'],
      head: { pooling: 'max', hidden: [16, 8], dropout: 0.25, activation: 'leaky_relu', outputActivation: 'sigmoid' },
    });
    expect(model.outputs[0].shape).toEqual([null, 3]);
    expect(meta).toMatchObject({ architecture: 'vgg16', preprocessing: 'caffe', inputShape: [32, 32, 3], classNames: ['cat', 'dog', 'fox'], outputActivation: 'sigmoid', weights: file });
    expect(meta.groups.map((g) => g.name)).toEqual(['block1', 'block2', 'block3', 'block4', 'block5', 'head']);
    expect(meta.groups.at(-1)!.layers).toEqual(['max_pool', 'fc1', 'fc1_act', 'fc1_dropout', 'fc2', 'fc2_act', 'fc2_dropout', 'predictions']);
    expect(model.getLayer('fc1_act').getClassName()).toBe('LeakyReLU');
    checkGroups(model, meta.groups);
    expect(await values(model.getLayer('block1_conv2').weights[1])).toEqual(await values(donor.model.getLayer('block1_conv2').weights[1]));
    expect(await values(model.getLayer('block5_conv3').weights[1])).toEqual(await values(donor.model.getLayer('block5_conv3').weights[1]));
    model.dispose();
    donor.model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  test('densenet121: the default head (average pooling, predictions) follows the trunk groups; torch preprocessing', async () => {
    const { model, meta } = await createClassifier({ arch: 'densenet121', inputShape: [32, 32, 3], classNames: ['a', 'b'] });
    try {
      expect(meta.groups.map((g) => g.name)).toEqual(['stem', 'conv2', 'conv3', 'conv4', 'conv5', 'head']);
      expect(meta.groups.at(-1)!.layers).toEqual(['avg_pool', 'predictions']);
      expect(meta.groups.at(-2)!.layers.at(-1)).toBe('relu');
      expect(meta.preprocessing).toBe('torch');
      expect(model.outputs[0].shape).toEqual([null, 2]);
      checkGroups(model, meta.groups);
    } finally {
      model.dispose();
    }
  });

  test('simple_cnn width, depth and batch norm are recorded in graft.json; the folder reloads and its trunk keeps the top', async () => {
    const start = tf.memory().numTensors;
    const simpleCnn = { filters: [8, 16], convsPerBlock: 2, batchNorm: true, dense: [24], dropout: 0.1 };
    const first = await createClassifier({ arch: 'simple_cnn', simpleCnn, classNames: ['a', 'b', 'c'] });
    expect(first.meta.groups.find((g) => g.name === 'block2')!.layers).toEqual([
      'block2_conv1', 'block2_conv1_bn', 'block2_conv1_act', 'block2_conv2', 'block2_conv2_bn', 'block2_conv2_act', 'block2_pool',
    ]);
    const folder = path.join(dir, 'wide-bn');
    await saveModelFolder(folder, first.model, first.meta);
    const saved = JSON.parse(fs.readFileSync(path.join(folder, 'graft.json'), 'utf8'));
    expect(saved.simpleCnn).toEqual({ ...SIMPLE_CNN_DEFAULTS, ...simpleCnn });

    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 7);
    const reloaded = await loadModelFolder(folder);
    expect(await run(reloaded.model, x)).toEqual(await run(first.model, x));
    // A new head on the saved trunk defaults to that trunk's own top (dense 24, dropout 0.1), not the default simple_cnn's.
    const second = await createClassifier({ weights: folder, classNames: ['x', 'y'] });
    expect(second.model.getLayer('fc1').weights[0].shape).toEqual([7 * 7 * 16, 24]);
    expect(second.meta.head).toMatchObject({ hidden: [24], dropout: 0.1 });
    expect(second.meta.simpleCnn).toEqual(saved.simpleCnn);
    // Folders written before the options were recorded stay the default simple_cnn.
    const committed = await createClassifier({ weights: path.join(__dirname, '..', 'models', 'fashion-mnist-0-4'), classNames: ['x', 'y'] });
    expect(committed.model.getLayer('fc1').weights[0].shape).toEqual([7 * 7 * 64, 128]);
    for (const m of [first.model, reloaded.model, second.model, committed.model]) m.dispose();
    x.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  test('the trunk of a saved simple_cnn model folder: head dropped, trunk weights, architecture and preprocessing kept', async () => {
    const start = tf.memory().numTensors;
    const first = await createClassifier({ arch: 'simple_cnn', classNames: ['t-shirt', 'trouser', 'pullover', 'dress', 'coat'] });
    randomizeWeights(first.model, 9);
    const folder = path.join(dir, 'fashion-0-4');
    await saveModelFolder(folder, first.model, first.meta);

    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 5);
    const trunkOf = (m: tf.LayersModel) => tf.model({ inputs: m.inputs, outputs: m.getLayer('block2_pool').output as tf.SymbolicTensor });
    const second = await createClassifier({ weights: folder, classNames: ['sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'], head: { hidden: [32] } });
    expect(second.meta).toMatchObject({ architecture: 'simple_cnn', preprocessing: 'unit', inputShape: [28, 28, 1], weights: folder });
    expect(second.meta.groups.map((g) => g.name)).toEqual(['block1', 'block2', 'head']);
    expect(second.meta.groups.at(-1)!.layers).toEqual(['flatten', 'fc1', 'fc1_act', 'fc1_dropout', 'predictions']);
    expect(second.model.getLayer('fc1').weights[0].shape).toEqual([7 * 7 * 64, 32]);
    checkGroups(second.model, second.meta.groups);
    expect(await run(trunkOf(second.model), x)).toEqual(await run(trunkOf(first.model), x));

    // The new classifier saves and reloads like any model, and its outputs survive the round trip.
    const out = path.join(dir, 'fashion-5-9');
    await saveModelFolder(out, second.model, second.meta);
    const reloaded = await loadModelFolder(out);
    expect(await run(reloaded.model, x)).toEqual(await run(second.model, x));
    expect(reloaded.meta.classNames).toEqual(['sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']);
    for (const m of [first.model, second.model, reloaded.model]) m.dispose();
    x.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  test('bad options are one-line errors naming the value and the valid ones', async () => {
    await expect(createClassifier({ arch: 'simple_cnn', classNames: ['a', 'b'], head: { pooling: 'mean' as 'avg' } })).rejects.toThrow(
      /head.pooling must be one of avg, max, flatten; received "mean"/,
    );
    await expect(createClassifier({ arch: 'simple_cnn', classNames: ['a', 'b'], head: { activation: 'gelu' as 'relu' } })).rejects.toThrow(
      /head.activation must be one of relu, leaky_relu, tanh, sigmoid, elu/,
    );
    await expect(createClassifier({ arch: 'simple_cnn', classNames: [] })).rejects.toThrow(/classNames must be a non-empty list/);
    await expect(createClassifier({ arch: 'simple_cnn', classNames: ['a', 'a'] })).rejects.toThrow(/classNames must be unique/);
    await expect(createClassifier({ classNames: ['a'] })).rejects.toThrow(/needs arch/);
    const folder = path.join(dir, 'fashion-0-4');
    await expect(createClassifier({ weights: folder, arch: 'resnet50', classNames: ['a'] })).rejects.toThrow(/holds a simple_cnn model but arch is resnet50/);
    await expect(createClassifier({ weights: folder, inputShape: [32, 32, 1], classNames: ['a'] })).rejects.toThrow(/takes input \[28,28,1\]/);
    await expect(createClassifier({ arch: 'simple_cnn', classNames: ['a'], head: { hiden: [3] } as never })).rejects.toThrow(/head has no option "hiden"/);
  });
});
