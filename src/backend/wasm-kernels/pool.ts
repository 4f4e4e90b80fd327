/**
 * `MaxPoolGrad` for the wasm backend. tfjs 4.22's wasm kernel routes gradients to the wrong inputs for some 'same'
 * paddings (3x3, stride 2 on 8x8 or 33x33 inputs, as in Xception's entry flow, differ from the cpu backend and
 * from a direct reference); this one is that reference: each output's gradient goes to the first maximum of its
 * window, in one pass over the heap with the channel axis innermost.
 */
import * as tf from '@tensorflow/tfjs';
import { composed, KernelArgs } from './scope';

/** graft's `MaxPoolGrad` (NHWC, no dilation: what MaxPooling2D layers produce). */
export function maxPoolGrad({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { dy, input } = inputs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const [n, h, w, c] = input.shape;
  const { outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  return composed(backend, (scope) => {
    const dx = scope.alloc(input.shape, 'float32');
    const x = scope.backend.typedArrayFromHeap(input) as Float32Array;
    const g = scope.backend.typedArrayFromHeap(dy) as Float32Array;
    const out = scope.backend.typedArrayFromHeap(dx) as Float32Array;
    out.fill(0);
    const best = new Float32Array(c);
    const at = new Int32Array(c);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < outHeight; i++) {
        const r0 = Math.max(0, i * strideHeight - top);
        const r1 = Math.min(h, i * strideHeight - top + filterHeight);
        for (let j = 0; j < outWidth; j++) {
          const q0 = Math.max(0, j * strideWidth - left);
          const q1 = Math.min(w, j * strideWidth - left + filterWidth);
          if (r0 >= r1 || q0 >= q1) continue; // a window wholly in the padding reads nothing
          // The first tap in window order seeds the maxima; later taps replace them only when strictly greater,
          // so the first maximum wins, as on the cpu backend.
          const first = ((b * h + r0) * w + q0) * c;
          for (let ch = 0; ch < c; ch++) {
            best[ch] = x[first + ch];
            at[ch] = first + ch;
          }
          for (let r = r0; r < r1; r++) {
            for (let q = r === r0 ? q0 + 1 : q0; q < q1; q++) {
              const base = ((b * h + r) * w + q) * c;
              for (let ch = 0; ch < c; ch++) {
                const v = x[base + ch];
                if (v > best[ch]) {
                  best[ch] = v;
                  at[ch] = base + ch;
                }
              }
            }
          }
          const from = ((b * outHeight + i) * outWidth + j) * c;
          for (let ch = 0; ch < c; ch++) out[at[ch]] += g[from + ch];
        }
      }
    }
    return dx;
  });
}
