/**
 * `FusedBatchNorm` (inference-mode batch norm, and the normalising step of training mode) for the wasm backend.
 * tfjs 4.22 runs it as a scalar loop, about 15% of a ResNet50 forward pass. Per channel it is y = x * k + b with
 * k = scale / sqrt(variance + epsilon) and b = offset - mean * k: a 1x1 depthwise convolution with a bias, which
 * XNNPACK runs as its SIMD, threaded channel-wise multiply-add.
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
      const filter = scope.alloc([1, 1, c, 1]);
      const bias = scope.alloc([c]);
      // Heap views only after the last allocation (growing the heap detaches earlier ones).
      const heap = (t: tf.TensorInfo | undefined) => (t ? (scope.backend.typedArrayFromHeap(t) as Float32Array) : undefined);
      const [m, v, o, s, k, b] = [mean, variance, offset, scale, filter, bias].map(heap);
      for (let i = 0; i < c; i++) {
        const mult = (s ? s[i] : 1) / Math.sqrt(v![i] + epsilon);
        k![i] = mult;
        b![i] = (o ? o[i] : 0) - m![i] * mult;
      }
      // Every leading axis becomes one tall image column: [1, rows, 1, c].
      const out = scope.run(
        'FusedDepthwiseConv2D',
        { x: view(x, [1, size / c, 1, c]), filter, bias },
        { strides: [1, 1], pad: 'valid', dilations: [1, 1], dataFormat: 'NHWC', activation: 'linear' },
      );
      out.shape = [...x.shape];
      return out;
    });
  };
}
