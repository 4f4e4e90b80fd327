/**
 * What runs a model forward on a Float32Array. Every engine (tfjs in this thread, tfjs on worker threads,
 * onnxruntime) gives the same `Runner`, so predictors, frozen prefixes and feature extractors share one interface and
 * one tfjs implementation; which engine to use is decided in `engine/`.
 */
import type * as Tf from '@tensorflow/tfjs';

// tfjs loads when a tfjs runner is made: the engine table imports this file on paths that never run tfjs.
const tfjs = () => require('@tensorflow/tfjs') as typeof Tf;

/** What a user may ask for with `--engine` / `--prefix-engine`: `auto` tries the engines in `engine/`'s order. */
export const ENGINE_CHOICES = ['auto', 'onnx', 'tfjs'] as const;
/** An engine request. */
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** A model (or the part of one up to a layer) that only runs forward. */
export interface Runner {
  /** What runs it, e.g. `tfjs wasm` or `onnxruntime cpu x2`. */
  readonly engine: string;
  /** Output shape without the batch dimension. */
  readonly outputShape: number[];
  /** Runs `batch` preprocessed NHWC inputs; returns the outputs, row-major. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  /** Frees the engine's resources (and the model, when the runner owns it). */
  dispose(): Promise<void>;
}

/** Options for `tfjsRunner`. */
export interface TfjsRunnerOptions {
  /** Whether `dispose` frees the model too (default false: the caller owns it). */
  owned?: boolean;
}

/** Runs a single-input tfjs model forward in this thread, in inference mode, reading its weights at each run. */
export function tfjsRunner(model: Tf.LayersModel, options: TfjsRunnerOptions = {}): Runner {
  const tf = tfjs();
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  return {
    engine: `tfjs ${tf.getBackend()}`,
    outputShape: model.outputs[0].shape.slice(1) as number[],
    async run(input, batch) {
      const out = tf.tidy(() => model.predict(tf.tensor(input, [batch, ...inputShape])) as Tf.Tensor);
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

/** Runs `model` from its input to the output of `boundaryLayerName` in tfjs (the prefix half of `splitModel`). */
export function tfjsPrefixRunner(model: Tf.LayersModel, boundaryLayerName: string): Runner {
  const { splitModel } = require('./split') as typeof import('./split');
  const split = splitModel(model, boundaryLayerName);
  split.suffix.dispose();
  return tfjsRunner(split.prefix, { owned: true });
}
