import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend';
import { createRng } from '../../src/util/rng';

/** Runs `fn` on `backend` and returns its outputs' values (all tensors made inside are disposed). */
export async function valuesOn(backend: 'cpu' | 'wasm', fn: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend({ backend, log: null });
  const outs = tf.tidy(fn);
  const list = Array.isArray(outs) ? outs : [outs];
  try {
    return list.map((t) => Float32Array.from(t.dataSync()));
  } finally {
    tf.dispose(list);
  }
}

// One definition of the comparison for every test that compares two engines' numbers.
export { relativeError } from './onnx-models';

/** Seeded normal values. */
export function randomValues(seed: string, size: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: size }, () => rng.normal());
}

/** Engine tensors and backend data buffers: both must stay flat (kernels work below the engine's bookkeeping). */
export function liveCounts(): { tensors: number; buffers: number } {
  return { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
}
