/**
 * Entry point of one graft worker thread: its own tfjs with its own wasm backend (graft's kernels included, via
 * `initBackend`), one model, and requests answered in order. Started only by `workers.ts`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import { GraftError } from '../errors';
import { loadModelFolder } from '../io/model-folder';
import { syncFrozenBatchNorm } from '../train/freeze';
import { sliceGradients } from '../train/grad-op';
import { tfjsRunner } from '../models/runner';
import { SplitModel, splitModel } from '../models/split';
import { GradsReply, LoadReply, ModelSource, WorkerEnvelope, WorkerReply, WorkerRequest } from './worker-protocol';

let model: tf.LayersModel | undefined;
let split: SplitModel | undefined;
let byName = new Map<string, tf.LayerVariable>();

async function load(source: ModelSource, boundary: string | undefined): Promise<LoadReply> {
  split?.dispose();
  split = undefined;
  model?.dispose();
  if ('modelDir' in source) {
    model = (await loadModelFolder(source.modelDir)).model;
  } else {
    const { modelTopology, weightSpecs, weightData } = source.artifacts;
    model = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology, weightSpecs: weightSpecs as tf.io.WeightsManifestEntry[], weightData }),
    );
  }
  // Frozen batch-norm layers run in inference mode, as graft's training loop runs them in the main thread.
  syncFrozenBatchNorm(model);
  byName = new Map(model.weights.map((w) => [w.originalName, w]));
  if (boundary) split = splitModel(model, boundary);
  return {
    inputShape: model.inputs[0].shape.slice(1) as number[],
    outputSize: tf.util.sizeFromShape(model.outputs[0].shape.slice(1) as number[]),
    trainable: model.trainableWeights.map((w) => w.originalName),
    weights: model.weights.map((w) => w.originalName),
  };
}

function loaded(): tf.LayersModel {
  if (!model) throw new Error('graft worker: no model loaded');
  return model;
}

function weight(name: string): tf.LayerVariable {
  const w = byName.get(name);
  if (!w) throw new GraftError(`the model has no weight named ${name}; its weights are ${[...byName.keys()].slice(0, 8).join(', ')}...`);
  return w;
}

async function predict(input: Float32Array, batch: number): Promise<Float32Array> {
  return tfjsRunner(loaded()).run(input, batch);
}

async function grads(req: Extract<WorkerRequest, { op: 'grads' }>): Promise<GradsReply> {
  const m = loaded();
  return sliceGradients({ model: m, split, weight, x: req.x, labels: req.labels, batch: req.batch, trainable: req.trainable, state: req.state, loss: req.loss });
}

function setWeights(weights: Record<string, Float32Array>): null {
  for (const [name, values] of Object.entries(weights)) {
    const w = weight(name);
    const t = tf.tensor(values, w.shape as number[]);
    try {
      w.write(t);
    } finally {
      // The variable keeps its own reference to the data.
      t.dispose();
    }
  }
  return null;
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.op) {
    case 'load':
      return load(request.source, request.boundary);
    case 'predict':
      return predict(request.input, request.batch);
    case 'grads':
      return grads(request);
    case 'setWeights':
      return setWeights(request.weights);
  }
}

/** Buffers of typed arrays inside a reply, so they are moved to the main thread rather than copied. */
function transferables(value: unknown, out: ArrayBuffer[] = []): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (!out.includes(value.buffer as ArrayBuffer)) out.push(value.buffer as ArrayBuffer);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) transferables(v, out);
  }
  return out;
}

const port = parentPort;
if (!port) throw new Error('graft worker-main must run in a worker thread started by src/engine/workers.ts');
const ready = initBackend({ backend: (workerData as { backend: string }).backend, log: null });
// Requests run strictly in order: tfjs in this thread is one engine, and the main thread awaits each reply.
let queue: Promise<void> = Promise.resolve();
port.on('message', ({ id, request }: WorkerEnvelope) => {
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      await ready;
      reply = { id, ok: true, result: await handle(request) };
    } catch (err) {
      reply = { id, ok: false, message: err instanceof Error ? err.message : String(err), graft: err instanceof GraftError };
    }
    port.postMessage(reply, transferables(reply));
  });
});
