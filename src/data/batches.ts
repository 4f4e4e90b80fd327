/**
 * Streaming batches for training and evaluation. Images are read, decoded and augmented on sharp's (libuv's)
 * thread pool while the model works on earlier batches: `prefetch` batches are kept in flight, never the whole
 * dataset. Tensors are only created when the consumer takes a batch, so breaking out of the loop leaks nothing.
 *
 * Threads: sharp runs each image on a libuv worker (UV_THREADPOOL_SIZE, default 4) and libvips may use
 * `sharp.concurrency()` threads inside one image. graft leaves both at their defaults: with many small images in
 * flight, one libvips thread per image across 4 libuv workers already fills a small machine, and per-image
 * threading only pays for very large images. Set UV_THREADPOOL_SIZE before starting Node to change it.
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, oneOf, positiveInt, rejectUnknownKeys } from '../errors';
import { PREPROCESS_MODES, PreprocessMode } from './preprocess';
import { createRng } from '../util/rng';
import { AugmentSpec, drawPlan, parseAugmentation } from './augment';
import { Dataset, Sample } from './dataset';
import { bytesToInput } from './normalise';
import { ImageInput, decodeShrunk, InputShape, PLAIN_PLAN, RawImage, RenderPlan, firstLine, readSource, renderGeometry } from './image';

/** One batch: preprocessed pixels in the model's input shape, their labels and where they came from. */
export interface ImageBatch extends Batch {
  /** [n, height, width, channels], preprocessed; the consumer disposes it. */
  x: tf.Tensor4D;
  /** The samples in batch order. */
  samples: Sample[];
}

/** Inputs and labels, what training and evaluation consume (images, or a frozen prefix's outputs). */
export interface Batch {
  /** Inputs in the model's input shape; the consumer disposes it. */
  x: tf.Tensor;
  /** Class index of each input. */
  labels: Int32Array;
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

/** Options of `batches`. */
export interface BatchesOptions {
  /** Model input [height, width, channels]; channels 1 gives grey, 3 gives RGB. */
  inputShape: InputShape;
  /** Pixel preprocessing mode of the model. */
  preprocessing: PreprocessMode;
  /** Augmentation: a pipeline, preset name, JSON, or null / absent for none (evaluation). */
  augment?: AugmentSpec;
  /** Images per batch. */
  batchSize: number;
  /** Shuffle the order each epoch (default false, so evaluation order is the dataset order). */
  shuffle?: boolean;
  /** Seed for shuffling and augmentation (default 0). */
  seed?: number | string;
  /** Epoch number; each epoch gets its own order and augmentations from the seed (default 0). */
  epoch?: number;
  /** Drop the last batch when it is smaller than batchSize (default false: keep it). */
  dropLast?: boolean;
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /** Keep decoded, resized (not augmented) images in memory between epochs; true uses a cache tied to the dataset. */
  cache?: boolean | ImageCache;
  /** Filled in while iterating: the most images being decoded at once (to check memory stays bounded). */
  stats?: BatchStats;
}

/** Counters `batches` fills in. */
export interface BatchStats {
  /** Most images in flight (read, decoded or waiting to be batched) at any moment. */
  maxInFlight: number;
  /** Images served from the cache. */
  cacheHits: number;
}

/** Decoded images kept between epochs, keyed by source and output channels. */
export interface ImageCache {
  /** The stored images. */
  images: Map<string, RawImage>;
}

const BATCH_KEYS = ['inputShape', 'preprocessing', 'augment', 'batchSize', 'shuffle', 'seed', 'epoch', 'dropLast', 'prefetch', 'cache', 'stats'];
const datasetCaches = new WeakMap<Dataset, ImageCache>();

/** Number of batches `batches` yields for a dataset (for progress bars and schedules). */
export function countBatches(ds: Dataset, options: { batchSize: number; dropLast?: boolean }): number {
  const n = ds.samples.length / positiveInt('batchSize', options.batchSize);
  return options.dropLast ? Math.floor(n) : Math.ceil(n);
}

/**
 * Streams a dataset as preprocessed batches, decoding and augmenting `prefetch` batches ahead on sharp's threads.
 * With a seed, the order and every augmentation are reproducible per epoch (`rng.fork(epoch)`).
 */
export async function* batches(ds: Dataset, options: BatchesOptions): AsyncGenerator<ImageBatch> {
  rejectUnknownKeys('batches', options, BATCH_KEYS);
  const shape = checkShape(options.inputShape);
  const mode = oneOf('preprocessing', options.preprocessing, PREPROCESS_MODES);
  const batchSize = positiveInt('batchSize', options.batchSize);
  const prefetch = options.prefetch === undefined ? 2 : positiveInt('prefetch', options.prefetch);
  const pipeline = parseAugmentation(options.augment);
  const epochRng = createRng(options.seed ?? 0).fork(options.epoch ?? 0);
  const order = options.shuffle ? epochRng.fork('order').shuffle(ds.samples) : ds.samples.slice();
  const augRng = epochRng.fork('augment');
  const cache = options.cache === true ? cacheFor(ds) : options.cache || undefined;
  const stats = options.stats ?? { maxInFlight: 0, cacheHits: 0 };
  const total = countBatches(ds, { batchSize, dropLast: options.dropLast });
  const [h, w, c] = shape;
  const size = h * w * c;
  let inFlight = 0;

  const prepareOne = async (sample: Sample, plan: RenderPlan, out: Float32Array): Promise<void> => {
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    try {
      const input = await loadInput(sample.source, shape, cache, stats);
      const pixels = await renderGeometry(input, plan, shape);
      bytesToInput(pixels, c, mode, out, plan);
    } catch (err) {
      if (err instanceof GraftError) throw err;
      throw new GraftError(`cannot decode ${sample.source}: ${firstLine(err)}; the file changed since the dataset was opened? Reopen it or remove the file.`, { cause: err });
    } finally {
      inFlight--;
    }
  };

  // Batch buffers are reused when the backend copies tensor data on creation (wasm does; cpu and tfjs-node keep the
  // array, so there every batch gets a new one). Reuse spares a 19 MB allocation per batch of 32 at 224x224 and the
  // garbage collection it causes: about 0.4 ms of CPU per image.
  const free: Float32Array[] = [];
  const launch = (b: number) => {
    const samples = order.slice(b * batchSize, (b + 1) * batchSize);
    // Draw in batch order on this thread, before any work starts: results never depend on thread timing.
    const plans = samples.map(() => (pipeline.steps.length ? drawPlan(pipeline, augRng) : PLAIN_PLAN));
    const buffer = free.pop() ?? new Float32Array(Math.min(batchSize, order.length) * size);
    const pixels = buffer.subarray(0, samples.length * size);
    const done = Promise.all(samples.map((s, i) => prepareOne(s, plans[i], pixels.subarray(i * size, (i + 1) * size))));
    const ready = done.then(() => ({ samples, pixels, buffer }));
    // A prefetched batch may fail while the consumer still awaits an earlier one: mark it handled now, and
    // let the error surface when the consumer reaches that batch.
    ready.catch(() => undefined);
    return ready;
  };

  const pending: Array<Promise<{ samples: Sample[]; pixels: Float32Array; buffer: Float32Array }>> = [];
  let next = 0;
  // If the consumer stops early, batches still in flight settle on their own (already marked handled).
  while (next < total && pending.length <= prefetch) pending.push(launch(next++));
  while (pending.length) {
    const ready = await pending.shift()!;
    const x = tf.tensor4d(ready.pixels, [ready.samples.length, h, w, c]);
    if (tf.getBackend() === 'wasm') free.push(ready.buffer);
    if (next < total) pending.push(launch(next++));
    yield { x, labels: Int32Array.from(ready.samples, (s) => s.label), samples: ready.samples };
  }
}

/** Validates an input shape [h, w, c] with c 1 or 3. */
export function checkShape(shape: unknown): InputShape {
  if (!Array.isArray(shape) || shape.length !== 3) {
    throw new GraftError(`inputShape must be [height, width, channels]; received ${JSON.stringify(shape)}.`);
  }
  const [h, w, c] = shape.map((v, i) => positiveInt(`inputShape[${i}]`, v));
  if (c !== 1 && c !== 3) throw new GraftError(`inputShape channels must be 1 or 3; received ${c}.`);
  return [h, w, c];
}

function cacheFor(ds: Dataset): ImageCache {
  let cache = datasetCaches.get(ds);
  if (!cache) {
    cache = { images: new Map() };
    datasetCaches.set(ds, cache);
  }
  return cache;
}

/**
 * Reads a source, through the cache when there is one. Cached images are oriented, flattened and converted to the
 * output channels, and shrunk (aspect kept) so the shorter side is the larger model side: small enough to keep,
 * large enough that a crop still has detail.
 */
async function loadInput(source: string, shape: InputShape, cache: ImageCache | undefined, stats: BatchStats): Promise<ImageInput> {
  if (!cache) return readSource(source);
  const key = `${shape[2]}:${source}`;
  const hit = cache.images.get(key);
  if (hit) {
    stats.cacheHits++;
    return hit;
  }
  const raw = await decodeShrunk(await readSource(source), { side: Math.max(shape[0], shape[1]), channels: shape[2] });
  cache.images.set(key, raw);
  return raw;
}
