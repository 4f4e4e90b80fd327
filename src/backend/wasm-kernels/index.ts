/**
 * graft's kernels for tfjs's wasm backend: the gradients tfjs 4.22 lacks there (so convolution layers can train)
 * and faster versions of the ones it runs as scalar loops or through needless copies. All are built from XNNPACK-backed wasm kernels.
 * `registerWasmKernels` runs from an `onBackendReady` hook in `src/backend`, so every `initBackend` gets them.
 */
import * as tf from '@tensorflow/tfjs';
import {
  conv2DBackpropFilter,
  conv2DBackpropInput,
  depthwiseConv2dNativeBackpropFilter,
  depthwiseConv2dNativeBackpropInput,
} from './conv-grads';
import { fastBatchNorm } from './batch-norm';
import { fastSum, fastTile } from './broadcast';
import { fastBatchMatMul } from './matmul';
import { maxPoolGrad } from './pool';
import { unsortedSegmentSum } from './segment-sum';
import { fastSlice } from './slice';
import { KernelArgs } from './scope';

/** One graft kernel: its name, and how to build it from the stock kernel it replaces (if any). */
interface GraftKernel {
  /** tfjs kernel name. */
  name: string;
  /** Builds the kernel function; `stock` is the kernel registered before graft's. */
  make(stock: tf.KernelFunc | undefined): (args: KernelArgs) => tf.TensorInfo;
}

/** Every kernel graft registers for wasm, replacing any stock version. */
const KERNELS: readonly GraftKernel[] = [
  { name: 'Conv2DBackpropFilter', make: () => conv2DBackpropFilter },
  { name: 'Conv2DBackpropInput', make: () => conv2DBackpropInput },
  { name: 'DepthwiseConv2dNativeBackpropInput', make: () => depthwiseConv2dNativeBackpropInput },
  { name: 'DepthwiseConv2dNativeBackpropFilter', make: () => depthwiseConv2dNativeBackpropFilter },
  { name: 'UnsortedSegmentSum', make: () => unsortedSegmentSum },
  { name: 'MaxPoolGrad', make: () => maxPoolGrad },
  { name: 'BatchMatMul', make: (stock) => fastBatchMatMul(needStock('BatchMatMul', stock)) },
  { name: 'Slice', make: (stock) => fastSlice(needStock('Slice', stock)) },
  { name: 'FusedBatchNorm', make: (stock) => fastBatchNorm(needStock('FusedBatchNorm', stock)) },
  { name: 'Tile', make: (stock) => fastTile(needStock('Tile', stock)) },
  { name: 'Sum', make: (stock) => fastSum(needStock('Sum', stock)) },
];

function needStock(name: string, stock: tf.KernelFunc | undefined): tf.KernelFunc {
  if (!stock) throw new Error(`graft needs the stock wasm ${name} kernel to build its faster one`);
  return stock;
}

/** Marks kernel functions as graft's, so registering twice is a no-op rather than wrapping a wrapper. */
const GRAFT_KERNEL = Symbol.for('graft.wasmKernel');

/** Names of the wasm kernels graft provides. */
export const WASM_KERNEL_NAMES: readonly string[] = KERNELS.map((k) => k.name);

/** Registers graft's wasm kernels, replacing stock ones; idempotent. */
export function registerWasmKernels(): void {
  for (const kernel of KERNELS) {
    const existing = tf.getKernel(kernel.name, 'wasm');
    if (existing && (existing.kernelFunc as unknown as Record<symbol, boolean>)[GRAFT_KERNEL]) continue;
    const kernelFunc = kernel.make(existing?.kernelFunc) as unknown as tf.KernelFunc;
    (kernelFunc as unknown as Record<symbol, boolean>)[GRAFT_KERNEL] = true;
    if (existing) tf.unregisterKernel(kernel.name, 'wasm');
    // The stock setup (cwrap of its wasm export) is kept: graft's BatchMatMul calls the stock function, and a
    // re-initialised backend must set it up again.
    tf.registerKernel({ kernelName: kernel.name, backendName: 'wasm', kernelFunc, setupFunc: existing?.setupFunc });
  }
}

/** The `onBackendReady` hook: graft's kernels whenever the wasm backend becomes active. */
export function registerWasmKernelsFor(backend: string): void {
  if (backend === 'wasm') registerWasmKernels();
}

/** Whether graft's kernels are the ones registered for wasm now (for `graft doctor` and tests). */
export function wasmKernelsRegistered(): boolean {
  return KERNELS.every((k) => {
    const kernel = tf.getKernel(k.name, 'wasm');
    return Boolean(kernel && (kernel.kernelFunc as unknown as Record<symbol, boolean>)[GRAFT_KERNEL]);
  });
}
