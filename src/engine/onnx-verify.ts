/**
 * Checks an ONNX export against tfjs on the same inputs: what `graft export --verify` reports and what a user runs
 * before trusting an exported file in another runtime.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../util/rng';
import { loadModelFolder } from '../io/model-folder';
import { createOnnxSession, runSession } from './onnx-runtime';

/** Options for `verifyOnnxExport`. */
export interface VerifyOnnxOptions {
  /** Images in the random batch (default 2). */
  batch?: number;
  /** Seed of the random inputs (default 0). */
  seed?: number;
  /** onnxruntime intra-op threads (default: one per core). */
  threads?: number;
}

/** How far the exported graph is from tfjs. */
export interface VerifyOnnxResult {
  /** Largest |onnx - tfjs| over the largest |tfjs| output. */
  relativeError: number;
  /** Largest |onnx - tfjs|. */
  maxAbsError: number;
  /** Output values compared. */
  values: number;
}

/** Runs the model folder in tfjs and the ONNX file in onnxruntime on one random batch and compares outputs. */
export async function verifyOnnxExport(modelDir: string, onnxFile: string | Uint8Array, options: VerifyOnnxOptions = {}): Promise<VerifyOnnxResult> {
  const { model, meta } = await loadModelFolder(modelDir);
  const batch = options.batch ?? 2;
  const dims = [batch, ...meta.inputShape];
  const rng = createRng(options.seed ?? 0);
  // Inputs in the range the model's preprocessing produces, roughly: [-128, 128] covers caffe, others are smaller.
  const scale = meta.preprocessing === 'caffe' || meta.preprocessing === 'none' ? 128 : 1;
  const input = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(-scale, scale));
  let expected: Float32Array;
  try {
    // The values are read outside tidy, which would walk a returned typed array element by element.
    const out = tf.tidy(() => model.predict(tf.tensor(input, dims)) as tf.Tensor);
    expected = out.dataSync() as Float32Array;
    out.dispose();
  } finally {
    model.dispose();
  }
  const { session } = await createOnnxSession(onnxFile, { threads: options.threads, log: null });
  let actual: Float32Array;
  try {
    actual = await runSession(session, input, dims);
  } finally {
    await session.release();
  }
  let maxAbsError = 0;
  let peak = 0;
  for (let i = 0; i < expected.length; i++) {
    maxAbsError = Math.max(maxAbsError, Math.abs(actual[i] - expected[i]));
    peak = Math.max(peak, Math.abs(expected[i]));
  }
  return { relativeError: maxAbsError / Math.max(peak, 1e-12), maxAbsError, values: expected.length };
}
