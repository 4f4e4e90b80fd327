import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint';
import { freezeTo, unfreeze } from '../src/train/freeze';
import { BatchSource, FitOptions, disposeLoopState, fit } from '../src/train/loop';
import { arraySource } from '../src/train/sources';
import { blobs, mlp, weightValues } from './helpers/train-models';
import { tmpDir } from './helpers/tmp';

const meta = (groups: FitOptions['groups']) => ({
  architecture: 'custom', inputShape: [1, 1, 6] as [number, number, number], preprocessing: 'none' as const,
  classNames: ['a', 'b', 'c'], outputActivation: 'softmax' as const, groups,
});

describe('training loop', () => {
  const root = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('resume from a Ctrl-C checkpoint mid-epoch reproduces the uninterrupted run exactly (dropout, one-cycle, Adam)', async () => {
    const data = blobs(80, { batchSize: 16 });
    const val = blobs(30, { seed: 9 });
    const setup = (seed: number): FitOptions => {
      const { model, groups } = mlp(seed, 6, 3, 0.3);
      return {
        model, groups, train: data.source, validation: val.source, epochs: 4, lr: 0.02, lrMult: 3, optimizer: 'adam', seed: 7,
        schedule: 'one-cycle', loss: { outputActivation: 'softmax', labelSmoothing: 0.1 }, clipNorm: 5, restoreBest: true,
        reduceOnPlateau: { patience: 1, factor: 0.5 }, classNames: ['a', 'b', 'c'],
      };
    };
    const full = setup(1);
    const counts: number[] = [];
    const fullResult = await fit({ ...full, callbacks: { onEpochEnd: () => void counts.push(tf.memory().numTensors) } });
    expect(fullResult.stopReason).toBe('completed');
    // No leaks: the tensor count is the same at the end of every epoch.
    expect(new Set(counts).size).toBe(1);

    const part = setup(1);
    const controller = new AbortController();
    const dir = path.join(root, 'ckpt');
    const partResult = await fit({
      ...part,
      signal: controller.signal,
      callbacks: { onBatchEnd: (b) => void (b.epoch === 3 && b.batch === 2 && controller.abort()) },
      onCheckpoint: async (state, reason) => {
        if (reason === 'abort') await saveCheckpoint(dir, part.model, meta(part.groups), state, { note: 'kept' });
      },
    });
    expect(partResult.stopReason).toBe('aborted');
    expect(partResult.history).toHaveLength(2);
    part.model.dispose();

    const before = tf.memory().numTensors;
    const ckpt = await loadCheckpoint(dir);
    expect(ckpt.extra).toEqual({ note: 'kept' });
    expect(ckpt.state).toMatchObject({ epoch: 2, batch: 2 });
    // Same options (and groups); the checkpoint's model replaces the fresh one.
    const options = setup(2);
    options.model.dispose();
    const resumed = await fit({ ...options, model: ckpt.model, resume: ckpt.state });
    disposeLoopState(ckpt.state);
    const strip = (h: typeof fullResult.history) => h.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
    expect(strip(resumed.history)).toEqual(strip(fullResult.history));
    expect(weightValues(ckpt.model)).toEqual(weightValues(full.model));
    ckpt.model.dispose();
    // Loading, resuming and disposing the checkpoint leaves no tensor behind.
    expect(tf.memory().numTensors).toBe(before);
    full.model.dispose();
  });

  test('unfreezing mid-run with Adam rebuilds the groups with fresh state; the loss keeps falling', async () => {
    const { model, groups } = mlp(3);
    freezeTo(model, groups, -1);
    const before = weightValues(model);
    const result = await fit({
      model, groups, train: blobs(96).source, epochs: 5, lr: 0.01, lrMult: 10, optimizer: 'adam', loss: { outputActivation: 'softmax' },
      callbacks: { onEpochEnd: (log) => void (log.epoch === 2 && unfreeze(model, { groups: ['body', 'mid'] }, { groups })) },
    });
    expect(Object.keys(result.history[0].lr)).toEqual(['head']);
    expect(Object.keys(result.history[4].lr)).toEqual(['body', 'mid', 'head']);
    expect(result.history[4].lr.body).toBeCloseTo(0.001, 9);
    expect(weightValues(model)['fc1/kernel']).not.toEqual(before['fc1/kernel']);
    expect(result.history[4].loss).toBeLessThan(result.history[2].loss);
    expect(result.history[2].loss).toBeLessThan(result.history[0].loss);
    model.dispose();
  });

  test('early stopping restores the best weights; reduce-on-plateau halves the rates; abort before any epoch saves state', async () => {
    const { model, groups } = mlp(4);
    const good = blobs(40, { seed: 11 });
    let calls = 0;
    // Validation labels turn to noise after the second epoch, so val_loss gets worse from epoch 3 on.
    const noisy = Int32Array.from(good.labels, (l, i) => (l + 1 + (i % 2)) % 3);
    const validation: BatchSource = {
      samples: 40,
      steps: 1,
      batches: () => arraySource({ values: good.values, shape: [6], labels: ++calls <= 2 ? good.labels : noisy, batchSize: 40 }).batches(0),
    };
    let atBest: Record<string, Float32Array> = {};
    const result = await fit({
      model, groups, train: good.source, validation, epochs: 20, lr: 0.02, optimizer: 'adam', loss: { outputActivation: 'softmax' },
      earlyStopping: { patience: 2 }, reduceOnPlateau: { patience: 1, factor: 0.5 }, monitor: 'val_loss',
      callbacks: { onEpochEnd: (log) => void (log.epoch === 2 && (atBest = weightValues(model))) },
    });
    expect(result.stopReason).toBe('early-stopping');
    expect(result.history).toHaveLength(4);
    expect(result.best).toMatchObject({ monitor: 'val_loss', epoch: 2 });
    expect(weightValues(model)).toEqual(atBest);
    // Epoch 3 is the first without improvement: epoch 4 runs at half the rate.
    expect(result.history[3].lr.head).toBeCloseTo(0.02 * 0.5, 9);
    expect(result.history[2].lr.head).toBeCloseTo(0.02, 9);

    const controller = new AbortController();
    controller.abort();
    let saved: unknown;
    const aborted = await fit({
      model, groups, train: good.source, epochs: 2, lr: 0.01, loss: { outputActivation: 'softmax' }, signal: controller.signal,
      onCheckpoint: (state, reason) => void (saved = { epoch: state.epoch, batch: state.batch, reason }),
    });
    expect(aborted.stopReason).toBe('aborted');
    expect(saved).toEqual({ epoch: 0, batch: 0, reason: 'abort' });
    model.dispose();
  });
});
