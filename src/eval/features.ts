/**
 * Feature extraction: each image's pooled trunk output after the architecture's own preprocessing, the vectors users
 * feed to similarity search or their own classifiers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraftError, oneOf, positiveInt } from '../errors';
import { UnusableFile, loadImagesSkipping, reportUnusable } from '../data/load-many';
import { IMAGE_EXTENSIONS } from '../data/dataset';
import { PreprocessMode, preprocessPixels } from '../data/preprocess';
import { TrunkOptions, loadTrunk } from '../models/classifier';
import { Net } from '../models/net';
import { tfjsRunner } from '../models/runner';

/** Pooling of the trunk's feature map into one vector per image. */
export const FEATURE_POOLINGS = ['avg', 'max'] as const;

/** Options for `createFeatureExtractor`. */
export interface FeatureExtractorOptions extends TrunkOptions {
  /** Global pooling of the trunk output (default avg). */
  pooling?: (typeof FEATURE_POOLINGS)[number];
}

/** A trunk with global pooling: image in, feature vector out. */
export interface FeatureExtractor {
  /** The pooled model. */
  model: tf.LayersModel;
  /** Its input [height, width, channels]. */
  inputShape: [number, number, number];
  /** The preprocessing its trunk expects. */
  preprocessing: PreprocessMode;
  /** Architecture of the trunk. */
  architecture: string;
  /** Length of each feature vector. */
  dim: number;
  /** Frees the model. */
  dispose(): void;
}

/** Builds a feature extractor from an architecture (with `imagenet`, .h5 or no weights) or a graft model folder's trunk. */
export async function createFeatureExtractor(o: FeatureExtractorOptions): Promise<FeatureExtractor> {
  const { pooling: p, ...trunkOptions } = o;
  const pooling = oneOf('pooling', p ?? 'avg', FEATURE_POOLINGS);
  const trunk = await loadTrunk(trunkOptions);
  const net = new Net();
  net.group('head');
  const out = trunk.output.shape.length === 4 ? net.globalPool(trunk.output, pooling, `${pooling}_pool`) : trunk.output;
  const model = tf.model({ inputs: trunk.input, outputs: out, name: `${trunk.meta.architecture}_features` });
  return {
    model,
    inputShape: trunk.meta.inputShape,
    preprocessing: trunk.meta.preprocessing,
    architecture: trunk.meta.architecture,
    dim: out.shape[1] as number,
    dispose: () => model.dispose(),
  };
}

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

/** Options for `extractFeatures`. */
export interface ExtractFeaturesOptions {
  /** Images per forward pass (default 16). */
  batchSize?: number;
  /** Called after each batch with the number of images done. */
  onProgress?: (done: number, total: number) => void;
  /** Runs the extractor's model on a preprocessed NHWC batch (e.g. an onnxruntime session); default tfjs in-process. */
  run?: (input: Float32Array, batch: number) => Promise<Float32Array>;
  /** An unreadable image is an error (default: it is skipped, named in one warning and left out of `files`). */
  strict?: boolean;
  /** Where the warning about skipped images goes (default stderr; null silences it). */
  log?: ((line: string) => void) | null;
}

/** Runs images (files, or folders of images) through an extractor; returns one vector per image, in order. */
export async function extractFeatures(extractor: FeatureExtractor, images: string[], o: ExtractFeaturesOptions = {}): Promise<{ files: string[]; features: Float32Array[] }> {
  const files = expandImagePaths(images);
  const batchSize = positiveInt('batchSize', o.batchSize ?? 16);
  const [h, w, c] = extractor.inputShape;
  const features: Float32Array[] = [];
  const run = o.run ?? tfjsRunner(extractor.model).run;
  const used: string[] = [];
  const skipped: UnusableFile[] = [];
  for (let start = 0; start < files.length; start += batchSize) {
    const loaded = await loadImagesSkipping(files.slice(start, start + batchSize), [h, w, c], skipped);
    if (o.strict && skipped.length) break;
    const chunk = files.slice(start, start + batchSize).filter((_, i) => loaded[i]);
    const images = loaded.filter((img): img is Float32Array => img !== null);
    if (chunk.length) {
      const input = new Float32Array(chunk.length * h * w * c);
      images.forEach((pixels, i) => input.set(preprocessPixels(pixels, c, extractor.preprocessing), i * h * w * c));
      const data = await run(input, chunk.length);
      for (let i = 0; i < chunk.length; i++) features.push(data.slice(i * extractor.dim, (i + 1) * extractor.dim));
      used.push(...chunk);
    }
    o.onProgress?.(Math.min(start + batchSize, files.length), files.length);
  }
  reportUnusable(skipped, { strict: o.strict, log: o.log });
  return { files: used, features };
}
