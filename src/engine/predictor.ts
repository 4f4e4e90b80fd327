/**
 * A Predictor runs a saved model forward on preprocessed NHWC float32 batches. Evaluation, prediction and feature
 * extraction talk only to this interface, so the engine (tfjs in-process, tfjs in worker threads, onnxruntime)
 * is chosen in one place.
 */
import { loadModelFolder } from '../io/model-folder';
import { GraftMeta } from '../io/graft-json';
import { Runner, tfjsRunner } from '../models/runner';

/** Runs a model forward. */
export interface Predictor {
  /** What runs the model, for progress lines and reports (e.g. `tfjs wasm`, `onnxruntime cpu x2`). */
  readonly engine: string;
  /** The model's graft.json. */
  readonly meta: GraftMeta;
  /** Runs `batch` images of the model's input shape (preprocessed, NHWC, float32); returns batch x outputs values. */
  predict(input: Float32Array, batch: number): Promise<Float32Array>;
  /** Frees the model and any workers or sessions. */
  dispose(): Promise<void>;
}

/** A Predictor over a runner of the whole model (the runner's outputs are the model's scores). */
export function runnerPredictor(runner: Runner, meta: GraftMeta): Predictor {
  return { engine: runner.engine, meta, predict: (input, batch) => runner.run(input, batch), dispose: () => runner.dispose() };
}

/** A Predictor on the current tfjs backend in this thread. */
export async function createTfjsPredictor(modelDir: string): Promise<Predictor> {
  const { model, meta } = await loadModelFolder(modelDir);
  return runnerPredictor(tfjsRunner(model, { owned: true }), meta);
}
