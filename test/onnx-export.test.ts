/**
 * @jest-environment ./test/helpers/onnx-environment.js
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { onnx } from 'onnx-proto';
import { initBackend } from '../src/backend';
import { saveModelFolder } from '../src/io/model-folder';
import { GraftMetaInit } from '../src/io/graft-json';
import { exportModelFolderOnnx, exportOnnx } from '../src/onnx/export';
import { spatialPads } from '../src/onnx/layers';
import { createOnnxSession, runSession } from '../src/engine/onnx-runtime';
import { GraftError } from '../src/errors';
import { main } from '../src/cli/main';
import { convZoo, flattenHead, randomizeWeights, relativeError, sequentialFeatures } from './helpers/onnx-models';
import { tmpDir } from './helpers/tmp';

/** Runs the tfjs model and its ONNX export on the same random batch; returns both outputs. */
async function bothEngines(model: tf.LayersModel, options: { foldBatchNorm?: boolean; batch?: number } = {}) {
  const batch = options.batch ?? 3;
  const shape = [batch, ...(model.inputs[0].shape.slice(1) as number[])];
  const x = tf.randomUniform(shape, -2, 2, 'float32', 11);
  const ref = model.predict(x) as tf.Tensor;
  const expected = (await ref.data()) as Float32Array;
  const input = (await x.data()) as Float32Array;
  tf.dispose([x, ref]);
  const exported = await exportOnnx(model, { foldBatchNorm: options.foldBatchNorm });
  const { session } = await createOnnxSession(exported.bytes, { threads: 1 });
  const actual = await runSession(session, input, shape);
  await session.release();
  return { actual, expected, exported, outShape: ref.shape };
}

describe('ONNX export', () => {
  const root = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test("TF 'same' padding: ceil(in / stride) outputs, the odd pixel of padding at the end", () => {
    expect(spatialPads(16, 3, 2, 1, 'same')).toEqual({ before: 0, after: 1, out: 8 });
    expect(spatialPads(15, 3, 2, 1, 'same')).toEqual({ before: 1, after: 1, out: 8 });
    expect(spatialPads(224, 7, 2, 1, 'same')).toEqual({ before: 2, after: 3, out: 112 });
    expect(spatialPads(7, 3, 1, 2, 'same')).toEqual({ before: 2, after: 2, out: 7 });
    expect(spatialPads(7, 3, 2, 1, 'valid')).toEqual({ before: 0, after: 0, out: 3 });
  });

  test.each([
    ['every conv, pooling, merge and activation layer', convZoo],
    ['Flatten over feature maps, Reshape, Cropping, Dense on rank 3', flattenHead],
    ['a Sequential model with a feature-map output', sequentialFeatures],
  ])('%s: onnxruntime matches tfjs to 1e-4 relative', async (_what, make) => {
    const model = make();
    randomizeWeights(model, 3);
    const { actual, expected, exported } = await bothEngines(model);
    expect(relativeError(actual, expected)).toBeLessThan(1e-4);
    expect(exported.inputs[0].shape).toEqual([null, ...model.inputs[0].shape.slice(1)]);
    expect(exported.outputs[0].shape).toEqual([null, ...model.outputs[0].shape.slice(1)]);
    model.dispose();
  });

  test('BatchNormalization folds into the conv before it, and folded and unfolded graphs agree', async () => {
    const model = convZoo();
    randomizeWeights(model, 4);
    const folded = await bothEngines(model);
    const plain = await bothEngines(model, { foldBatchNorm: false });
    // bn1, bn_dw, bn_project follow convs; bn_fc follows a Dense and stays a BatchNormalization node.
    expect(folded.exported.foldedBatchNorms).toBe(3);
    expect(plain.exported.foldedBatchNorms).toBe(0);
    const ops = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType);
    expect(ops(folded.exported.bytes).filter((o) => o === 'BatchNormalization')).toHaveLength(1);
    expect(ops(plain.exported.bytes).filter((o) => o === 'BatchNormalization')).toHaveLength(4);
    expect(relativeError(folded.actual, plain.actual)).toBeLessThan(1e-5);
    expect(relativeError(folded.actual, folded.expected)).toBeLessThan(1e-4);
    model.dispose();
  });

  test('the graph transposes to NCHW once at the input and keeps NCHW between convolutions', async () => {
    const model = convZoo();
    const { bytes } = await exportOnnx(model);
    const graph = onnx.ModelProto.decode(bytes).graph!;
    // One at the input, one back to NHWC for the Flatten.
    expect(graph.node!.filter((n) => n.opType === 'Transpose')).toHaveLength(2);
    const m = onnx.ModelProto.decode(bytes);
    expect(Number(m.opsetImport![0].version)).toBe(17);
    expect(graph.input![0].name).toBe('image');
    expect(graph.output![0].name).toBe('predictions');
    model.dispose();
  });

  test('exportOnnx does not leak tensors', async () => {
    const model = flattenHead();
    await exportOnnx(model);
    const start = tf.memory().numTensors;
    await exportOnnx(model);
    expect(tf.memory().numTensors).toBe(start);
    model.dispose();
  });

  test('an unsupported layer is an error naming the layer and its class', async () => {
    const input = tf.input({ shape: [4, 4, 2] });
    const up = tf.layers.upSampling2d({ size: [2, 2], name: 'grow' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: up });
    const err = await exportOnnx(model).catch((e) => e);
    expect(err).toBeInstanceOf(GraftError);
    expect(err.message).toMatch(/^cannot export layer "grow" \(UpSampling2D\) to ONNX; supported layers: InputLayer, Conv2D, .*--engine tfjs/);
    model.dispose();
  });

  test('graft export of a model folder writes a file onnxruntime loads (default name beside the model)', async () => {
    const model = flattenHead();
    randomizeWeights(model, 5);
    const meta: GraftMetaInit = { architecture: 'custom', inputShape: [10, 9, 2], preprocessing: 'unit', classNames: ['a', 'b'], outputActivation: 'sigmoid', groups: [] };
    const dir = path.join(root, 'folder');
    await saveModelFolder(dir, model, meta);
    const { file } = await exportModelFolderOnnx(dir);
    expect(file).toBe(path.join(dir, 'model.onnx'));
    const out = path.join(root, 'elsewhere', 'm.onnx');
    await exportModelFolderOnnx(dir, { out });
    expect(Buffer.compare(fs.readFileSync(file), fs.readFileSync(out))).toBe(0);
    const x = tf.randomUniform([2, 10, 9, 2], 0, 1, 'float32', 1);
    const expected = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const { session } = await createOnnxSession(out, { threads: 1 });
    expect(relativeError(await runSession(session, x.dataSync() as Float32Array, [2, 10, 9, 2]), expected)).toBeLessThan(1e-4);
    await session.release();
    x.dispose();
    model.dispose();
  });

  test('graft export --onnx writes the file, --verify compares with tfjs, and a missing folder is one line', async () => {
    const model = convZoo();
    randomizeWeights(model, 6);
    const dir = path.join(root, 'cli');
    await saveModelFolder(dir, model, { architecture: 'custom', inputShape: [13, 11, 3], preprocessing: 'none', classNames: ['a', 'b', 'c', 'd'], outputActivation: 'softmax', groups: [] });
    model.dispose();
    const run = async (...args: string[]) => {
      let stdout = '';
      let stderr = '';
      const out = jest.spyOn(process.stdout, 'write').mockImplementation((c) => ((stdout += String(c)), true));
      const err = jest.spyOn(process.stderr, 'write').mockImplementation((c) => ((stderr += String(c)), true));
      try {
        return { code: await main(['node', 'graft', '--backend', 'wasm', ...args]), stdout, stderr };
      } finally {
        out.mockRestore();
        err.mockRestore();
      }
    };
    const file = path.join(root, 'cli.onnx');
    const ok = await run('export', '--onnx', dir, '--out', file, '--verify', '3');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^wrote .*cli\.onnx \([\d.]+ MiB, opset 17, 3 BatchNormalization folded\)\ninput "image" \[batch, 13, 11, 3\] NHWC float32, preprocessed as "none"; output "predictions" \[batch, 4\]\n/);
    const err = Number(/max relative error ([\d.e+-]+)/.exec(ok.stdout)![1]);
    expect(err).toBeLessThan(1e-4);
    expect(fs.statSync(file).size).toBeGreaterThan(1000);
    const missing = await run('export', '--onnx', path.join(root, 'nope'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^graft: model folder .*nope does not exist; pass the folder graft train or graft import-keras wrote\.\n$/);
  });
});
