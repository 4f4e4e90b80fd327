/**
 * Operator robustness (issue 15 items 7 and 11): --resume names the flag that differs from the checkpoint, errors
 * name flags rather than API fields, and --epochs 0 reads the same whatever the recipe.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { train } from '../src/engine/training';
import { withFlagNames } from '../src/cli/flag-names';
import { tmpDir } from './helpers/tmp';
import { tinyDataset } from './helpers/tiny-data';
import { runCli as graft } from './helpers/run-cli';

const root = tmpDir('graft-robust-flags-');
const data = tinyDataset(path.join(root, 'data'));
const MODEL = path.join(__dirname, '..', 'models', 'fashion-mnist-0-4');

describe('--resume compares the settings that matter', () => {
  const out = path.join(root, 'run');
  const flags = ['--data', data, '--arch', 'simple_cnn', '--weights', 'none', '--epochs', '2', '--batch-size', '8', '--out', out];

  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
    const controller = new AbortController();
    const r = await train({
      data, arch: 'simple_cnn', weights: null, epochs: 2, batchSize: 8, out, progress: 'none', log: null,
      signal: controller.signal,
      callbacks: { onEpochEnd: () => controller.abort() },
    });
    expect(r.stopReason).toBe('aborted');
  });

  test.each([
    [['--arch', 'vgg16'], /--arch vgg16 \(the checkpoint has simple_cnn\)/],
    // The option table fills in defaults, so the checkpoint records the rate the run used.
    [['--lr', '0.01'], /--lr 0\.01 \(the checkpoint has 0\.001\)/],
    [['--batch-size', '4'], /--batch-size 4 \(the checkpoint has 8\)/],
    [['--seed', '3', '--aug', 'light'], /--aug light \(the checkpoint has \(not given\)\); --seed 3 \(the checkpoint has 0\)/],
  ])('a changed %p is named', async (change, message) => {
    const args = flags.slice();
    for (let i = 0; i < change.length; i += 2) {
      const at = args.indexOf(change[i]);
      if (at >= 0) args.splice(at, 2);
      args.push(change[i], change[i + 1]);
    }
    const r = await graft('train', ...args, '--resume');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^graft: --resume: this run differs from the checkpoint in .*checkpoint: /);
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/resume with the same settings, or train without --resume to start afresh\.\n$/);
    expect(fs.existsSync(path.join(out, 'checkpoint', 'train-state.json'))).toBe(true);
  });

  test('the same settings resume and finish', async () => {
    const r = await graft('train', ...flags, '--resume', '-q');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'history.json'), 'utf8'))).toHaveLength(2);
  });
});

describe('errors name flags, not API fields', () => {
  test('the table rewrites a leading API field only', () => {
    expect(withFlagNames('batchSize must be a whole number >= 1; received 0.')).toBe('--batch-size must be a whole number >= 1; received 0.');
    expect(withFlagNames('augment has no step "x"')).toBe('--aug has no step "x"');
    expect(withFlagNames('dataset x does not exist')).toBe('dataset x does not exist');
  });

  test.each([
    [['train', '--data', data, '--arch', 'simple_cnn', '--out', path.join(root, 'x'), '--batch-size', '0'], /^graft: --batch-size must be a whole number >= 1; received "0"\.\n$/],
    [['train', '--data', data, '--arch', 'simple_cnn', '--out', path.join(root, 'x'), '--val-split', '2'], /^graft: --val-split must be a number between 0 and 0\.99; received "2"\.\n$/],
    [['evaluate', '--model', MODEL, '--data', data, '--zero-division', 'maybe'], /^graft: --zero-division must be one of warn, 0, 1, nan; received "maybe"\.\n$/],
  ])('%p', async (args, message) => {
    const r = await graft(...args);
    expect(r.err).toMatch(message);
    expect(r.code).toBe(1);
  });

  test('--epochs 0 from scratch is refused up front with the same words as every other empty recipe', async () => {
    const r = await graft('train', '--data', data, '--arch', 'simple_cnn', '--weights', 'none', '--epochs', '0', '--out', path.join(root, 'zero'));
    expect(r.err).toBe('graft: nothing to train: --epochs is 0 and, from scratch, there is no other stage; pass --epochs 1 or more.\n');
    expect(r.code).toBe(1);
  });
});

describe('a stop request during the frozen-trunk feature pass', () => {
  test('ends the pass at the next batch and checkpoints, instead of computing every feature first', async () => {
    const prefix = require('../src/engine') as typeof import('../src/engine');
    const original = prefix.createPrefixRunner;
    const controller = new AbortController();
    let runs = 0;
    const spy = jest.spyOn(prefix, 'createPrefixRunner').mockImplementation(async (...args) => {
      const runner = await original(...args);
      return {
        ...runner,
        run: async (input: Float32Array, n: number) => {
          runs += 1;
          controller.abort(); // as if Ctrl-C came during the first batch of the pass
          return runner.run(input, n);
        },
      };
    });
    try {
      const out = path.join(root, 'stop-in-features');
      const big = tinyDataset(path.join(root, 'feature-data'), 24);
      const r = await train({
        data: big, weights: MODEL, out, batchSize: 4, headEpochs: 1, epochs: 1, prefixEngine: 'tfjs', progress: 'none', log: null,
        signal: controller.signal,
      });
      expect(r.stopReason).toBe('aborted');
      // 38 training images in batches of 4 would be 10 runs of the trunk; the pass stops after the first, and the
      // loop's first batch through the trunk sees the request.
      expect(runs).toBeLessThanOrEqual(2);
      expect(fs.existsSync(path.join(out, 'checkpoint', 'train-state.json'))).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
