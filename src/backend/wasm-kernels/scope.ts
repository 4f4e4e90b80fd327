/**
 * Plumbing for kernels composed from other wasm kernels. A kernel function works on `TensorInfo`s (no engine
 * tensors), so every intermediate it makes must be freed by hand; `KernelScope` records them and frees all but
 * the result, which keeps graft's kernels leak-free however they fail.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs's `BackendWasm` graft's kernels use. */
export interface WasmBackend {
  /** Allocates an output on the wasm heap. */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** Drops one reference to a tensor's data. */
  disposeData(dataId: tf.DataId): boolean;
  /** Adds one reference to a tensor's data. */
  incRef(dataId: tf.DataId): void;
  /** A typed-array view of a tensor on the wasm heap (invalid after the heap grows: take it after allocating). */
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Arguments tfjs passes to a kernel function. */
export interface KernelArgs {
  /** Named input tensors. */
  inputs: Record<string, tf.TensorInfo>;
  /** The wasm backend. */
  backend: WasmBackend;
  /** Kernel attributes. */
  attrs?: Record<string, unknown>;
}

/** Records intermediates of one composed kernel call so that all but the result are freed. */
export class KernelScope {
  private readonly made: tf.TensorInfo[] = [];

  constructor(readonly backend: WasmBackend) {}

  /** Runs another wasm kernel (whatever is registered now) and records its output. */
  run(kernelName: string, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown> = {}): tf.TensorInfo {
    const kernel = tf.getKernel(kernelName, 'wasm');
    if (!kernel) throw new Error(`graft wasm kernels need the wasm kernel ${kernelName}, which is not registered`);
    const out = kernel.kernelFunc({ inputs, backend: this.backend as never, attrs: attrs as never });
    if (Array.isArray(out)) throw new Error(`graft wasm kernels expected one output from ${kernelName}`);
    return this.track(out);
  }

  /** Allocates a new output on the wasm heap and records it. */
  alloc(shape: number[], dtype: tf.DataType = 'float32'): tf.TensorInfo {
    return this.track(this.backend.makeOutput(shape, dtype));
  }

  /** Records a tensor made outside `run`/`alloc` so it is freed with the scope. */
  track(info: tf.TensorInfo): tf.TensorInfo {
    this.made.push(info);
    return info;
  }

  /** Frees every recorded intermediate except `keep`. */
  dispose(keep?: tf.TensorInfo): void {
    for (const info of this.made) if (info !== keep) this.backend.disposeData(info.dataId);
  }
}

/**
 * The same data seen with another shape (row-major order unchanged). It takes no reference, so it must only be
 * passed to kernels while its source lives, never returned or disposed.
 */
export function view(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** Runs `body` in a fresh scope; intermediates are freed even when it throws, and the result is kept. */
export function composed(backend: WasmBackend, body: (scope: KernelScope) => tf.TensorInfo): tf.TensorInfo {
  const scope = new KernelScope(backend);
  let result: tf.TensorInfo | undefined;
  try {
    result = body(scope);
    return result;
  } finally {
    scope.dispose(result);
  }
}
