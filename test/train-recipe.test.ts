import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { planStages } from '../src/train/fine-tune';
import { steepest, valley } from '../src/train/lr-find';
import { lrFind, train } from '../src/engine/training';
import { tmpDir } from './helpers/tmp';

// onnxruntime's type checks reject typed arrays from jest's sandbox realm, so these tests run the frozen trunk on tfjs.
const TARGET = path.join(__dirname, '..', 'datasets', 'fashion-mnist-5-9', 'train');
const groups = ['block1', 'block2', 'block3', 'head'].map((name) => ({ name, layers: [] }));

describe('the fine-tune recipe', () => {
  const root = tmpDir();
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('stages: fastai defaults, top-K and gradual unfreezing, scratch, explicit stages; bad stages are errors', () => {
    expect(planStages({ data: 'd', out: 'o' }, { groups, pretrained: true })).toEqual([
      { name: 'head', epochs: 1, train: 'head', lr: 1e-3 },
      { name: 'fine-tune', epochs: 3, train: 'all', lr: 5e-4, lrMult: 10, groupLr: undefined },
    ]);
    expect(planStages({ data: 'd', out: 'o', unfreeze: 2, gradual: true, epochs: 2, headEpochs: 3, lr: 0.01, lrMult: 100 }, { groups, pretrained: true }).map((s) => [s.name, s.epochs, s.train, s.lr, s.lrMult])).toEqual([
      ['head', 3, 'head', 0.01, undefined],
      ['unfreeze-1', 2, 1, 0.005, 100],
      ['unfreeze-2', 2, 2, 0.005, 100],
    ]);
    expect(planStages({ data: 'd', out: 'o', fineTuneLr: 0.02, unfreeze: 1 }, { groups, pretrained: true })[1]).toMatchObject({ name: 'unfreeze-1', train: 1, lr: 0.02 });
    expect(planStages({ data: 'd', out: 'o', epochs: 5, headEpochs: 2 }, { groups, pretrained: false })).toEqual([{ name: 'scratch', epochs: 5, train: 'all', lr: 1e-3 }]);
    const explicit = [{ name: 'warm', epochs: 1, train: 'head' as const, lr: 0.1, schedule: 'cosine' }];
    expect(planStages({ data: 'd', out: 'o', stages: explicit }, { groups, pretrained: true })).toEqual(explicit);
    expect(() => planStages({ data: 'd', out: 'o', stages: [{ name: 'x', epochs: 1, train: 7, lr: 1 }] }, { groups, pretrained: true })).toThrow(
      /stage x: train must be head, all or a number of trunk groups 0..3; received 7/,
    );
    expect(() => planStages({ data: 'd', out: 'o', stages: [{ name: 'x', epochs: 1, train: 'all', lr: 1, lrmult: 2 } as never] }, { groups, pretrained: true })).toThrow(/has no option "lrmult"/);
    expect(() => planStages({ data: 'd', out: 'o', gradual: true }, { groups, pretrained: true })).toThrow(/gradual unfreezing needs a number of groups/);
    expect(() => planStages({ data: 'd', out: 'o', epochs: 0, headEpochs: 0 }, { groups, pretrained: true })).toThrow(/nothing to train/);
  });

  test('the disk feature cache is reused by a second run and gives the same head', async () => {
    const previous = process.env.GRAFT_CACHE;
    process.env.GRAFT_CACHE = path.join(root, 'cache');
    try {
      const trunk = path.join(root, 'trunk');
      const quiet = { progress: 'none' as const, log: null, batchSize: 32, prefixEngine: 'tfjs' as const };
      await train({ ...quiet, data: TARGET, arch: 'simple_cnn', simpleCnn: { filters: [4, 8], dense: [8] }, out: trunk, epochs: 1, valSplit: 0 });
      const head = { ...quiet, data: TARGET, weights: trunk, headEpochs: 2, epochs: 0, featureCache: 'disk' as const };
      // --save-best: while the run goes on, the folder already holds the best epoch so far.
      const seen: unknown[] = [];
      const first = await train({
        ...head, out: path.join(root, 'h1'), saveBest: true,
        callbacks: { onEpochEnd: () => void seen.push(JSON.parse(fs.readFileSync(path.join(root, 'h1', 'graft.json'), 'utf8')).training.bestEpoch) },
      });
      expect(seen[0]).toBe(1);
      const files = fs.readdirSync(path.join(root, 'cache', 'features'));
      expect(files.filter((f) => f.endsWith('.f32'))).toHaveLength(2);
      const stamp = files.map((f) => fs.statSync(path.join(root, 'cache', 'features', f)).mtimeMs);
      const second = await train({ ...head, out: path.join(root, 'h2') });
      expect(fs.readdirSync(path.join(root, 'cache', 'features')).map((f) => fs.statSync(path.join(root, 'cache', 'features', f)).mtimeMs)).toEqual(stamp);
      expect(second.history.map((h) => h.loss)).toEqual(first.history.map((h) => h.loss));
    } finally {
      if (previous === undefined) delete process.env.GRAFT_CACHE;
      else process.env.GRAFT_CACHE = previous;
    }
  });

  test('lr-find: suggestions on known curves, and a sweep that stops on divergence, writes its plot and leaks nothing', async () => {
    const lrs = Array.from({ length: 50 }, (_, i) => 10 ** (-6 + i / 7));
    // Flat, then falling fastest around 1e-3 (log10 = -3), then blowing up.
    const losses = lrs.map((lr) => 2 - 1 / (1 + Math.exp(-3 * (Math.log10(lr) + 3))) + (lr > 0.3 ? 10 * lr : 0));
    expect(Math.log10(steepest(lrs, losses))).toBeCloseTo(-3, 0);
    const v = valley(lrs, losses);
    expect(v).toBeGreaterThan(1e-4);
    expect(v).toBeLessThan(0.3);

    const start = tf.memory().numTensors;
    const plot = path.join(root, 'lr.png');
    // Seed 1: with seeded initialisers, seed 0's network learns so slowly that its smoothed loss crosses 4x its
    // minimum only at the 60th step; seeds 1 and 2 cross it at steps 56 and 51.
    const result = await lrFind({ data: TARGET, arch: 'simple_cnn', simpleCnn: { filters: [4, 8], dense: [8] }, batchSize: 25, steps: 60, startLr: 1e-4, endLr: 1e4, plot, log: null, prefixEngine: 'tfjs', seed: 1 });
    expect(tf.memory().numTensors).toBe(start);
    expect(result.stage).toBe('all');
    expect(result.lrs[0]).toBeCloseTo(1e-4, 12);
    // Adam diverges once the rate passes ~1 (half-way): the sweep stops before its last step.
    expect(result.lrs.length).toBeLessThan(60);
    expect(result.smoothed[result.smoothed.length - 1]).toBeGreaterThan(Math.min(...result.smoothed) * 3.9);
    for (const s of Object.values(result.suggestions)) expect(s).toBeGreaterThan(1e-5);
    expect(fs.readFileSync(plot).subarray(1, 4).toString()).toBe('PNG');
  });
});
