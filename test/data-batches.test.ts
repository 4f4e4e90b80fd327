import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { batches, BatchStats, countBatches, ImageCache } from '../src/data/batches';
import { Dataset, openDataset } from '../src/data/dataset';
import { initBackend } from '../src/backend';
import { GraftError } from '../src/errors';
import { tmpDir } from './helpers/tmp';
import { idxFolder, patternFile } from './helpers/data-fixtures';

const root = tmpDir('graft-batches-');
let ds: Dataset;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  // 23 images in 3 classes, of different sizes and formats, so batches of 5 leave a partial batch of 3.
  for (let i = 0; i < 23; i++) {
    const cls = ['cat', 'dog', 'eel'][i % 3];
    await patternFile(path.join(root, 'data', cls, `${String(i).padStart(2, '0')}.${i % 2 ? 'png' : 'jpg'}`), 20 + i, 16 + (i % 5), i % 2 ? 'png' : 'jpeg');
  }
  ds = await openDataset(path.join(root, 'data'), { log: null });
});

async function collect(options: Parameters<typeof batches>[1]) {
  const out: { shape: number[]; labels: number[]; sources: string[]; values: Float32Array }[] = [];
  for await (const b of batches(ds, options)) {
    try {
      out.push({ shape: b.x.shape, labels: Array.from(b.labels), sources: b.samples.map((s) => s.source), values: b.x.dataSync() as Float32Array });
    } finally {
      b.x.dispose();
    }
  }
  return out;
}

const base = { inputShape: [12, 10, 3] as [number, number, number], preprocessing: 'unit' as const, batchSize: 5 };

describe('batches', () => {
  test('model-shaped preprocessed tensors, labels matching samples, partial last batch kept or dropped', async () => {
    const kept = await collect(base);
    expect(kept.map((b) => b.shape)).toEqual([[5, 12, 10, 3], [5, 12, 10, 3], [5, 12, 10, 3], [5, 12, 10, 3], [3, 12, 10, 3]]);
    expect(kept.flatMap((b) => b.sources)).toEqual(ds.samples.map((s) => s.source));
    expect(kept.flatMap((b) => b.labels)).toEqual(ds.samples.map((s) => s.label));
    for (const b of kept) {
      expect(Math.min(...b.values)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...b.values)).toBeLessThanOrEqual(1);
    }
    const dropped = await collect({ ...base, dropLast: true });
    expect(dropped).toHaveLength(4);
    expect(countBatches(ds, { batchSize: 5 })).toBe(5);
    expect(countBatches(ds, { batchSize: 5, dropLast: true })).toBe(4);
  });

  test('shuffling: the same seed and epoch repeat exactly, another epoch reorders, every image appears once', async () => {
    const opts = { ...base, shuffle: true, seed: 11, augment: 'standard' };
    const e0 = await collect({ ...opts, epoch: 0 });
    const e0again = await collect({ ...opts, epoch: 0, prefetch: 1 });
    const e1 = await collect({ ...opts, epoch: 1 });
    const order = (bs: typeof e0) => bs.flatMap((b) => b.sources);
    expect(order(e0again)).toEqual(order(e0));
    expect(e0.every((b, i) => b.values.every((v, j) => v === e0again[i].values[j]))).toBe(true);
    expect(order(e1)).not.toEqual(order(e0));
    expect([...order(e1)].sort()).toEqual(ds.samples.map((s) => s.source).sort());
    expect(order(e0)).not.toEqual(ds.samples.map((s) => s.source));
  });

  test('grey models get one channel; IDX datasets stream from the IDX buffer', async () => {
    const idx = await openDataset(idxFolder(path.join(root, 'idx'), { n: 7, classes: 2 }));
    const seen: number[] = [];
    for await (const b of batches(idx, { inputShape: [8, 8, 1], preprocessing: 'none', batchSize: 4 })) {
      expect(b.x.shape.slice(1)).toEqual([8, 8, 1]);
      const v = await b.x.data();
      for (let i = 0; i < b.samples.length; i++) seen.push(v[i * 64]);
      b.x.dispose();
    }
    expect(seen).toEqual([0, 20, 0, 20, 0, 20, 0]);
  });

  test('memory stays flat over epochs: no tensors left behind, in-flight images bounded by prefetch', async () => {
    const before = tf.memory().numTensors;
    for (const prefetch of [1, 3]) {
      const stats: BatchStats = { maxInFlight: 0, cacheHits: 0 };
      for (let epoch = 0; epoch < 2; epoch++) {
        for await (const b of batches(ds, { ...base, batchSize: 2, prefetch, shuffle: true, epoch, augment: 'strong', stats })) b.x.dispose();
      }
      expect(stats.maxInFlight).toBeGreaterThan(0);
      expect(stats.maxInFlight).toBeLessThanOrEqual(2 * (prefetch + 1));
    }
    // breaking out early leaks nothing either
    for await (const b of batches(ds, { ...base, prefetch: 2 })) {
      b.x.dispose();
      break;
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  test('the cache serves the second epoch from memory and gives nearly the same pixels', async () => {
    const cache: ImageCache = { images: new Map() };
    const stats: BatchStats = { maxInFlight: 0, cacheHits: 0 };
    const first = await collect({ ...base, cache, stats });
    expect(cache.images.size).toBe(23);
    expect(stats.cacheHits).toBe(0);
    const second = await collect({ ...base, cache, stats });
    expect(stats.cacheHits).toBe(23);
    expect(second.map((b) => b.values)).toEqual(first.map((b) => b.values));
    const direct = await collect(base);
    const diff = direct.flatMap((b, i) => Array.from(b.values, (v, j) => Math.abs(v - first[i].values[j])));
    expect(diff.reduce((a, b) => a + b, 0) / diff.length).toBeLessThan(0.03);
  });

  test('a file that breaks after the dataset was opened is left out and reported at the end; strict stops at it', async () => {
    const dir = path.join(root, 'fragile');
    for (const cls of ['a', 'b']) for (let i = 0; i < 3; i++) await patternFile(path.join(dir, cls, `${i}.png`), 10, 10);
    const logs: string[] = [];
    const fragile = await openDataset(dir, { log: (l) => logs.push(l) });
    const strict = await openDataset(dir, { log: null, strict: true });
    fs.writeFileSync(path.join(dir, 'b', '1.png'), 'overwritten with text');
    const before = tf.memory().numTensors;
    const seen: string[] = [];
    for await (const b of batches(fragile, { ...base, batchSize: 2 })) {
      expect(b.x.shape[0]).toBe(b.samples.length);
      seen.push(...b.samples.map((s) => path.relative(dir, s.source)));
      b.x.dispose();
    }
    expect(seen).toEqual(['a/0.png', 'a/1.png', 'a/2.png', 'b/0.png', 'b/2.png']);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^graft: warning: skipped 1 unusable files or folders in .*fragile: .*b\/1\.png \(not an image \(a \.png file sharp cannot read\)\)$/);
    // a second epoch meets the file again but reports nothing new
    for await (const b of batches(fragile, { ...base, batchSize: 2 })) b.x.dispose();
    expect(logs).toHaveLength(1);
    const err = await (async () => {
      for await (const b of batches(strict, { ...base, batchSize: 2 })) b.x.dispose();
    })().catch((e) => e);
    expect(err).toBeInstanceOf(GraftError);
    expect(err.message).toMatch(/1 files or folders are unusable: .*b\/1\.png \(not an image.*drop --strict/);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('bad options are errors naming the option and value', async () => {
    const first = (o: object) => batches(ds, { ...base, ...o } as never).next();
    await expect(first({ inputShape: [12, 10, 4] })).rejects.toThrow('inputShape channels must be 1 or 3; received 4.');
    await expect(first({ preprocessing: 'imagenet' })).rejects.toThrow(/preprocessing must be one of .*received "imagenet"/);
    await expect(first({ batchSize: 0 })).rejects.toThrow('batchSize must be a positive whole number; received 0.');
    await expect(first({ suffle: true })).rejects.toThrow(/batches has no option "suffle"/);
    await expect(first({ augment: 'heavy' })).rejects.toThrow(GraftError);
  });
});
