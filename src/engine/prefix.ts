/**
 * Runs the frozen prefix of a model (input -> a group boundary) forward, for trunk features the head trains on.
 * `tfjs` runs it in-process on the current backend; `onnx` exports it and runs it on onnxruntime (faster for
 * convolutions); `auto` tries onnx and quietly falls back to tfjs (the runner's `engine` says which ran).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, oneOf } from '../errors';
import { splitModel } from '../train/split';

/** Engines a prefix can run on. */
export const PREFIX_ENGINES = ['auto', 'tfjs', 'onnx'] as const;
/** A prefix engine request. */
export type PrefixEngine = (typeof PREFIX_ENGINES)[number];

/** Options for `createPrefixRunner`. */
export interface PrefixRunnerOptions {
  /** Which engine (default `auto`). */
  engine?: PrefixEngine | string;
  /** Where onnxruntime's notices go (default stderr; null for silence). */
  log?: ((line: string) => void) | null;
}

/** A model prefix that only runs forward. */
export interface PrefixRunner {
  /** What runs it, e.g. `tfjs wasm` or `onnxruntime cpu x2`. */
  readonly engine: string;
  /** Boundary output shape without the batch dimension. */
  readonly outputShape: number[];
  /** Runs `batch` preprocessed NHWC inputs; returns the boundary outputs, row-major. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  /** Frees the engine's resources (never the model's weights). */
  dispose(): Promise<void>;
}

/** A runner for `model` from its input to the output of `boundaryLayerName`. Weights are read at each run (tfjs). */
export async function createPrefixRunner(model: tf.LayersModel, boundaryLayerName: string, options: PrefixRunnerOptions = {}): Promise<PrefixRunner> {
  const engine = oneOf('prefix engine', options.engine ?? 'auto', PREFIX_ENGINES);
  const log = options.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : options.log;
  if (engine !== 'tfjs') {
    try {
      const { createOnnxPrefixRunner } = await import('../onnx/prefix');
      return await createOnnxPrefixRunner(model, boundaryLayerName, { log });
    } catch (err) {
      if (engine === 'onnx') throw err instanceof GraftError ? err : new GraftError(`onnxruntime cannot run the prefix: ${(err as Error).message}; use the tfjs engine.`, { cause: err });
      // auto: a layer onnx export does not cover, or a boundary used twice after an earlier split; tfjs always works.
    }
  }
  return createTfjsPrefixRunner(model, boundaryLayerName);
}

/** The tfjs branch: the prefix half of `splitModel`, run in inference mode. */
export function createTfjsPrefixRunner(model: tf.LayersModel, boundaryLayerName: string): PrefixRunner {
  const split = splitModel(model, boundaryLayerName);
  split.suffix.dispose();
  return tfjsModelRunner(split.prefix, { owned: true });
}

/** Runs a whole single-input model forward in tfjs; `owned` means `dispose` frees the model too. */
function tfjsModelRunner(model: tf.LayersModel, options: { owned: boolean }): PrefixRunner {
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  return {
    engine: `tfjs ${tf.getBackend()}`,
    outputShape: model.outputs[0].shape.slice(1) as number[],
    async run(input, batch) {
      const out = tf.tidy(() => model.predict(tf.tensor(input, [batch, ...inputShape])) as tf.Tensor);
      try {
        return (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
    },
    async dispose() {
      if (options.owned) model.dispose();
    },
  };
}

/**
 * A runner for a whole in-memory model (e.g. a feature extractor): `auto` tries onnxruntime and falls back to tfjs
 * with a one-line notice; `onnx` that cannot run is an error. The model itself is never disposed by the runner.
 */
export async function createModelRunner(model: tf.LayersModel, options: PrefixRunnerOptions = {}): Promise<PrefixRunner> {
  const engine = oneOf('--engine', options.engine ?? 'auto', PREFIX_ENGINES);
  const log = options.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : options.log;
  if (engine !== 'tfjs') {
    try {
      const { createOnnxModelRunner } = await import('../onnx/prefix');
      return await createOnnxModelRunner(model, { log });
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0];
      if (engine === 'onnx') throw err instanceof GraftError ? err : new GraftError(`onnxruntime cannot run the model: ${reason}; use --engine tfjs.`, { cause: err });
      log?.(`graft: onnxruntime unavailable (${reason}); running on tfjs ${tf.getBackend()}.`);
    }
  }
  return tfjsModelRunner(model, { owned: false });
}
