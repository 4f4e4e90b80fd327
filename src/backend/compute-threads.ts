/**
 * How many cores this process computes on, kept apart from backend/index.ts so that engines which never load tfjs
 * (onnxruntime) can read it without loading tfjs.
 */
import * as os from 'node:os';
import { positiveInt } from '../errors';

let given: number | undefined;

/** Records the thread count `initBackend` was given (`--threads`). */
export function setComputeThreads(threads: number): void {
  given = threads;
}

/**
 * Cores this process computes on: the `threads` last given to `initBackend` (`--threads`), else GRAFT_THREADS, else
 * every core. Engines other than tfjs (onnxruntime sessions) default to it, so `--threads` holds on every path.
 */
export function computeThreads(): number {
  return given ?? positiveInt('GRAFT_THREADS', process.env.GRAFT_THREADS ?? (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length));
}

/**
 * Marks (in `workerData`) a worker thread that runs a whole command for the process (bin/graft runs `graft features`
 * so): it owns the cores as the main thread would, and may start tfjs's threaded wasm build.
 */
export const WHOLE_PROCESS_WORKER = 'graftWholeProcess';
