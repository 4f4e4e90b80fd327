/**
 * tfjs's wasm backend on every core in Node. tfjs 4.22 ships a threaded SIMD build (XNNPACK with a pthreadpool on
 * emscripten's worker threads) but loads it only in browsers (tensorflow/tfjs#3830): in Node its feature flag says
 * "no threads", the worker script is served as a Blob URL that Node's `Worker` cannot open, and the pool is sized
 * from half the logical cores (one on a 2-core machine). This module builds that same module itself and registers it
 * as the `wasm` backend, so every op tfjs runs through XNNPACK (convolutions, matmuls, and graft's gradient kernels
 * built from them) is split across threads in-process.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMainThread, workerData } from 'node:worker_threads';
import { WHOLE_PROCESS_WORKER } from './compute-threads';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../io/atomic';

/** The emscripten module the threaded build's factory resolves to (only what graft touches). */
interface WasmModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => number;
  tfjs?: Record<string, (...args: number[]) => number>;
  PThread: { runningWorkers: Array<{ unref(): void }>; terminateAllThreads(): void };
}

/** Minimal typing of the emscripten factory config this module passes. */
interface FactoryConfig {
  locateFile(file: string): string;
  mainScriptUrlOrBlob: string;
  instantiateWasm(imports: { env: Record<string, unknown> }, receive: (instance: unknown, module: unknown) => void): object;
}

/** The part of the WebAssembly global used here (graft compiles without the DOM library, which declares it). */
const webAssembly = (globalThis as unknown as { WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: unknown; module: unknown }> } })
  .WebAssembly;

type WasmPackage = {
  BackendWasm: new (module: WasmModule) => tf.KernelBackend;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
};

/** The wasm backend's priority in tfjs (the same as the stock registration). */
const WASM_PRIORITY = 2;

type BackendFactory = () => tf.KernelBackend | Promise<tf.KernelBackend>;
let stockFactory: BackendFactory | undefined;
let registeredThreads = 1;

/** Where the threaded build's files are: the package's `wasm-out` folder. */
function wasmOut(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js'));
}

/**
 * The pthread worker script as a file Node's `Worker` can start. tfjs keeps it as a string (for a Blob); it goes
 * to the temp folder under a name that is its own hash, written atomically, so concurrent processes agree.
 */
async function workerScript(out: string): Promise<string> {
  const { wasmWorkerContents } = require(path.join(out, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  // The string came out of a template literal, so the "\n" escapes inside its string literals are real newlines
  // again; tfjs re-escapes them the same way before making its Blob.
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `graft-tfjs-wasm-threads-${hash}.worker.js`);
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== source) await writeFileAtomic(file, source);
  return file;
}

/** Builds the threaded SIMD module with a pool of `threads` (this thread included). */
async function threadedModule(threads: number): Promise<WasmModule> {
  const out = wasmOut();
  const factory = require(path.join(out, 'tfjs-backend-wasm-threaded-simd.js')) as (config: FactoryConfig) => Promise<WasmModule>;
  const worker = await workerScript(out);
  const wasmFile = path.join(out, 'tfjs-backend-wasm-threaded-simd.wasm');
  // emscripten waits forever for an instantiateWasm that never calls back; a failure must end the wait instead.
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  const built = factory({
    locateFile: (file) => (file.endsWith('.worker.js') ? worker : file.endsWith('.wasm') ? wasmFile : path.join(out, file)),
    // The pthread workers load the module's JavaScript from here (a path, where a browser gets a Blob).
    mainScriptUrlOrBlob: path.join(out, 'tfjs-backend-wasm-threaded-simd.js'),
    instantiateWasm(imports, receive) {
      // The backend caps its pool at half the logical cores it is told about (hyper-threads in browsers);
      // telling it twice the requested count lets `init_with_threads_count` grant exactly that many.
      imports.env.emscripten_num_logical_cores = () => 2 * threads;
      webAssembly.instantiate(fs.readFileSync(wasmFile), imports).then(
        ({ instance, module: compiled }) => receive(instance, compiled),
        (err: Error) => fail(err),
      );
      return {};
    },
  });
  const module = await Promise.race([built, failed]);
  // The same wrappers tfjs's own loader adds; BackendWasm calls them.
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return module;
}

/**
 * Whether this thread can run the threaded build: Node's main thread, or a worker that runs a whole command (graft's
 * own evaluation workers run one thread each).
 */
export function canThreadWasm(): boolean {
  const whole = isMainThread || (workerData as Record<string, unknown> | null)?.[WHOLE_PROCESS_WORKER] === true;
  return whole && typeof SharedArrayBuffer === 'function';
}

/**
 * Registers the `wasm` backend with `threads` threads (1 = tfjs's stock single-threaded SIMD build). Takes effect the
 * next time the backend initialises; an active wasm backend with another count is removed first, so its tensors are
 * gone (call this before creating models).
 */
export function registerWasmThreads(threads: number): void {
  const wasm = require('@tensorflow/tfjs-backend-wasm') as WasmPackage;
  stockFactory ??= tf.findBackendFactory('wasm') as BackendFactory | undefined;
  if (threads === registeredThreads && tf.findBackendFactory('wasm')) return;
  if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
  registeredThreads = threads;
  if (threads <= 1) {
    if (stockFactory) tf.registerBackend('wasm', stockFactory, WASM_PRIORITY);
    return;
  }
  tf.registerBackend(
    'wasm',
    async () => {
      const module = await threadedModule(threads);
      wasm.setThreadsCount(threads);
      const backend = new wasm.BackendWasm(module);
      // The constructor started the XNNPACK pool, whose threads live as long as the module. emscripten holds a
      // reference on a worker while its thread runs, which would keep Node from ever exiting; the pool's work
      // is synchronous to this thread (it waits on shared memory), so the references are not needed.
      for (const worker of module.PThread.runningWorkers) worker.unref();
      // tfjs's dispose frees tensors but not threads; a backend replaced by another thread count ends its own.
      const dispose = backend.dispose.bind(backend);
      backend.dispose = () => {
        dispose();
        module.PThread.terminateAllThreads();
      };
      return backend;
    },
    WASM_PRIORITY,
  );
}

/** Threads the active wasm backend's XNNPACK pool uses (1 when wasm is not active or single-threaded). */
export function wasmThreadCount(): number {
  if (tf.getBackend() !== 'wasm') return 1;
  const wasm = require('@tensorflow/tfjs-backend-wasm') as WasmPackage;
  return Math.max(1, wasm.getThreadsCount());
}
