/**
 * `Slice` for the wasm backend. The stock kernel first copies its whole input out of the wasm heap into a
 * JavaScript array (`readSync`), so every slice costs the full tensor: the gradient of a concatenation (Inception's
 * mixed blocks) slices the same large gradient once per branch, and batching cached features slices a large
 * tensor every step. This one copies only the selected runs, heap to heap.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelArgs } from './scope';

/** Wraps the stock kernel (kept for string tensors, which do not live on the heap). */
export function fastSlice(stock: tf.KernelFunc): (args: KernelArgs) => tf.TensorInfo {
  return (args) => {
    const { x } = args.inputs;
    if (x.dtype === 'string') return stock(args as never) as tf.TensorInfo;
    const { backend } = args;
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as unknown as tf.TensorInfo & { rank: number },
      args.attrs?.begin as number | number[],
      args.attrs?.size as number | number[] | undefined,
    );
    const out = backend.makeOutput(size, x.dtype);
    const total = tf.util.sizeFromShape(size);
    if (total === 0) return out;
    const rank = x.shape.length;
    const strides = [...tf.util.computeStrides(x.shape), 1];
    // Trailing axes taken whole merge with the last partial axis into one contiguous run per copy.
    let k = rank - 1;
    while (k > 0 && begin[k] === 0 && size[k] === x.shape[k]) k--;
    const run = size[k] * strides[k];
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    const index = new Array<number>(k).fill(0);
    for (let offset = 0; offset < total; offset += run) {
      let from = begin[k] * strides[k];
      for (let a = 0; a < k; a++) from += (begin[a] + index[a]) * strides[a];
      dst.set(src.subarray(from, from + run), offset);
      for (let a = k - 1; a >= 0; a--) {
        if (++index[a] < size[a]) break;
        index[a] = 0;
      }
    }
    return out;
  };
}
