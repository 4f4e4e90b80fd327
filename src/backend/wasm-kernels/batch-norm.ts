/**
 * `FusedBatchNorm` (inference-mode batch norm, and the normalising step of training mode) for the wasm backend.
 * tfjs 4.22 runs it as a scalar loop, about 15% of a ResNet50 forward pass. Per channel it is (x - mean) * k + offset
 * with k = scale / sqrt(variance + epsilon): two 1x1 depthwise convolutions with a bias (x * 1 - mean, then that
 * * k + offset), which XNNPACK runs as its SIMD, threaded channel-wise multiply-add. Folding both into one
 * x * k + (offset - mean * k) would be one pass, but in training mode (batch statistics) it cancels catastrophically
 * when |mean| is large against the spread, so the subtraction comes first, as in tfjs's own kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { composed, KernelArgs, view } from './scope';

/** Whether `t` holds one value per channel (shape [c], or [1, ..., 1, c]). */
function perChannel(t: tf.TensorInfo | undefined, c: number): boolean {
  if (!t) return true;
  const shape = t.shape;
  return t.dtype === 'float32' && shape.length > 0 && shape[shape.length - 1] === c && tf.util.sizeFromShape(shape) === c;
}

/** Wraps the stock kernel (kept for broadcasts other than per-channel) into graft's `FusedBatchNorm`. */
export function fastBatchNorm(stock: tf.KernelFunc): (args: KernelArgs) => tf.TensorInfo {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs;
    const c = x.shape[x.shape.length - 1] ?? 0;
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || c === 0 || size === 0 || ![mean, variance, offset, scale].every((t) => perChannel(t, c))) {
      return stock(args as never) as tf.TensorInfo;
    }
    const epsilon = Number(args.attrs?.varianceEpsilon ?? 0.001);
    return composed(args.backend, (scope) => {
      const ones = scope.alloc([1, 1, c, 1]);
      const minusMean = scope.alloc([c]);
      const filter = scope.alloc([1, 1, c, 1]);
      const bias = scope.alloc([c]);
      // Heap views only after the last allocation (growing the heap detaches earlier ones).
      const heap = (t: tf.TensorInfo | undefined) => (t ? (scope.backend.typedArrayFromHeap(t) as Float32Array) : undefined);
      const [m, v, o, s, one, mm, k, b] = [mean, variance, offset, scale, ones, minusMean, filter, bias].map(heap);
      for (let i = 0; i < c; i++) {
        one![i] = 1;
        mm![i] = -m![i];
        k![i] = (s ? s[i] : 1) / Math.sqrt(v![i] + epsilon);
        b![i] = o ? o[i] : 0;
      }
      // Every leading axis becomes one tall image column: [1, rows, 1, c].
      const column = [1, size / c, 1, c];
      const attrs = { strides: [1, 1], pad: 'valid', dilations: [1, 1], dataFormat: 'NHWC', activation: 'linear' };
      const centred = scope.run('FusedDepthwiseConv2D', { x: view(x, column), filter: ones, bias: minusMean }, attrs);
      const out = scope.run('FusedDepthwiseConv2D', { x: centred, filter, bias }, attrs);
      out.shape = [...x.shape];
      return out;
    });
  };
}
