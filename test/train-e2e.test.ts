import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { batches } from '../src/data/batches';
import { openDataset, splitDataset } from '../src/data/dataset';
import { loadModelFolder } from '../src/io/model-folder';
import { trainOptionsFromCli } from '../src/cli/commands/train';
import { TrainOptions } from '../src/train/fine-tune';
import { train } from '../src/engine/training';
import { tmpDir } from './helpers/tmp';

// onnxruntime's type checks reject typed arrays from jest's sandbox realm, so these tests run the frozen trunk on tfjs.
const SOURCE = path.join(__dirname, '..', 'datasets', 'fashion-mnist-0-4', 'train');
const TARGET = path.join(__dirname, '..', 'datasets', 'fashion-mnist-5-9', 'train');
const small = { simpleCnn: { filters: [4, 8], dense: [16] }, batchSize: 16, progress: 'none' as const, log: null };

describe('train() end to end on the bundled Fashion-MNIST samples', () => {
  const root = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('scratch on classes 0-4, then fine-tune its trunk on 5-9: folders complete, head on cached features, metrics honest, no leaks', async () => {
    const start = tf.memory().numTensors;
    const a = path.join(root, 'a');
    const first = await train({ ...small, data: SOURCE, arch: 'simple_cnn', out: a, epochs: 2 });
    expect(first.stages.map((s) => s.name)).toEqual(['scratch']);
    expect(fs.readdirSync(a).sort()).toEqual(['graft.json', 'group1-shard1of1.bin', 'history.json', 'model.json', 'training-curve.png']);
    const png = fs.readFileSync(path.join(a, 'training-curve.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(JSON.parse(fs.readFileSync(path.join(a, 'history.json'), 'utf8'))).toHaveLength(2);

    const b = path.join(root, 'b');
    const second = await train({ batchSize: 16, progress: 'none', log: null, prefixEngine: 'tfjs', data: TARGET, weights: a, out: b, headEpochs: 2, epochs: 1, valSplit: 0.2, seed: 3 });
    expect(tf.memory().numTensors).toBe(start);
    expect(second.history.map((h) => h.stage)).toEqual(['head', 'head', 'fine-tune']);
    const { model, meta } = await loadModelFolder(b);
    const training = meta.training as { stageInputs: Record<string, string>; recipe: string };
    expect(training.recipe).toBe('fine-tune');
    expect(training.stageInputs).toEqual({ head: 'features after block2_pool (tfjs wasm)', 'fine-tune': 'images' });
    expect(meta.classNames).toEqual(['5-Sandal', '6-Shirt', '7-Sneaker', '8-Bag', '9-Ankle_boot']);
    // The head stage saw only head rates; the fine-tune stage spread them from lr/2/10 to lr/2.
    expect(Object.keys(second.history[0].lr)).toEqual(['head']);
    expect(second.history[2].lr.block1 / second.history[2].lr.head).toBeCloseTo(0.1, 6);

    // The saved folder evaluates to the metrics written into graft.json.
    const { validation } = await splitDataset(await openDataset(TARGET, { log: null }), { validationFraction: 0.2, seed: 3 });
    let correct = 0;
    for await (const batch of batches(validation, { inputShape: meta.inputShape, preprocessing: meta.preprocessing, batchSize: 32 })) {
      const predicted = tf.tidy(() => (model.predict(batch.x) as tf.Tensor).argMax(1).dataSync());
      batch.labels.forEach((l, i) => (correct += l === predicted[i] ? 1 : 0));
      batch.x.dispose();
    }
    expect(correct / validation.samples.length).toBeCloseTo(meta.metrics!.val_accuracy as number, 10);
    expect(meta.metrics!.val_accuracy as number).toBeGreaterThan(0.2);
    model.dispose();
  });

  test('with augmentation, a frozen prefix runs batch by batch outside the gradient tape and stays unchanged', async () => {
    const start = tf.memory().numTensors;
    const source = path.join(root, 'aug-source');
    await train({ ...small, data: SOURCE, arch: 'simple_cnn', out: source, epochs: 1 });
    const out = path.join(root, 'aug');
    await train({
      batchSize: 16, progress: 'none', log: null, prefixEngine: 'tfjs', data: TARGET, weights: source, out,
      headEpochs: 1, epochs: 1, unfreeze: 1, augment: 'light', valSplit: 0.2, seed: 4,
    });
    expect(tf.memory().numTensors).toBe(start);
    const before = await loadModelFolder(source);
    const after = await loadModelFolder(out);
    try {
      const training = after.meta.training as { stageInputs: Record<string, string> };
      expect(training.stageInputs).toEqual({
        head: 'images through the frozen layers up to block2_pool (tfjs wasm), outside the gradient tape',
        'unfreeze-1': 'images through the frozen layers up to block1_pool (tfjs wasm), outside the gradient tape',
      });
      // block1 was frozen in both stages, block2 trained in the second.
      const weightsOf = (m: tf.LayersModel, prefix: string) =>
        m.weights.filter((w) => w.name.startsWith(prefix)).map((w) => Array.from(w.read().dataSync()));
      expect(weightsOf(after.model, 'block1')).toEqual(weightsOf(before.model, 'block1'));
      expect(weightsOf(after.model, 'block1').length).toBeGreaterThan(0);
      expect(weightsOf(after.model, 'block2')).not.toEqual(weightsOf(before.model, 'block2'));
    } finally {
      before.model.dispose();
      after.model.dispose();
    }
  });

  test('a run stopped mid-epoch and resumed ends with the same weights as an uninterrupted run', async () => {
    const base: TrainOptions = { ...small, data: TARGET, arch: 'simple_cnn', out: '', epochs: 3, seed: 5, labelSmoothing: 0.1 };
    const whole = await train({ ...base, out: path.join(root, 'whole') });
    const out = path.join(root, 'parts');
    const controller = new AbortController();
    const stopped = await train({
      ...base, out, signal: controller.signal,
      callbacks: { onBatchEnd: (b) => void (b.epoch === 2 && b.batch === 3 && controller.abort()) },
    });
    expect(stopped.stopReason).toBe('aborted');
    expect(fs.existsSync(path.join(out, 'checkpoint', 'train-state.json'))).toBe(true);
    const resumed = await train({ ...base, out, resume: true });
    expect(resumed.history.map((h) => h.loss)).toEqual(whole.history.map((h) => h.loss));
    expect(fs.existsSync(path.join(out, 'checkpoint'))).toBe(false);
    const bytes = (dir: string) => fs.readFileSync(path.join(dir, 'group1-shard1of1.bin'));
    expect(bytes(out).equals(bytes(path.join(root, 'whole')))).toBe(true);
  });

  test('--config file values are overridden by flags; unknown keys and bad values are one-line errors', async () => {
    const file = path.join(root, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ data: TARGET, arch: 'simple_cnn', epochs: 4, lr: 0.01, stages: undefined }));
    const o = trainOptionsFromCli({ config: file, epochs: '2', out: 'x', groupLr: 'block1=1e-4,head=1e-3' });
    expect(o).toMatchObject({ data: TARGET, arch: 'simple_cnn', epochs: '2', lr: 0.01, out: 'x', groupLr: { block1: 1e-4, head: 1e-3 } });
    fs.writeFileSync(file, JSON.stringify({ epochz: 3 }));
    expect(() => trainOptionsFromCli({ config: file })).toThrow(/has no option "epochz"; valid options are data, val/);
    await expect(train({ ...small, data: TARGET, arch: 'simple_cnn', out: path.join(root, 'bad'), optimizer: 'adamm' as never })).rejects.toThrow(
      /optimizer must be one of sgd, adam, adamw, rmsprop; received "adamm"/,
    );
    await expect(train({ ...small, data: TARGET, arch: 'simple_cnn', out: path.join(root, 'bad'), resume: true })).rejects.toThrow(/holds no checkpoint/);
    expect(fs.existsSync(path.join(root, 'bad'))).toBe(false);
  });
});
