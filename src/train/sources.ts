/**
 * Batch sources held in memory: cached trunk features (the head trains on them for almost nothing) and small
 * arrays in tests and experiments. The shuffle of epoch e is a pure function of (seed, e), as the loop's resume needs.
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, positiveInt } from '../errors';
import { createRng } from '../util/rng';
import type { Batch, BatchSource } from './loop';

/** Options for `arraySource`. */
export interface ArraySourceOptions {
  /** Row-major values, `labels.length` rows of `prod(shape)` values each. */
  values: Float32Array;
  /** Shape of one sample (e.g. `[7, 7, 512]` for features, `[h, w, c]` for images). */
  shape: number[];
  /** Class index per sample. */
  labels: Int32Array;
  /** Samples per batch. */
  batchSize: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffles. */
  seed?: number | string;
  /** Drop a last incomplete batch (default false). */
  dropLast?: boolean;
}

/** A BatchSource over arrays in memory. */
export function arraySource(options: ArraySourceOptions): BatchSource {
  const { values, shape, labels } = options;
  const batchSize = positiveInt('batch size', options.batchSize);
  const per = shape.reduce((a, b) => a * b, 1);
  const n = labels.length;
  if (values.length !== n * per) {
    throw new GraftError(`array source holds ${values.length} values but ${n} samples of shape [${shape}] need ${n * per}; pass matching values and labels.`);
  }
  const steps = options.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  const order = (epoch: number) => {
    const indices = Array.from({ length: n }, (_, i) => i);
    return options.shuffle === false ? indices : createRng(options.seed ?? 0).fork(`shuffle/${epoch}`).shuffle(indices);
  };
  return {
    samples: n,
    steps,
    async *batches(epoch: number): AsyncIterable<Batch> {
      const idx = order(epoch);
      for (let s = 0; s < steps; s++) {
        const pick = idx.slice(s * batchSize, Math.min(n, (s + 1) * batchSize));
        const x = new Float32Array(pick.length * per);
        pick.forEach((j, i) => x.set(values.subarray(j * per, (j + 1) * per), i * per));
        yield { x: tf.tensor(x, [pick.length, ...shape]), labels: Int32Array.from(pick, (j) => labels[j]) };
      }
    },
  };
}
