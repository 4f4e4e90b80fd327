/**
 * Operator robustness (issue 15 item 2): a stop request is seen after the batch that was running, even when every
 * batch is already in memory. Signal handlers and timers run in the event loop's I/O and timer phases, which a
 * loop of microtasks (prefetched batches, in-process steps) never reaches.
 */
import { initBackend } from '../src/backend';
import { fit } from '../src/train/loop';
import { blobs, mlp } from './helpers/train-models';

beforeAll(() => initBackend({ backend: 'wasm', log: null }));

test('an abort from a timer (as from a signal handler) stops fit after the batch that was running', async () => {
  const { model, groups } = mlp(1);
  const { source } = blobs(320, { batchSize: 16 }); // 20 batches, all in memory
  const controller = new AbortController();
  let batches = 0;
  // Queued before fit starts: it runs at the first turn of the event loop, i.e. during the first batch.
  setTimeout(() => controller.abort(), 0);
  const result = await fit({
    model, groups, train: source, epochs: 1, lr: 1e-3, loss: { outputActivation: 'softmax' }, signal: controller.signal,
    callbacks: { onBatchEnd: () => void (batches += 1) },
  });
  model.dispose();
  expect(result.stopReason).toBe('aborted');
  expect(batches).toBeLessThanOrEqual(1);
});
