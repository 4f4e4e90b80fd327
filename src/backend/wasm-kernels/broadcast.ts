/**
 * `Tile` and `Sum` over leading axes for the wasm backend: the broadcast and the reduction every bias and
 * batch-norm gradient does (tfjs's batch-norm gradient tiles 1/sqrt(variance) to the full activation shape, and
 * a bias gradient sums dy over batch, height and width). tfjs 4.22 runs Tile as a scalar loop with index
 * arithmetic per element, and Sum over leading axes by transposing first; both are plain memory passes here.
 */
import * as tf from '@tensorflow/tfjs';
import { composed, KernelArgs } from './scope';

/** Sizes of the trailing blocks: stride[i] = product of shape[i + 1 ...]. */
function strides(shape: number[]): number[] {
  const out = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1] * shape[i + 1];
  return out;
}

/**
 * Tiles `src` (shape `shape`) by `reps` into `dst`. Input rows are copied once to where the first repetition of
 * every outer axis puts them; then, innermost axis first, each finished block is copied after itself (reps - 1)
 * times, so every element is written with bulk copies.
 */
export function tileInto(src: Float32Array | Int32Array | Uint8Array, shape: number[], reps: number[], dst: typeof src): void {
  const rank = shape.length;
  const outShape = shape.map((s, i) => s * reps[i]);
  const outStride = strides(outShape);
  const row = shape[rank - 1];
  const rows = rank > 1 ? tf.util.sizeFromShape(shape.slice(0, -1)) : 1;
  const lead = shape.slice(0, -1);
  /** Output offset of the start of input row `r` (first repetition of every axis). */
  const rowStart = (r: number, axes: number) => {
    let offset = 0;
    for (let a = axes - 1; a >= 0; a--) {
      offset += (r % lead[a]) * outStride[a];
      r = Math.floor(r / lead[a]);
    }
    return offset;
  };
  for (let r = 0; r < rows; r++) {
    const start = rowStart(r, rank - 1);
    const from = src.subarray(r * row, (r + 1) * row);
    for (let k = 0; k < reps[rank - 1]; k++) dst.set(from, start + k * row);
  }
  for (let a = rank - 2; a >= 0; a--) {
    if (reps[a] === 1) continue;
    const block = shape[a] * outStride[a];
    const prefixes = tf.util.sizeFromShape(shape.slice(0, a));
    for (let p = 0; p < prefixes; p++) {
      // The prefix's offset: its input indices on axes < a, at output strides.
      let start = 0;
      let rest = p;
      for (let b = a - 1; b >= 0; b--) {
        start += (rest % shape[b]) * outStride[b];
        rest = Math.floor(rest / shape[b]);
      }
      for (let k = 1; k < reps[a]; k++) dst.copyWithin(start + k * block, start, start + block);
    }
  }
}

/** graft's `Tile`: bulk copies; the stock kernel stays for string tensors. */
export function fastTile(stock: tf.KernelFunc): (args: KernelArgs) => tf.TensorInfo {
  return (args) => {
    const { x } = args.inputs;
    const reps = args.attrs?.reps as number[];
    if (x.dtype === 'string' || x.shape.length === 0 || tf.util.sizeFromShape(x.shape) === 0) return stock(args as never) as tf.TensorInfo;
    return composed(args.backend, (scope) => {
      const out = scope.alloc(
        x.shape.map((s, i) => s * reps[i]),
        x.dtype,
      );
      tileInto(scope.backend.typedArrayFromHeap(x), x.shape, reps, scope.backend.typedArrayFromHeap(out));
      return out;
    });
  };
}

/**
 * graft's `Sum` for float32 reductions over a leading block of axes (e.g. [0, 1, 2] of NHWC): one pass adding
 * rows into a float64 accumulator, no transpose. Other reductions keep the stock kernel.
 */
export function fastSum(stock: tf.KernelFunc): (args: KernelArgs) => tf.TensorInfo {
  return (args) => {
    const { x } = args.inputs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading || tf.util.sizeFromShape(x.shape) === 0) return stock(args as never) as tf.TensorInfo;
    const keepDims = Boolean(args.attrs?.keepDims);
    const inner = x.shape.slice(axes.length);
    const width = tf.util.sizeFromShape(inner);
    const rows = tf.util.sizeFromShape(x.shape) / width;
    return composed(args.backend, (scope) => {
      const out = scope.alloc(keepDims ? [...axes.map(() => 1), ...inner] : inner);
      const src = scope.backend.typedArrayFromHeap(x) as Float32Array;
      const acc = new Float64Array(width);
      for (let r = 0; r < rows; r++) {
        const base = r * width;
        for (let c = 0; c < width; c++) acc[c] += src[base + c];
      }
      (scope.backend.typedArrayFromHeap(out) as Float32Array).set(acc);
      return out;
    });
  };
}
