/**
 * Worker threads for the wasm backend, which runs one thread in Node: each worker holds its own tfjs, wasm
 * backend (with graft's kernels) and copy of the model, and the main thread splits every batch across them.
 * - `createWorkerPredictor`: data-parallel inference behind the `Predictor` interface.
 * - `createGradientPool`: data-parallel training steps; workers compute gradients on their slices and the caller
 *   averages-then-applies them with its own optimisers, then pushes the new weights back with `setWeights`.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { coreCount, wasmThreadCount } from '../backend';
import { GraftError, oneOf, positiveInt } from '../errors';
import { readGraftMeta } from '../io/graft-json';
import { modelArtifacts } from '../io/model-folder';
import type { LossOptions } from '../train/losses';
import { Predictor, createTfjsPredictor } from './predictor';
import { GradsReply, LoadReply, ModelSource, WorkerReply, WorkerRequest } from './worker-protocol';

/** Backends a worker can run. */
export const WORKER_BACKENDS = ['wasm', 'cpu'] as const;

/** Options for starting worker threads. */
export interface WorkerPoolOptions {
  /** Number of worker threads (default: every core). */
  threads?: number;
  /** tfjs backend inside each worker (default wasm; cpu exists for tests and comparisons). */
  backend?: (typeof WORKER_BACKENDS)[number];
}

export { coreCount };

// Worker threads start from this file's sibling: worker-main.js when built, worker-main.ts under ts-jest, where a
// require hook transpiles TypeScript with the project's own compiler (a dev dependency, present whenever .ts runs).
const BOOT = `
const { workerData } = require('node:worker_threads');
if (workerData.typescript) {
  const ts = require(workerData.typescript);
  const fs = require('node:fs');
  require.extensions['.ts'] = (module, filename) => {
    const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true },
    });
    module._compile(outputText, filename);
  };
}
require(workerData.entry);
`;

/** One worker and its pending requests. */
class WorkerHandle {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(backend: string) {
    const ext = path.extname(__filename);
    const entry = path.join(__dirname, `worker-main${ext}`);
    const typescript = ext === '.ts' ? require.resolve('typescript') : undefined;
    this.worker = new Worker(BOOT, { eval: true, workerData: { entry, typescript, backend } });
    this.worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(reply.graft ? new GraftError(reply.message) : new Error(`graft worker: ${reply.message}`));
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', (err) => fail(new Error(`graft worker thread failed: ${err.message}`)));
    this.worker.on('exit', (code) => fail(new Error(`graft worker thread exited (code ${code})`)));
  }

  /** Sends a request; the buffers listed in `transfer` move to the worker. */
  call<T>(request: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    // Referenced only while a request is pending: an idle pool never keeps the process alive.
    this.worker.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, request }, transfer);
    }).finally(() => {
      if (this.pending.size === 0) this.worker.unref();
    });
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/** Worker threads that each hold the same model. */
class WorkerPool {
  private constructor(
    readonly workers: WorkerHandle[],
    readonly info: LoadReply,
  ) {}

  static async start(source: ModelSource, options: WorkerPoolOptions & { boundary?: string }): Promise<WorkerPool> {
    const threads = options.threads === undefined ? coreCount() : positiveInt('threads', options.threads);
    const backend = oneOf('worker backend', options.backend ?? 'wasm', WORKER_BACKENDS);
    const workers = Array.from({ length: threads }, () => new WorkerHandle(backend));
    try {
      const infos = await Promise.all(workers.map((w) => w.call<LoadReply>({ op: 'load', source, boundary: options.boundary })));
      return new WorkerPool(workers, infos[0]);
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
  }

  /** Splits `batch` rows into one contiguous slice per worker (fewer workers than rows get the rest). */
  slices(batch: number): Array<{ worker: WorkerHandle; start: number; count: number }> {
    const n = Math.min(this.workers.length, batch);
    return Array.from({ length: n }, (_, i) => {
      const start = Math.floor((i * batch) / n);
      return { worker: this.workers[i], start, count: Math.floor(((i + 1) * batch) / n) - start };
    });
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Options for `createWorkerPredictor`. */
export type WorkerPredictorOptions = WorkerPoolOptions;

/** A Predictor that splits each batch across worker threads, each running the model on its own wasm backend. */
export async function createWorkerPredictor(modelDir: string, options: WorkerPredictorOptions = {}): Promise<Predictor> {
  const meta = readGraftMeta(modelDir);
  const pool = await WorkerPool.start({ modelDir: path.resolve(modelDir) }, options);
  const rowSize = tf.util.sizeFromShape(pool.info.inputShape);
  return {
    engine: `tfjs ${options.backend ?? 'wasm'} x${pool.workers.length} workers`,
    meta,
    async predict(input, batch) {
      if (input.length !== batch * rowSize) {
        throw new GraftError(`predict got ${input.length} values for batch ${batch}; expected batch x ${pool.info.inputShape.join('x')} = ${batch * rowSize}.`);
      }
      const parts = await Promise.all(
        pool.slices(batch).map(({ worker, start, count }) => {
          // A copy per slice, transferred: the caller keeps its input, and the worker gets a buffer of its own.
          const slice = input.slice(start * rowSize, (start + count) * rowSize);
          return worker.call<Float32Array>({ op: 'predict', input: slice, batch: count }, [slice.buffer]);
        }),
      );
      return concat(parts);
    },
    async dispose() {
      await pool.terminate();
    },
  };
}

/** Options for `createTfjsEnginePredictor`. */
export interface TfjsEnginePredictorOptions {
  /** Threads allowed (default every core); 1 keeps the model in this thread. */
  threads?: number;
  /**
   * Milliseconds per image (measured once on open) from which worker threads are used; below it their start-up
   * (about a second) and message passing cost more than they save. Default 20.
   */
  minMsPerImage?: number;
}

/**
 * The tfjs engine's Predictor: the model in this thread, or split across worker threads when the backend is a
 * single-threaded wasm, more than one thread is allowed, and the model is slow enough for them to pay off.
 */
export async function createTfjsEnginePredictor(modelDir: string, options: TfjsEnginePredictorOptions = {}): Promise<Predictor> {
  const threads = options.threads === undefined ? coreCount() : positiveInt('threads', options.threads);
  const local = await createTfjsPredictor(modelDir);
  // A threaded wasm backend already computes on several cores in this thread; copies of the model in workers only
  // pay when it is single-threaded.
  if (tf.getBackend() !== 'wasm' || threads < 2 || wasmThreadCount() > 1) return local;
  let msPerImage: number;
  try {
    const batch = 2;
    const input = new Float32Array(batch * tf.util.sizeFromShape(local.meta.inputShape));
    await local.predict(input, batch); // the first run creates XNNPACK operators and packs weights
    const t = process.hrtime.bigint();
    await local.predict(input, batch);
    msPerImage = Number(process.hrtime.bigint() - t) / 1e6 / batch;
  } catch (err) {
    await local.dispose();
    throw err;
  }
  if (msPerImage < (options.minMsPerImage ?? 20)) return local;
  await local.dispose();
  return createWorkerPredictor(modelDir, { threads });
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Options for `createGradientPool`. */
export interface GradientPoolOptions extends WorkerPoolOptions {
  /** The model to copy into every worker (its current weights). */
  model: tf.LayersModel;
  /** The loss, as `classificationLoss` takes it. */
  loss: LossOptions;
  /**
   * Last layer of the frozen prefix (a group boundary every path passes through): the prefix then runs outside the
   * gradient tape, which saves its activations' memory and the tape's work. Default: none, the whole model on tape.
   */
  boundary?: string;
}

/** One data-parallel gradient computation. */
export interface GradientStepArgs {
  /** Preprocessed images, NHWC float32, `batch` rows. */
  x: Float32Array;
  /** Integer labels, one per row. */
  labels: Int32Array;
  /** Rows in `x`. */
  batch: number;
  /** Names (`originalName`) of the weights to differentiate; default every trainable weight of the model. */
  trainable?: string[];
  /** Names of weights a training step changes without gradients (batch-norm moving statistics) to report back. */
  state?: string[];
}

/** What `grads` returns: the whole batch's mean loss and gradients, as tensors on the main thread's backend. */
export interface GradientStep {
  /** Mean loss over the batch. */
  loss: number;
  /** Gradient of the batch's mean loss, by weight name (the caller disposes them). */
  grads: Record<string, tf.Tensor>;
  /** Model outputs for the batch (batch x outputs), e.g. for accuracy. */
  probs: Float32Array;
  /** Requested state weights after the step, averaged over workers (the caller disposes them). */
  state: Record<string, tf.Tensor>;
}

/** Worker threads that compute gradients of one model on slices of a batch. */
export interface GradientPool {
  /** Worker count. */
  readonly threads: number;
  /** Trainable weight names of the model, in order. */
  readonly trainable: readonly string[];
  /** Gradients of the batch's mean loss: each worker takes a slice; slice results are averaged by slice size. */
  grads(args: GradientStepArgs): Promise<GradientStep>;
  /** Copies weights (by name) into every worker, e.g. after the optimiser step or a schedule change of frozen layers. */
  setWeights(weights: Record<string, tf.Tensor>): Promise<void>;
  /** Stops the workers. */
  dispose(): Promise<void>;
}

/**
 * Starts a gradient pool for the model as it is now (trainable flags included: after freezing or unfreezing layers,
 * start a new pool). Batch-norm layers see per-slice batch statistics (as in PyTorch's DistributedDataParallel
 * without SyncBatchNorm), so with batch-norm layers in training mode the gradients differ from one-thread ones.
 */
export async function createGradientPool(options: GradientPoolOptions): Promise<GradientPool> {
  const artifacts = await modelArtifacts(options.model);
  const weightData = new tf.io.CompositeArrayBuffer(artifacts.weightData).slice();
  const source: ModelSource = {
    artifacts: { modelTopology: artifacts.modelTopology as object, weightSpecs: artifacts.weightSpecs ?? [], weightData },
  };
  const pool = await WorkerPool.start(source, options);
  const shapes = new Map(options.model.weights.map((w) => [w.originalName, w.shape as number[]]));
  const rowSize = tf.util.sizeFromShape(pool.info.inputShape);
  return {
    threads: pool.workers.length,
    trainable: pool.info.trainable,
    async grads(args) {
      const { batch } = args;
      if (args.x.length !== batch * rowSize || args.labels.length !== batch) {
        throw new GraftError(`grads got ${args.x.length} values and ${args.labels.length} labels for batch ${batch}; expected ${batch * rowSize} and ${batch}.`);
      }
      const trainable = args.trainable ?? pool.info.trainable.slice();
      const state = args.state ?? [];
      const parts = await Promise.all(
        pool.slices(batch).map(({ worker, start, count }) => {
          const x = args.x.slice(start * rowSize, (start + count) * rowSize);
          const labels = args.labels.slice(start, start + count);
          const request: WorkerRequest = { op: 'grads', x, labels, batch: count, trainable, state, loss: options.loss };
          return worker.call<GradsReply>(request, [x.buffer, labels.buffer]).then((reply) => ({ reply, count }));
        }),
      );
      const weightOf = (count: number) => count / batch;
      const average = (pick: (r: GradsReply) => Float32Array, name: string): tf.Tensor => {
        const sum = new Float32Array(pick(parts[0].reply).length);
        for (const { reply, count } of parts) {
          const values = pick(reply);
          const w = weightOf(count);
          for (let i = 0; i < sum.length; i++) sum[i] += w * values[i];
        }
        return tf.tensor(sum, shapes.get(name));
      };
      return {
        loss: parts.reduce((s, { reply, count }) => s + weightOf(count) * reply.loss, 0),
        grads: Object.fromEntries(trainable.map((name) => [name, average((r) => r.grads[name], name)])),
        probs: concat(parts.map(({ reply }) => reply.probs)),
        state: Object.fromEntries(state.map((name) => [name, average((r) => r.state[name], name)])),
      };
    },
    async setWeights(weights) {
      const values: Record<string, Float32Array> = {};
      for (const [name, t] of Object.entries(weights)) values[name] = (await t.data()) as Float32Array;
      await Promise.all(
        pool.workers.map((w) => {
          // Every worker needs its own buffers to take ownership of.
          const copy = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.slice()]));
          return w.call({ op: 'setWeights', weights: copy }, Object.values(copy).map((v) => v.buffer));
        }),
      );
    },
    async dispose() {
      await pool.terminate();
    },
  };
}
