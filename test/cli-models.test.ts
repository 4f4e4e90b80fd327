import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { constructModel } from '../src/models/build';
import { writeKerasWeights } from '../src/models/keras-h5';
import { extractFeatures, FeatureExtractor } from '../src/eval/features';
import { listArchitectures } from '../src/models/registry';
import { loadModelFolder } from '../src/io/model-folder';
import { loadImage } from '../src/data/image';
import { architectureRows, formatCount, formatMultiplyAdds } from '../src/cli/commands/models';
import { runCli } from './helpers/run-cli';
import { patternFile } from './helpers/data-fixtures';
import { scrambleWeights } from './helpers/scramble';
import { tmpDir } from './helpers/tmp';

describe('graft models / summary / import-keras / features', () => {
  const dir = tmpDir();
  const images = path.join(dir, 'images');
  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
    fs.mkdirSync(path.join(images, 'sub'), { recursive: true });
    await patternFile(path.join(images, 'a.png'), 40, 30);
    await patternFile(path.join(images, 'b.jpg'), 20, 50, 'jpeg');
    await patternFile(path.join(images, 'sub', 'c.png'), 64, 64);
    fs.writeFileSync(path.join(images, 'notes.txt'), 'not an image');
  });

  test('models: a table of every architecture with Keras sizes, parameter counts and preprocessing; --json', async () => {
    const text = await runCli('models');
    expect(text.code).toBe(0);
    // VGG16's 15.47 G is the figure the literature gives (15.5 G); ResNet50 v1 (stride in the 1x1 conv) is 3.86 G.
    expect(text.out).toMatch(/^vgg16 +VGG16 +224 +32 +138,357,544 +14,714,688 +15\.47 G +caffe +yes$/m);
    expect(text.out).toMatch(/^resnet50 +ResNet50 +224 +32 +25,636,712 +23,587,712 +3\.86 G +caffe +yes$/m);
    expect(text.out).toMatch(/^inception_v3 +InceptionV3 +299 +75 +23,851,784 +21,802,784 +5\.71 G +tf +yes$/m);
    expect(text.out).toMatch(/^densenet121 +DenseNet121 +224 +32 +8,062,504 +7,037,504 +2\.83 G +torch +yes$/m);
    expect(text.out).toMatch(/^inception_resnet_v2 +InceptionResNetV2 +299 +75 +55,873,736 +54,336,736 +13\.16 G +tf +yes$/m);
    expect(text.out).toMatch(/^mobilenet_v2 +MobileNetV2 +224 +32 +3,538,984 +2,257,984 +301 M +tf +yes$/m);
    expect(text.out).toMatch(/^efficientnet_b0 +EfficientNetB0 +224 +32 +5,330,571 +4,049,571 +386 M +none +yes$/m);
    expect(text.out).toMatch(/^simple_cnn +graft +28 +8 +- +- +4\.2 M +unit +no$/m);
    const json = JSON.parse((await runCli('models', '--json')).out);
    expect(json.map((r: { name: string }) => r.name)).toEqual(listArchitectures().map((s) => s.name));
    expect(json.find((r: { name: string }) => r.name === 'resnet152v2')).toMatchObject({ paramsWithTop: 60_380_648, paramsWithoutTop: 58_331_648, preprocessing: 'tf' });
    // torchvision's DenseNets are the same networks: forward hooks on its convs and linear layers at 224 count these.
    const macs = Object.fromEntries(json.map((r: { name: string; multiplyAdds: number }) => [r.name, r.multiplyAdds]));
    expect([macs.densenet121, macs.densenet169, macs.densenet201]).toEqual([2_834_161_664, 3_359_843_328, 4_291_365_888]);
    expect(json.find((r: { name: string }) => r.name === 'densenet201')).toMatchObject({ paramsWithTop: 20_242_984, paramsWithoutTop: 18_321_984, preprocessing: 'torch' });
  });

  test('the README zoo table is what graft models computes', async () => {
    const rows = architectureRows();
    const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    for (const r of rows) {
      const params = (n: number | null) => (n === null ? 'configurable' : formatCount(n));
      const line = `| \`${r.name}\` | ${r.keras} | ${r.defaultInputSize} (${r.minInputSize}) | ${params(r.paramsWithTop)} | ${params(r.paramsWithoutTop)} | ${formatMultiplyAdds(r.multiplyAdds)} | ${r.preprocessing} |`;
      expect(readme).toContain(line);
    }
  });

  test('summary: layers, shapes, params, trainable flags and groups; errors name the valid values', async () => {
    const r = await runCli('--quiet', 'summary', 'resnet50', '--input-size', '32', '--no-top', '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.totalParams).toBe(23_587_712);
    expect(s.trainableParams).toBe(23_534_592);
    expect(s.groups).toEqual(['stem', 'conv2', 'conv3', 'conv4', 'conv5']);
    expect(s.layers.find((l: { name: string }) => l.name === 'conv5_block3_out')).toEqual({
      name: 'conv5_block3_out', className: 'Activation', outputShape: [1, 1, 2048], params: 0, trainable: true, group: 'conv5',
    });
    const text = await runCli('--quiet', 'summary', 'xception', '--input-size', '71');
    expect(text.out).toMatch(/^block14_sepconv2_act \(Activation\) +\(None, 3, 3, 2048\) +0 +yes +exit$/m);
    expect(text.out).toMatch(/^total params: 22,910,480$/m);
    expect(text.out).toMatch(/groups: stem \(\d+ layers, [\d,]+ params\), entry .* head \(2 layers, 2,049,000 params\)/);

    const bad = await runCli('--quiet', 'summary', 'vgg99');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^graft: architecture must be one of vgg16, .*; received "vgg99"\.\n$/);
    const small = await runCli('--quiet', 'summary', 'inception_v3', '--input-size', '50', '--no-top');
    expect(small.err).toMatch(/^graft: inception_v3 needs input at least 75x75; received 50x50\. Use an input size of 75 or more\.\n$/);
  });

  test('import-keras writes a model folder with the file weights; features reads its trunk with its own preprocessing', async () => {
    const donor = constructModel({ arch: 'simple_cnn' }, { initializer: 'zeros' });
    scrambleWeights(donor.model, 21);
    const file = path.join(dir, 'fashion.h5');
    await writeKerasWeights(file, donor.model, { layout: 'model_weights' });
    const out = path.join(dir, 'imported');
    const r = await runCli('--quiet', 'import-keras', file, '--arch', 'simple_cnn', '--top', '--out', out);
    expect(r).toMatchObject({ code: 0, err: '' });
    const folder = await loadModelFolder(out);
    expect(folder.meta).toMatchObject({ architecture: 'simple_cnn', preprocessing: 'unit', inputShape: [28, 28, 1], classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
    const x = tf.randomUniform([1, 28, 28, 1], 0, 1, 'float32', 1);
    const [ya, yb] = [donor.model.predict(x) as tf.Tensor, folder.model.predict(x) as tf.Tensor];
    expect(Array.from(await yb.data())).toEqual(Array.from(await ya.data()));
    tf.dispose([x, ya, yb]);

    const summary = JSON.parse((await runCli('--quiet', 'summary', out, '--json')).out);
    expect(summary).toMatchObject({ architecture: 'simple_cnn', totalParams: 421_642, trainableParams: 421_642, groups: ['block1', 'block2', 'head'] });
    expect((await runCli('--quiet', 'summary', out, '--no-top')).err).toMatch(/--input-size and --no-top apply to architectures/);

    const wrong = await runCli('--quiet', 'import-keras', file, '--arch', 'vgg16', '--out', path.join(dir, 'wrong'));
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/^graft: .*fashion\.h5 has no weights for layer block1_conv2 \(\[3,3,64,64\] \[64\]\); the file was saved from a different architecture\. Check --arch and --top\.\n$/);
    expect(fs.existsSync(path.join(dir, 'wrong'))).toBe(false);

    const csv = await runCli('--quiet', 'features', '--weights', out, images, '--format', 'csv');
    expect(csv.code).toBe(0);
    const lines = csv.out.trim().split('\n');
    expect(lines[0]).toBe(['file', ...Array.from({ length: 64 }, (_, i) => `f${i}`)].join(','));
    expect(lines.slice(1).map((l) => path.relative(images, l.split(',')[0]))).toEqual(['a.png', 'b.jpg', path.join('sub', 'c.png')]);
    // The same numbers by hand: unit preprocessing, the trunk (block2_pool), global average over the 7x7 map.
    const raw = await loadImage(path.join(images, 'b.jpg'), { inputShape: [28, 28, 1] });
    const trunk = tf.model({ inputs: folder.model.inputs, outputs: folder.model.getLayer('block2_pool').output as tf.SymbolicTensor });
    const expected = tf.tidy(() => (trunk.predict(tf.tensor4d(raw, [1, 28, 28, 1]).div(255)) as tf.Tensor).mean([1, 2]).dataSync());
    const got = lines[2].split(',').slice(1).map(Number);
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));

    const before = tf.memory().numTensors;
    const json = JSON.parse((await runCli('--quiet', 'features', '--weights', out, '--pooling', 'max', path.join(images, 'a.png'))).out);
    expect(tf.memory().numTensors).toBe(before);
    expect(json).toHaveLength(1);
    expect(json[0].features).toHaveLength(64);
    folder.model.dispose();
    donor.model.dispose();

    const noArch = await runCli('--quiet', 'features', '--weights', 'none', images);
    expect(noArch.err).toMatch(/--arch is required unless --weights is a graft model folder/);
    const noImages = await runCli('--quiet', 'features', '--weights', out, path.join(dir, 'nothing-here'));
    expect(noImages.err).toMatch(/image .*nothing-here does not exist/);
  });

  test('features with an ImageNet architecture and a Keras .h5 trunk', async () => {
    const donor = constructModel({ arch: 'vgg16', includeTop: false, inputShape: [32, 32, 3] }, { initializer: 'zeros' });
    scrambleWeights(donor.model, 4);
    const file = path.join(dir, 'vgg16-notop.h5');
    await writeKerasWeights(file, donor.model);
    donor.model.dispose();
    const r = await runCli('--quiet', 'features', '--arch', 'vgg16', '--weights', file, '--input-size', '32', images);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out) as { file: string; features: number[] }[];
    expect(rows.map((row) => row.features.length)).toEqual([512, 512, 512]);
    expect(rows[0].features).not.toEqual(rows[1].features);
  });

  test('extractFeatures works for every architecture (minimum input size, own preprocessing); no leaks', async () => {
    const start = tf.memory().numTensors;
    // Width variants share their family's code; at 32 px the narrowest (mobilenet_0.25) loses all input signal under
    // these small scrambled weights, so its features for different images come out bit-identical.
    for (const spec of listArchitectures().filter((a) => !a.variantOf)) {
      const s = spec.minInputSize;
      const channels = spec.name === 'simple_cnn' ? 1 : 3;
      const { model, meta } = constructModel({ arch: spec.name, includeTop: false, pooling: 'avg', inputShape: [s, s, channels] }, { initializer: 'zeros' });
      scrambleWeights(model, 8);
      const dim = model.outputs[0].shape[1] as number;
      const extractor: FeatureExtractor = { model, inputShape: meta.inputShape, preprocessing: meta.preprocessing, architecture: spec.name, dim, dispose: () => model.dispose() };
      const { files, features } = await extractFeatures(extractor, [images], { batchSize: 3 });
      expect(files).toHaveLength(3);
      expect(features.map((f) => f.length)).toEqual([dim, dim, dim]);
      expect(features[0]).not.toEqual(features[2]);
      extractor.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
