/**
 * Feature extraction: each image's pooled trunk output after the architecture's own preprocessing, the vectors users
 * feed to similarity search or their own classifiers.
 */
import * as tf from '@tensorflow/tfjs';
import { oneOf } from '../errors';
import { PreprocessMode } from '../data/preprocess';
import { FeatureSource, expandImagePaths, streamFeatures } from './feature-stream';
import { TrunkOptions, loadTrunk } from '../models/classifier';
import { Net } from '../models/net';
import { tfjsRunner } from '../models/runner';

export { expandImagePaths, streamFeatures } from './feature-stream';
export type { FeatureSource } from './feature-stream';

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

/** Options for `extractFeatures`. */
export interface ExtractFeaturesOptions {
  /** Images per forward pass (default 16). */
  batchSize?: number;
  /** Called after each batch with the number of images done. */
  onProgress?: (done: number, total: number) => void;
  /** Runs the extractor's model on a preprocessed NHWC batch (e.g. an onnxruntime session); default tfjs in-process. */
  run?: (input: Float32Array, batch: number) => Promise<Float32Array>;
  /** Where the warning naming files that could not be decoded goes (default stderr; null silences). */
  log?: ((line: string) => void) | null;
  /** An unreadable image is an error (default: it is skipped, named in one warning and left out of `files`). */
  strict?: boolean;
}

/** Runs images (files, or folders of images) through an extractor; returns one vector per image, in order. */
export async function extractFeatures(extractor: FeatureExtractor, images: string[], o: ExtractFeaturesOptions = {}): Promise<{ files: string[]; features: Float32Array[] }> {
  const all = expandImagePaths(images);
  const source: FeatureSource = { inputShape: extractor.inputShape, preprocessing: extractor.preprocessing, dim: extractor.dim, run: o.run ?? tfjsRunner(extractor.model).run };
  const files: string[] = [];
  const features: Float32Array[] = [];
  let done = 0;
  for await (const batch of streamFeatures(source, all, { batchSize: o.batchSize, log: o.log, strict: o.strict })) {
    batch.files.forEach((f, i) => {
      files.push(f);
      features.push(batch.features.slice(i * extractor.dim, (i + 1) * extractor.dim));
    });
    done += batch.files.length;
    o.onProgress?.(done, all.length);
  }
  return { files, features };
}
