/**
 * Streaming feature extraction without tfjs: image lists in, rows of features out, batch by batch, through any
 * engine's `run`. The CLI's cached onnxruntime path uses only this file, so it never loads tfjs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraftError, positiveInt } from '../errors';
import { Dataset, IMAGE_EXTENSIONS, setLateLog } from '../data/dataset';
import { rawBatches } from '../data/raw-batches';
import { PreprocessMode } from '../data/preprocess';

/** Expands folders (recursively) to the image files inside, sorted; files are kept as given. */
export function expandImagePaths(inputs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) out.push(full);
    }
  };
  for (const input of inputs) {
    if (!fs.existsSync(input)) throw new GraftError(`image ${input} does not exist; pass image files or folders of images.`);
    if (fs.statSync(input).isDirectory()) walk(input);
    else out.push(input);
  }
  if (out.length === 0) throw new GraftError(`no images found in ${inputs.join(', ')}; pass image files (${IMAGE_EXTENSIONS.join(' ')}) or folders of them.`);
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

/**
 * Streams features batch by batch: decoding overlaps the forward pass (see `rawBatches`), each batch's rows are
 * handed to the caller and dropped, so memory stays flat however many images there are. Files that cannot be
 * decoded are left out and named in one warning at the end.
 */
export async function* streamFeatures(
  source: FeatureSource,
  files: readonly string[],
  o: { batchSize?: number; log?: ((line: string) => void) | null; strict?: boolean } = {},
): AsyncGenerator<{ files: string[]; features: Float32Array }> {
  const batchSize = positiveInt('batchSize', o.batchSize ?? 16);
  const ds: Dataset = { root: files.length === 1 ? files[0] : 'the images given', kind: 'folder', classNames: [''], samples: files.map((f) => ({ source: f, label: 0 })), skipped: [] };
  // No open step ran: set how late failures are reported (a warning, or with `strict` an error naming the file).
  if (o.log !== undefined || o.strict) setLateLog(ds, o.log, { strict: o.strict });
  for await (const batch of rawBatches(ds, { inputShape: source.inputShape, preprocessing: source.preprocessing, batchSize })) {
    const out = await source.run(batch.pixels, batch.samples.length);
    if (out.length !== batch.samples.length * source.dim) {
      throw new GraftError(`the feature model gave ${out.length} values for ${batch.samples.length} images; expected ${source.dim} per image.`);
    }
    yield { files: batch.samples.map((s) => s.source), features: out };
  }
}

