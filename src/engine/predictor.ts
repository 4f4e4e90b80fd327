/**
 * A Predictor runs a saved model forward on preprocessed NHWC float32 batches. Evaluation, prediction and feature
 * extraction talk only to this interface, so the engine (tfjs in-process, tfjs in worker threads, onnxruntime)
 * is chosen in one place.
 */
import * as tf from '@tensorflow/tfjs';
import { loadModelFolder } from '../io/model-folder';
import { GraftMeta } from '../io/graft-json';

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

/** A Predictor on the current tfjs backend in this thread. */
export async function createTfjsPredictor(modelDir: string): Promise<Predictor> {
  const { model, meta } = await loadModelFolder(modelDir);
  const [h, w, c] = meta.inputShape;
  return {
    engine: `tfjs ${tf.getBackend()}`,
    meta,
    async predict(input, batch) {
      const out = tf.tidy(() => model.predict(tf.tensor4d(input, [batch, h, w, c])) as tf.Tensor);
      try {
        return (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
    },
    async dispose() {
      model.dispose();
    },
  };
}
