/**
 * Streaming batches for training and evaluation, as plain Float32Arrays (batches.ts wraps them in tensors; this file
 * does not load tfjs, so onnxruntime-only runs never pay for it). Images are read, decoded and augmented on sharp's (libuv's)
 * thread pool while the model works on earlier batches: `prefetch` batches are kept in flight, never the whole
 * dataset. Each batch is written straight into one preallocated Float32Array, reused batch after batch.
 *
 * Fast paths: an image that already has the model's size and channels and needs no augmentation (IDX images, and
 * plain 8-bit grey or RGB PNGs) is copied into the batch without sharp. Everything else goes through sharp, at most
 * `decodeSlots()` images at a time (one per core): libvips would otherwise queue a batch's worth of work on its
 * threads and starve the model (onnxruntime or tfjs) that runs beside it.
 *
 * A file that fails to decode is left out of its batch and reported with the dataset's other skipped files (see
 * `skipLate`); a strict dataset stops at the first.
 */
import * as os from 'node:os';
import { GraftError, oneOf, positiveInt, rejectUnknownKeys } from '../errors';
import { PREPROCESS_MODES, PreprocessMode } from './preprocess';
import { createRng } from '../util/rng';
import { AugmentSpec, drawPlan, parseAugmentation } from './augment';
import { Dataset, Sample, reportLateSkips, skipLate } from './dataset';
import { bytesToInput } from './normalise';
import { ImageInput, decodeShrunk, InputShape, PLAIN_PLAN, RawImage, RenderPlan, readSource, renderGeometry } from './image';
import { parseIdxSource, idxImage } from './idx';
import { decodePlainPng } from './png-raw';
import { decodeFailureReason } from './decode-errors';

/** A batch as plain floats, for engines that take arrays (onnxruntime): no tensor is made. */
export interface RawBatch {
  /** [n, height, width, channels] preprocessed, row-major; valid until the next batch is requested. */
  pixels: Float32Array;
  /** Class index of each image. */
  labels: Int32Array;
  /** The samples in batch order (files that failed to decode are left out). */
  samples: Sample[];
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
  /** Report files skipped at batch time when the last batch is out (default true; false leaves it to the caller). */
  reportSkips?: boolean;
}

/** Counters `batches` fills in. */
export interface BatchStats {
  /** Most images in flight (read, decoded or waiting to be batched) at any moment. */
  maxInFlight: number;
  /** Images served from the cache. */
  cacheHits: number;
  /** Images copied into the batch without sharp (IDX, plain PNGs at the model's size). */
  fastPath?: number;
  /** Files left out because they failed to decode (first time each). */
  skipped?: number;
}

/** Decoded images kept between epochs, keyed by source and output channels. */
export interface ImageCache {
  /** The stored images. */
  images: Map<string, RawImage>;
}

const BATCH_KEYS = ['inputShape', 'preprocessing', 'augment', 'batchSize', 'shuffle', 'seed', 'epoch', 'dropLast', 'prefetch', 'cache', 'stats', 'reportSkips'];
const datasetCaches = new WeakMap<Dataset, ImageCache>();

/** Number of batches `batches` (and `rawBatches`) yields for a dataset (for progress bars and schedules). */
export function countBatches(ds: Dataset, options: { batchSize: number; dropLast?: boolean }): number {
  const n = ds.samples.length / positiveInt('batchSize', options.batchSize);
  return options.dropLast ? Math.floor(n) : Math.ceil(n);
}

/** Images sharp decodes at once: one per core (`GRAFT_DECODE_THREADS` overrides). */
export function decodeSlots(): number {
  const env = process.env.GRAFT_DECODE_THREADS;
  return env ? positiveInt('GRAFT_DECODE_THREADS', env) : Math.max(1, os.availableParallelism());
}

/** A counting semaphore: at most `n` holders at once. */
function limiter(n: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (job) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await job();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * `batches` without tensors: each batch's pixels in one Float32Array that is reused once the consumer asks for the
 * next batch. Evaluation, prediction and feature extraction hand it straight to the engine.
 */
export async function* rawBatches(ds: Dataset, options: BatchesOptions): AsyncGenerator<RawBatch> {
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
  stats.fastPath ??= 0;
  stats.skipped ??= 0;
  const total = countBatches(ds, { batchSize, dropLast: options.dropLast });
  const [h, w, c] = shape;
  const size = h * w * c;
  const slot = limiter(decodeSlots());
  let inFlight = 0;

  /** Fills `out` with one preprocessed image; returns false when the file could not be decoded (it is recorded). */
  const prepareOne = async (sample: Sample, plan: RenderPlan, out: Float32Array): Promise<boolean> => {
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    try {
      const plain = plan === PLAIN_PLAN;
      // An IDX image is raw pixels in memory already: cache or not, one at the model's size is a copy.
      if (plain && fastPath(sample.source, null, shape, mode, out)) {
        stats.fastPath!++;
        return true;
      }
      const input = await loadInput(sample.source, shape, cache, stats);
      if (plain && Buffer.isBuffer(input) && fastPath(sample.source, input, shape, mode, out)) {
        stats.fastPath!++;
        return true;
      }
      const pixels = await slot(() => renderGeometry(input, plan, shape));
      bytesToInput(pixels, c, mode, out, plan);
      return true;
    } catch (err) {
      if (err instanceof GraftError) throw err;
      if (skipLate(ds, sample.source, decodeFailureReason(err, sample.source))) stats.skipped!++;
      return false;
    } finally {
      inFlight--;
    }
  };

  const free: Float32Array[] = [];
  const launch = (b: number) => {
    const samples = order.slice(b * batchSize, (b + 1) * batchSize);
    // Draw in batch order on this thread, before any work starts: results never depend on thread timing.
    const plans = samples.map(() => (pipeline.steps.length ? drawPlan(pipeline, augRng) : PLAIN_PLAN));
    const buffer = free.pop() ?? new Float32Array(Math.min(batchSize, order.length) * size);
    const done = Promise.all(samples.map((s, i) => prepareOne(s, plans[i], buffer.subarray(i * size, (i + 1) * size))));
    const ready = done.then((ok) => compact(samples, ok, buffer, size));
    // A prefetched batch may fail while the consumer still awaits an earlier one: mark it handled now, and
    // let the error surface when the consumer reaches that batch.
    ready.catch(() => undefined);
    return ready;
  };

  const pending: Array<Promise<{ samples: Sample[]; pixels: Float32Array; buffer: Float32Array }>> = [];
  let next = 0;
  let lent: Float32Array | undefined;
  // If the consumer stops early, batches still in flight settle on their own (already marked handled).
  while (next < total && pending.length <= prefetch) pending.push(launch(next++));
  while (pending.length) {
    const ready = await pending.shift()!;
    // The consumer has finished with the previous batch once it asks for this one.
    if (lent) free.push(lent);
    lent = ready.buffer;
    if (next < total) pending.push(launch(next++));
    if (!ready.samples.length) continue;
    yield { pixels: ready.pixels, labels: Int32Array.from(ready.samples, (s) => s.label), samples: ready.samples };
  }
  if (options.reportSkips !== false) reportLateSkips(ds);
}

/** Drops the images that failed from a batch, moving the rest together. */
function compact(samples: Sample[], ok: boolean[], buffer: Float32Array, size: number): { samples: Sample[]; pixels: Float32Array; buffer: Float32Array } {
  if (ok.every(Boolean)) return { samples, pixels: buffer.subarray(0, samples.length * size), buffer };
  const kept: Sample[] = [];
  ok.forEach((good, i) => {
    if (!good) return;
    if (kept.length !== i) buffer.copyWithin(kept.length * size, i * size, (i + 1) * size);
    kept.push(samples[i]);
  });
  return { samples: kept, pixels: buffer.subarray(0, kept.length * size), buffer };
}

/**
 * Copies an image that already has the output size into `out` without sharp: an IDX image (`bytes` null), or a
 * plain PNG's bytes. Grey goes to RGB by repeating it, exactly as sharp's conversion does; RGB to grey (a weighted
 * sum sharp rounds its own way) and anything else is left to sharp. Returns false when it does not apply.
 */
function fastPath(source: string, bytes: Buffer | null, shape: InputShape, mode: PreprocessMode, out: Float32Array): boolean {
  const [h, w, c] = shape;
  let img: { data: Uint8Array; width: number; height: number; channels: number } | null;
  if (bytes === null) {
    const idx = parseIdxSource(source);
    if (!idx) return false;
    img = idxImage(idx.file, idx.index);
  } else {
    img = bytes[0] === 0x89 ? decodePlainPng(bytes) : null;
  }
  if (!img || img.width !== w || img.height !== h || !(img.channels === c || (img.channels === 1 && c === 3))) return false;
  if (img.channels === c) {
    bytesToInput(img.data, c, mode, out);
    return true;
  }
  const rgb = new Uint8Array(h * w * 3);
  for (let i = 0, j = 0; i < img.data.length; i++, j += 3) rgb[j] = rgb[j + 1] = rgb[j + 2] = img.data[i];
  bytesToInput(rgb, 3, mode, out);
  return true;
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
  if (parseIdxSource(source)) {
    // Raw pixels in memory: a cached decode would cost a sharp pass per image and keep a second copy. Only a grey
    // image for an RGB model goes through the cache, so that its renders stay on the pixel-exact path.
    const raw = (await readSource(source)) as RawImage;
    if (raw.channels === shape[2]) return raw;
  }
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
