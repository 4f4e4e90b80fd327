/**
 * `batches`: the training loop's stream of tensor batches, made from `rawBatches` (raw-batches.ts), which does the
 * reading, decoding, augmenting and preprocessing. Also the batch types training and evaluation share.
 */
import * as tf from '@tensorflow/tfjs';
import { Dataset, Sample } from './dataset';
import { BatchesOptions, checkShape, rawBatches } from './raw-batches';

export { countBatches, checkShape, decodeSlots, rawBatches } from './raw-batches';
export type { BatchesOptions, BatchStats, ImageCache, RawBatch } from './raw-batches';

/** Inputs and labels, what training and evaluation consume (images, or a frozen prefix's outputs). */
export interface Batch {
  /** Inputs in the model's input shape; the consumer disposes it. */
  x: tf.Tensor;
  /** Class index of each input. */
  labels: Int32Array;
}

/** One batch of images: preprocessed pixels in the model's input shape, their labels and where they came from. */
export interface ImageBatch extends Batch {
  /** [n, height, width, channels], preprocessed; the consumer disposes it. */
  x: tf.Tensor4D;
  /** The samples in batch order. */
  samples: Sample[];
}

/** Where batches come from; `batches(epoch)` must give the same batches for the same epoch (seeded shuffle). */
export interface BatchSource {
  /** Samples per epoch. */
  samples: number;
  /** Batches per epoch. */
  steps: number;
  /** The batches of one epoch (0-based). */
  batches(epoch: number): AsyncIterable<Batch>;
}

/**
 * Streams a dataset as preprocessed batches, decoding and augmenting `prefetch` batches ahead on sharp's threads.
 * With a seed, the order and every augmentation are reproducible per epoch (`rng.fork(epoch)`).
 */
export async function* batches(ds: Dataset, options: BatchesOptions): AsyncGenerator<ImageBatch> {
  const [h, w, c] = checkShape(options.inputShape);
  for await (const raw of rawBatches(ds, options)) {
    // wasm copies tensor data on creation, so the buffer can be refilled; cpu and tfjs-node keep the array.
    const pixels = tf.getBackend() === 'wasm' ? raw.pixels : raw.pixels.slice();
    yield { x: tf.tensor4d(pixels, [raw.samples.length, h, w, c]), labels: raw.labels, samples: raw.samples };
  }
}
