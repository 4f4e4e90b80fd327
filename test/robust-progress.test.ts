/**
 * Operator robustness (issue 15 item 10): no long silences. Training logs (no terminal) show progress within an
 * epoch every ~10 s, and evaluate says what it is doing before the dataset check and model load.
 */
import * as path from 'node:path';
import { progressCallbacks } from '../src/train/progress';
import { tmpDir } from './helpers/tmp';
import { FM_0_4, tinyDataset } from './helpers/tiny-data';
import { runCli as graft } from './helpers/run-cli';

const root = tmpDir('graft-robust-progress-');
const MODEL = path.join(__dirname, '..', 'models', 'fashion-mnist-0-4');

test('lines mode writes a progress line whenever 10 s passed within an epoch, and the epoch line at the end', () => {
  let clock = 0;
  const written: string[] = [];
  const stream = { write: (s: string) => written.push(s), isTTY: false } as unknown as NodeJS.WriteStream;
  const cb = progressCallbacks({ mode: 'lines', stream, now: () => clock });
  cb.onEpochBegin!(1, 10);
  for (let batch = 1; batch <= 10; batch++) {
    clock += 4000;
    cb.onBatchEnd!({ epoch: 1, batch, steps: 10, loss: 1 / batch, batchLoss: 1 / batch, accuracy: 0.5, imagesPerSecond: 8 });
  }
  void cb.onEpochEnd!({ epoch: 1, loss: 0.1, accuracy: 0.5, lr: { head: 1e-3 }, seconds: 40, imagesPerSecond: 8 });
  // 4 s a batch: lines after batches 3 (12 s), 6 (24 s) and 9 (36 s); the last batch is covered by the epoch line.
  expect(written.map((l) => l.split('  ').slice(0, 2).join(' '))).toEqual(['epoch 1 batch 3/10', 'epoch 1 batch 6/10', 'epoch 1 batch 9/10', 'epoch 1 loss 0.1000']);
  expect(written[0]).toBe('epoch 1  batch 3/10  loss 0.3333  acc 0.5000  8 img/s\n');
});

test('evaluate says what it is doing before it checks the files and loads the model', async () => {
  const data = tinyDataset(path.join(root, 'data'), 3, 5, FM_0_4);
  const r = await graft('--backend', 'wasm', 'evaluate', '--model', MODEL, '--data', data, '--engine', 'tfjs', '--mistakes', '0');
  expect(r.code).toBe(0);
  const lines = r.err.split('\n').filter((l) => !l.startsWith('graft: using backend'));
  expect(lines[0]).toBe(`evaluate: checking the images of ${data} and loading ${MODEL}`);
});
