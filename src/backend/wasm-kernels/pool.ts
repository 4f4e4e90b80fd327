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
        for (let j = 0; j < outWidth; j++) {
          best.fill(-Infinity);
          at.fill(-1);
          for (let di = 0; di < filterHeight; di++) {
            const r = i * strideHeight - top + di;
            if (r < 0 || r >= h) continue;
            for (let dj = 0; dj < filterWidth; dj++) {
              const q = j * strideWidth - left + dj;
              if (q < 0 || q >= w) continue;
              const base = ((b * h + r) * w + q) * c;
              for (let ch = 0; ch < c; ch++) {
                // Strictly greater: the first maximum in window order wins, as on the cpu backend.
                if (x[base + ch] > best[ch] || at[ch] < 0) {
                  best[ch] = x[base + ch];
                  at[ch] = base + ch;
                }
              }
            }
          }
          const from = ((b * outHeight + i) * outWidth + j) * c;
          for (let ch = 0; ch < c; ch++) if (at[ch] >= 0) out[at[ch]] += g[from + ch];
        }
      }
    }
    return dx;
  });
}
