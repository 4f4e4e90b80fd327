/**
 * Saved models of the DenseNet and Inception-ResNet V2 families load with stock tfjs alone: a child Node process that
 * requires nothing but @tensorflow/tfjs (no graft module, so none of graft's registrations) loads the folder's
 * model.json and weight shards with tf.loadLayersModel and predicts what graft predicts.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { constructModel } from '../src/models/build';
import { saveModelFolder } from '../src/io/model-folder';
import { randomizeWeights, relativeError } from './helpers/onnx-models';
import { tmpDir } from './helpers/tmp';

/** Runs in the child: stock tfjs on its cpu backend, the folder read with fs, raw float32 in and out. */
const STOCK_SCRIPT = `
const fs = require('fs');
const path = require('path');
const tf = require(${JSON.stringify(require.resolve('@tensorflow/tfjs'))});
(async () => {
  const [dir, inFile, outFile] = process.argv.slice(1);
  await tf.setBackend('cpu');
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const data = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
  }));
  const raw = fs.readFileSync(inFile);
  const x = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [1, ...model.inputs[0].shape.slice(1)]);
  const y = model.predict(x);
  fs.writeFileSync(outFile, Buffer.from((await y.data()).buffer));
})().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
`;

describe('stock tf.loadLayersModel loads the new families with no graft code', () => {
  const dir = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test.each([
    ['densenet121', 32],
    ['inception_resnet_v2', 75],
  ] as const)('%s at %i px: only layer classes stock tfjs registers, and the same pooled features', async (arch, size) => {
    // Pooled trunk features rather than a softmax, which random weights saturate into a near one-hot vector.
    const { model, meta } = constructModel({ arch, includeTop: false, pooling: 'avg', inputShape: [size, size, 3] }, { initializer: 'zeros' });
    const folder = path.join(dir, arch);
    try {
      randomizeWeights(model, 7);
      await saveModelFolder(folder, model, meta);
      const input = tf.randomUniform([1, size, size, 3], -1, 1, 'float32', 5);
      const expected = tf.tidy(() => (model.predict(input) as tf.Tensor).dataSync() as Float32Array);
      const inFile = path.join(dir, `${arch}.in`);
      fs.writeFileSync(inFile, Buffer.from((input.dataSync() as Float32Array).buffer));
      input.dispose();
      const outFile = path.join(dir, `${arch}.out`);
      await promisify(execFile)(process.execPath, ['-e', STOCK_SCRIPT, folder, inFile, outFile], { maxBuffer: 1 << 20 });
      const raw = fs.readFileSync(outFile);
      const stock = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      expect(stock).toHaveLength(arch === 'densenet121' ? 1024 : 1536);
      // The child computes on tfjs's cpu kernels, graft on wasm (XNNPACK): equal up to float rounding.
      expect(relativeError(stock, expected)).toBeLessThan(1e-4);
      const classes = new Set((JSON.parse(fs.readFileSync(path.join(folder, 'model.json'), 'utf8')).modelTopology.config.layers as Array<{ class_name: string }>).map((l) => l.class_name));
      const expectedClasses = ['Activation', 'AveragePooling2D', 'BatchNormalization', 'Concatenate', 'Conv2D', 'GlobalAveragePooling2D', 'InputLayer', 'MaxPooling2D'];
      expect([...classes].sort()).toEqual(arch === 'densenet121' ? [...expectedClasses, 'ZeroPadding2D'].sort() : [...expectedClasses, 'Add', 'Rescaling'].sort());
    } finally {
      model.dispose();
    }
    // The child's cpu kernels are plain JavaScript: Inception-ResNet V2 at 75 px takes seconds there, more on a busy machine.
  }, 300_000);
});
