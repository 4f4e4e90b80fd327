/**
 * `BatchMatMul` for the wasm backend. tfjs 4.22 sends a product to XNNPACK only when neither operand is
 * transposed and both have batch 1; everything else (so every dense-layer gradient) runs a scalar loop. Here the
 * transposes are made explicit with the XNNPACK-backed `Transpose`, a batched left operand against a shared right
 * one becomes one tall product, and truly batched products run one fast product per batch item.
 */
import * as tf from '@tensorflow/tfjs';
import { composed, KernelArgs, KernelScope, view } from './scope';

/** The shape facts of one product. */
interface Product {
  /** Rows of the (transposed) left operand. */
  m: number;
  /** Shared dimension. */
  k: number;
  /** Columns of the (transposed) right operand. */
  n: number;
  /** Batch sizes of the two operands (product of their leading dimensions). */
  batchA: number;
  batchB: number;
  /** Output shape, batch dimensions broadcast. */
  outShape: number[];
}

function describe(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): Product | undefined {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const [m, k] = transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [kb, n] = transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  // Shapes the original kernel rejects (or broadcasts in ways a per-item loop cannot) stay with it.
  if (k !== kb || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return undefined;
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    return undefined;
  }
  return { m, k, n, batchA, batchB, outShape: [...outer, m, n] };
}

/**
 * Whether computing the transposed product moves fewer floats. Direct: copy each transposed operand, then XNNPACK
 * packs the right one. Swapped: copy each operand that is not transposed, XNNPACK packs op(A)^T, and the result
 * is transposed back.
 */
function swapIsCheaper(p: Product, transposeA: boolean, transposeB: boolean): boolean {
  const sizeA = p.m * p.k;
  const sizeB = p.k * p.n;
  const direct = (transposeA ? sizeA : 0) + (transposeB ? sizeB : 0) + sizeB;
  const swapped = (transposeB ? 0 : sizeB) + (transposeA ? 0 : sizeA) + sizeA + p.m * p.n;
  return swapped < direct;
}

/** Copies batch item `i` of a [batch, rows, cols] tensor into its own tensor (owned by the caller). */
function batchItem(scope: KernelScope, t: tf.TensorInfo, i: number): tf.TensorInfo {
  const [, rows, cols] = t.shape;
  const out = scope.backend.makeOutput([1, rows, cols], 'float32');
  const src = scope.backend.typedArrayFromHeap(t);
  scope.backend.typedArrayFromHeap(out).set(src.subarray(i * rows * cols, (i + 1) * rows * cols));
  return out;
}

/** Wraps the stock kernel (kept for the cases it already sends to XNNPACK) into graft's `BatchMatMul`. */
export function fastBatchMatMul(stock: tf.KernelFunc): (args: KernelArgs) => tf.TensorInfo {
  return (args) => {
    const { a, b } = args.inputs;
    const transposeA = Boolean(args.attrs?.transposeA);
    const transposeB = Boolean(args.attrs?.transposeB);
    const p = a.dtype === 'float32' && b.dtype === 'float32' ? describe(a, b, transposeA, transposeB) : undefined;
    if (!p || (!transposeA && !transposeB && p.batchA === 1 && p.batchB === 1)) {
      return stock(args as never) as tf.TensorInfo;
    }
    const plain = (x: tf.TensorInfo, y: tf.TensorInfo) =>
      stock({ inputs: { a: x, b: y }, backend: args.backend as never, attrs: { transposeA: false, transposeB: false } as never }) as tf.TensorInfo;
    return composed(args.backend, (scope) => {
      if (p.batchA === 1 && p.batchB === 1 && swapIsCheaper(p, transposeA, transposeB)) {
        // C = op(A) op(B) computed as (op(B)^T op(A)^T)^T, so a large transposed operand (the kernel in a dense
        // layer's input gradient) is read in place instead of copied and then packed by XNNPACK.
        const left = transposeB ? view(b, [1, p.n, p.k]) : scope.run('Transpose', { x: view(b, [1, p.k, p.n]) }, { perm: [0, 2, 1] });
        const right = transposeA ? view(a, [1, p.k, p.m]) : scope.run('Transpose', { x: view(a, [1, p.m, p.k]) }, { perm: [0, 2, 1] });
        const cT = scope.track(plain(left, right));
        const c = scope.run('Transpose', { x: cT }, { perm: [0, 2, 1] });
        c.shape = p.outShape;
        return c;
      }
      const a3 = transposeA
        ? scope.run('Transpose', { x: view(a, [p.batchA, p.k, p.m]) }, { perm: [0, 2, 1] })
        : view(a, [p.batchA, p.m, p.k]);
      const b3 = transposeB
        ? scope.run('Transpose', { x: view(b, [p.batchB, p.n, p.k]) }, { perm: [0, 2, 1] })
        : view(b, [p.batchB, p.k, p.n]);
      if (p.batchB === 1) {
        const out = scope.track(plain(view(a3, [1, p.batchA * p.m, p.k]), view(b3, [1, p.k, p.n])));
        out.shape = p.outShape;
        return out;
      }
      const batch = Math.max(p.batchA, p.batchB);
      const out = scope.alloc([batch, p.m, p.n]);
      for (let i = 0; i < batch; i++) {
        const ai = p.batchA === 1 ? undefined : batchItem(scope, a3, i);
        const bi = batchItem(scope, b3, i);
        try {
          const r = plain(ai ?? a3, bi);
          scope.backend.typedArrayFromHeap(out).set(scope.backend.typedArrayFromHeap(r), i * p.m * p.n);
          scope.backend.disposeData(r.dataId);
        } finally {
          if (ai) scope.backend.disposeData(ai.dataId);
          scope.backend.disposeData(bi.dataId);
        }
      }
      out.shape = p.outShape;
      return out;
    });
  };
}
