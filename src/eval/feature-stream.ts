/**
 * Streaming feature extraction without tfjs: image lists in, rows of features out, batch by batch, through any
 * engine's `run`. The CLI's cached onnxruntime path uses only this file, so it never loads tfjs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraftError, positiveInt } from '../errors';
import { Dataset, IMAGE_EXTENSIONS, reportLateSkips, setLateLog } from '../data/dataset';
import { rawBatches } from '../data/raw-batches';
import { PreprocessMode } from '../data/preprocess';

/**
 * The image files under `inputs`, lazily: folders are walked depth-first, each folder's entries sorted by name; files
 * are kept as given. Only one folder's listing per level is held at a time, so a million images in many folders cost
 * no more memory than their largest folder. Every input is checked to exist before the first file is yielded.
 */
export function* walkImagePaths(inputs: readonly string[]): Generator<string> {
  for (const input of inputs) {
    if (!fs.existsSync(input)) throw new GraftError(`image ${input} does not exist; pass image files or folders of images.`);
  }
  function* walk(dir: string): Generator<string> {
    // path.join's result, built as one string: join makes three per file, which a long run promotes by the million.
    // (A name from readdir has no separator and is never . or .., so join(dir, name) is join(dir, '_') with name for _.)
    const base = path.join(dir, '_').slice(0, -1);
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = base + e.name;
      if (e.isDirectory()) yield* walk(full);
      else if (IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) yield full;
    }
  }
  for (const input of inputs) {
    if (fs.statSync(input).isDirectory()) yield* walk(input);
    else yield input;
  }
}

/** The error for inputs that hold no image. */
export function noImagesError(inputs: readonly string[]): GraftError {
  return new GraftError(`no images found in ${inputs.join(', ')}; pass image files (${IMAGE_EXTENSIONS.join(' ')}) or folders of them.`);
}

/** Expands folders (recursively) to the image files inside, sorted; files are kept as given. */
export function expandImagePaths(inputs: string[]): string[] {
  const out = Array.from(walkImagePaths(inputs));
  if (out.length === 0) throw noImagesError(inputs);
  return out;
}

/** What `streamFeatures` needs of an extractor: its input and preprocessing, and a way to run it. */
export interface FeatureSource {
  /** Input [height, width, channels]. */
  inputShape: [number, number, number];
  /** The preprocessing its trunk expects. */
  preprocessing: PreprocessMode;
  /** Length of each feature vector. */
  dim: number;
  /** Runs a preprocessed NHWC batch; returns batch x dim values. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
}

/** Images handed to one `rawBatches` run by `streamFeatures` (default): its prefetch restarts once per this many. */
const STREAM_CHUNK = 4096;

/**
 * Streams features batch by batch: decoding overlaps the forward pass (see `rawBatches`), each batch's rows are
 * handed to the caller and dropped, and the files are taken from `files` a few thousand at a time (an array, or a
 * lazy walk such as `walkImagePaths`), so memory stays flat however many images there are. Files that cannot be
 * decoded are left out and named in one warning at the end.
 */
export async function* streamFeatures(
  source: FeatureSource,
  files: Iterable<string>,
  o: { batchSize?: number; log?: ((line: string) => void) | null; strict?: boolean; root?: string; chunk?: number } = {},
): AsyncGenerator<{ files: string[]; features: Float32Array }> {
  const batchSize = positiveInt('batchSize', o.batchSize ?? 16);
  const chunkSize = positiveInt('chunk', o.chunk ?? STREAM_CHUNK);
  const files0 = Array.isArray(files) ? (files as string[]) : null;
  const root = o.root ?? (files0?.length === 1 ? files0[0] : 'the images given');
  // One skipped list for every chunk, so late failures are reported once, at the end.
  const all: Dataset = { root, kind: 'folder', classNames: [''], samples: [], skipped: [] };
  // No open step ran: set how late failures are reported (a warning, or with `strict` an error naming the file).
  if (o.log !== undefined || o.strict) setLateLog(all, o.log, { strict: o.strict });
  let chunk: string[] = [];
  const run = async function* (): AsyncGenerator<{ files: string[]; features: Float32Array }> {
    const ds: Dataset = { ...all, samples: chunk.map((f) => ({ source: f, label: 0 })) };
    chunk = [];
    for await (const batch of rawBatches(ds, { inputShape: source.inputShape, preprocessing: source.preprocessing, batchSize, reportSkips: false })) {
      const out = await source.run(batch.pixels, batch.samples.length);
      if (out.length !== batch.samples.length * source.dim) {
        throw new GraftError(`the feature model gave ${out.length} values for ${batch.samples.length} images; expected ${source.dim} per image.`);
      }
      yield { files: batch.samples.map((s) => s.source), features: out };
    }
  };
  for (const file of files) {
    chunk.push(file);
    if (chunk.length === chunkSize) yield* run();
  }
  if (chunk.length) yield* run();
  reportLateSkips(all);
}
