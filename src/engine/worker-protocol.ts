/**
 * Messages between the main thread and graft's tfjs worker threads (`workers.ts` <-> `worker-main.ts`). Arrays
 * travel as Float32Array / Int32Array whose buffers are transferred, never copied.
 */
import type { LossOptions } from '../train/losses';
import type { SliceGradients } from '../train/grad-op';

/** Where a worker gets its model. */
export type ModelSource =
  /** A graft model folder on disk. */
  | { modelDir: string }
  /** In-memory tfjs artifacts (topology JSON, weight specs and one weight buffer). */
  | { artifacts: { modelTopology: object; weightSpecs: unknown[]; weightData: ArrayBuffer } };

/** A request to a worker. */
export type WorkerRequest =
  | { op: 'load'; source: ModelSource; boundary?: string }
  | { op: 'predict'; input: Float32Array; batch: number }
  | { op: 'grads'; x: Float32Array; labels: Int32Array; batch: number; trainable: string[]; state: string[]; loss: LossOptions }
  | { op: 'setWeights'; weights: Record<string, Float32Array> };

/** What a worker answers to `load`. */
export interface LoadReply {
  /** Model input shape without the batch axis. */
  inputShape: number[];
  /** Values per image in the output. */
  outputSize: number;
  /** Weight names (LayerVariable.originalName) of the trainable weights, in model order. */
  trainable: string[];
  /** Every weight name, in model order. */
  weights: string[];
}

/** What a worker answers to `grads`: train/'s slice result. */
export type GradsReply = SliceGradients;

/** A message from the main thread: a request and its id. */
export interface WorkerEnvelope {
  /** Matches the reply to the request. */
  id: number;
  /** The request. */
  request: WorkerRequest;
}

/** A worker's reply. */
export type WorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; message: string; graft: boolean };
