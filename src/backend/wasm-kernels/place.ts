/**
 * Moves NHWC data into a new spatial frame in one pass over the wasm heap: stride dilation (zeros between rows and
 * columns), padding and cropping. Convolution gradients need all three, and tfjs's wasm `Slice` copies its whole
 * input to JavaScript first, so one direct pass is both simpler and cheaper.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelScope } from './scope';

/** Where `placeSpatial` puts its input. */
export interface PlaceArgs {
  /** Zero-dilation factor per spatial axis: input row r lands on row r * stride of the dilated frame. */
  strides: [number, number];
  /** First dilated-frame row and column of the output (negative means zero padding before the data). */
  begin: [number, number];
  /** Output height and width; frame positions beyond the data are zeros. */
  size: [number, number];
}

/**
 * out[n, i, j, c] = D[n, i + begin[0], j + begin[1], c], where D is `x` zero-dilated by `strides` (and zero outside).
 * Returns `x` itself when that is the identity, else a new tensor recorded in `scope`.
 */
export function placeSpatial(scope: KernelScope, x: tf.TensorInfo, args: PlaceArgs): tf.TensorInfo {
  const frame = newFrame(scope, x, args);
  if (!frame) return x;
  const { src, dst } = frame;
  const [n, h, w, c] = x.shape;
  const [sh, sw] = args.strides;
  const [bh, bw] = args.begin;
  const [oh, ow] = args.size;
  // Columns of the output that receive data: (j + bw) divisible by sw, source column in [0, w).
  const cols: Array<[number, number]> = [];
  for (let j = 0; j < ow; j++) {
    const f = j + bw;
    if (f >= 0 && f % sw === 0 && f / sw < w) cols.push([j, f / sw]);
  }
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const f = i + bh;
      if (f < 0 || f % sh !== 0 || f / sh >= h) continue;
      const srcRow = (b * h + f / sh) * w;
      const dstRow = (b * oh + i) * ow;
      if (sw === 1 && cols.length > 0) {
        // Contiguous run of columns: one copy per row.
        const [j0, s0] = cols[0];
        const len = cols.length * c;
        dst.set(src.subarray((srcRow + s0) * c, (srcRow + s0) * c + len), (dstRow + j0) * c);
        continue;
      }
      for (const [j, sj] of cols) dst.set(src.subarray((srcRow + sj) * c, (srcRow + sj + 1) * c), (dstRow + j) * c);
    }
  }
  return frame.out;
}

type HeapArray = Float32Array | Int32Array | Uint8Array;

/**
 * The zero-filled output of a spatial move of `x` with `args`, and heap views of input and output; undefined when
 * the move is the identity (unit strides, no offset, same size).
 */
function newFrame(
  scope: KernelScope,
  x: tf.TensorInfo,
  args: { strides: [number, number]; begin: [number, number]; size: [number, number] },
): { out: tf.TensorInfo; src: HeapArray; dst: HeapArray } | undefined {
  const [n, h, w, c] = x.shape;
  const [oh, ow] = args.size;
  if (args.strides[0] === 1 && args.strides[1] === 1 && args.begin[0] === 0 && args.begin[1] === 0 && oh === h && ow === w) return undefined;
  const out = scope.alloc([n, oh, ow, c], x.dtype);
  // Views are taken after allocating: growing the heap detaches earlier ones.
  const src = scope.backend.typedArrayFromHeap(x);
  const dst = scope.backend.typedArrayFromHeap(out);
  dst.fill(0);
  return { out, src, dst };
}

/** Where `sampleSpatial` reads its input. */
export interface SampleArgs {
  /** Input rows and columns between consecutive output ones. */
  strides: [number, number];
  /** Input row and column of output (0, 0) (negative: zero padding before the data). */
  begin: [number, number];
  /** Output height and width. */
  size: [number, number];
}

/**
 * out[n, i, j, c] = x[n, begin[0] + i * strides[0], begin[1] + j * strides[1], c] (zero outside `x`): the pixels a
 * strided 1x1 convolution reads. Returns `x` itself when that is the identity, else a new tensor recorded in `scope`.
 */
export function sampleSpatial(scope: KernelScope, x: tf.TensorInfo, args: SampleArgs): tf.TensorInfo {
  const frame = newFrame(scope, x, args);
  if (!frame) return x;
  const { src, dst } = frame;
  const [n, h, w, c] = x.shape;
  const [sh, sw] = args.strides;
  const [bh, bw] = args.begin;
  const [oh, ow] = args.size;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const r = bh + i * sh;
      if (r < 0 || r >= h) continue;
      for (let j = 0; j < ow; j++) {
        const col = bw + j * sw;
        if (col < 0 || col >= w) continue;
        const from = ((b * h + r) * w + col) * c;
        dst.set(src.subarray(from, from + c), ((b * oh + i) * ow + j) * c);
      }
    }
  }
  return frame.out;
}
