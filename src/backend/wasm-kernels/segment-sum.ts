/** `UnsortedSegmentSum` for the wasm backend (missing in tfjs 4.22; the gradient of `gather` needs it). */
import * as tf from '@tensorflow/tfjs';
import { KernelArgs } from './scope';

/**
 * out[s, ...] = sum of the rows of x whose segment id is s; ids outside [0, numSegments) are dropped, as in
 * TensorFlow. Ids index the leading axes of x: out has shape [numSegments, ...x.shape.slice(ids rank)].
 */
export function unsortedSegmentSum({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const numSegments = attrs.numSegments as number;
  const rows = tf.util.sizeFromShape(segmentIds.shape);
  const inner = rows === 0 ? 0 : tf.util.sizeFromShape(x.shape) / rows;
  const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  const src = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  const dst = backend.typedArrayFromHeap(out);
  dst.fill(0);
  for (let r = 0; r < rows; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue;
    const from = r * inner;
    const to = s * inner;
    for (let j = 0; j < inner; j++) dst[to + j] += src[from + j];
  }
  return out;
}
