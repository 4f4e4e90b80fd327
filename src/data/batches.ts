/**
 * `batches`: the training loop's stream of tensor batches, made from `rawBatches` (raw-batches.ts), which does the
 * reading, decoding, augmenting and preprocessing.
 */
import * as tf from '@tensorflow/tfjs';
import { Dataset, Sample } from './dataset';
import { BatchesOptions, checkShape, rawBatches } from './raw-batches';

export { countBatches, checkShape, decodeSlots, rawBatches } from './raw-batches';
export type { BatchesOptions, BatchStats, ImageCache, RawBatch } from './raw-batches';

/** One batch: preprocessed pixels in the model's input shape, their labels and where they came from. */
export interface Batch {
  /** [n, height, width, channels], preprocessed; the consumer disposes it. */
  x: tf.Tensor4D;
  /** Class index of each image. */
  labels: Int32Array;
  /** The samples in batch order. */
  samples: Sample[];
}

/**
 * Streams a dataset as preprocessed batches, decoding and augmenting `prefetch` batches ahead on sharp's threads.
 * With a seed, the order and every augmentation are reproducible per epoch (`rng.fork(epoch)`).
 */
export async function* batches(ds: Dataset, options: BatchesOptions): AsyncGenerator<Batch> {
  const [h, w, c] = checkShape(options.inputShape);
  for await (const raw of rawBatches(ds, options)) {
    // wasm copies tensor data on creation, so the buffer can be refilled; cpu and tfjs-node keep the array.
    const pixels = tf.getBackend() === 'wasm' ? raw.pixels : raw.pixels.slice();
    yield { x: tf.tensor4d(pixels, [raw.samples.length, h, w, c]), labels: raw.labels, samples: raw.samples };
  }
}

