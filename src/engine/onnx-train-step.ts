/**
 * Runs a compiled training step (`onnx/train-step`) on onnxruntime. Weights, optimiser slots and BN moving
 * statistics live as onnxruntime tensors between steps (each step's outputs are the next step's inputs), and only
 * go back to tfjs on `writeBack` (before validation, checkpoints, the end of a stage), in GroupOptimizer's state
 * format, so a checkpoint is the same whichever engine wrote it. One session per batch size: a short last batch gets
 * its own graph rather than zero-weight padding, because padding would change batch-norm statistics.
 */
import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { GraftError } from '../errors';
import { createRng } from '../util/rng';
import { inversePermutation, permute } from '../util/permute';
import { createOnnxSession, loadOnnxRuntime } from './onnx-runtime';
import { CompiledTrainStep, StepOptimizer, compileTrainStep } from '../onnx/train-step/compile';
import type { OptimizerConfig, ParamGroup } from '../train/optim';
import type { LossOptions } from '../train/losses';

/** One batch for `CompiledStep.step`. */
export interface StepBatch {
  /** Preprocessed NHWC inputs (or the frozen prefix's boundary outputs), row-major. */
  x: tf.Tensor | Float32Array;
  /** Shape of `x`, batch first. */
  shape: number[];
  /** Integer class labels (0/1 for a one-unit sigmoid head). */
  labels: Int32Array;
}

/** A training step compiled to onnxruntime, holding the trained state between steps. */
export interface CompiledStep {
  /** Engine label, e.g. `onnxruntime cpu x2`. */
  readonly engine: string;
  /**
   * One optimisation step on a batch; `lr` per group name. Returns the batch's mean loss and correct predictions.
   * Dropout masks come from `info.dropoutSeed`; Adam's step counts are each group's own (from its optimiser state,
   * as GroupOptimizer counts them), so `info.step` is informational.
   */
  step(batch: StepBatch, lr: Record<string, number>, info: { step: number; dropoutSeed: number }): Promise<{ loss: number; correct: number }>;
  /** Copies weights, BN moving statistics and optimiser slots into the tfjs model and the groups' GroupOptimizers. */
  writeBack(groups: ParamGroup[]): void;
  /** Reads weights, statistics and optimiser state from the tfjs side (after a resume or a restore). */
  readFrom(groups: ParamGroup[]): void;
  /** Releases the sessions. */
  dispose(): Promise<void>;
}

/** Options for `createOnnxTrainStep`. */
export interface OnnxTrainStepOptions {
  /** The parameter groups being trained (as built by buildParamGroups). */
  groups: ParamGroup[];
  /** Optimiser hyper-parameters (every group uses them). */
  optimizer: OptimizerConfig;
  /** Loss: output activation, label smoothing, class weights. */
  loss: LossOptions;
  /** Clip gradients to this global L2 norm. */
  clipNorm?: number;
  /** onnxruntime intra-op threads (default one per core). */
  threads?: number;
  /** The usual batch size (compiled up front; other sizes compile on first use). */
  batchSize: number;
  /** Where onnxruntime notices go (default stderr; null for silence). */
  log?: ((line: string) => void) | null;
  /** Profile the step's operators into `<profile>_<date>.json` (one file per batch size, written on dispose). */
  profile?: string;
}

interface Session {
  compiled: CompiledTrainStep;
  session: Ort.InferenceSession;
}

/** Targets as the loss reads them: one-hot rows with label smoothing, or the 0/1 label for a one-unit head. */
export function stepTargets(labels: Int32Array, units: number, smoothing: number): Float32Array {
  const n = labels.length;
  const out = new Float32Array(n * units);
  const k = units === 1 ? 2 : units;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < units; j++) {
      const hot = units === 1 ? labels[i] : labels[i] === j ? 1 : 0;
      out[i * units + j] = smoothing > 0 ? Math.fround(hot * Math.fround(1 - smoothing)) + Math.fround(smoothing / k) : hot;
    }
  }
  return out;
}

/** Per-sample loss scale: class weight / batch size (the loss is a sum of scaled per-sample losses). */
export function stepSampleScale(labels: Int32Array, classWeights: number[] | undefined): Float32Array {
  const n = labels.length;
  return Float32Array.from(labels, (l) => (classWeights ? (classWeights[l] ?? 1) : 1) / n);
}

/** A dropout mask: 0 with probability `rate`, else 1 / (1 - rate); drawn from a stream named by the seed and layer. */
export function dropoutMask(size: number, rate: number, seed: number, layer: string): Float32Array {
  const rng = createRng(seed).fork(`dropout/${layer}`);
  const keep = Math.fround(1 / (1 - rate));
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.next() < rate ? 0 : keep;
  return out;
}

function optimizerOf(c: OptimizerConfig): StepOptimizer {
  return { type: c.type, momentum: c.momentum, nesterov: c.nesterov, beta1: c.beta1, beta2: c.beta2, rho: c.rho, epsilon: c.epsilon, weightDecay: c.weightDecay };
}

/** Number of rows whose predicted class (argmax, or p >= 0.5 for one unit) is the label. */
function countCorrect(probs: Float32Array, labels: Int32Array, units: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    if (units === 1) best = probs[i] >= 0.5 ? 1 : 0;
    else for (let j = 1; j < units; j++) if (probs[i * units + j] > probs[i * units + best]) best = j;
    if (best === labels[i]) correct += 1;
  }
  return correct;
}

/**
 * Compiles `model`'s training step for `options.groups` and opens it on onnxruntime. Throws a GraftError naming
 * the first layer the compiler does not cover (so `--train-engine auto` can fall back and say why).
 */
export async function createOnnxTrainStep(model: tf.LayersModel, options: OnnxTrainStepOptions): Promise<CompiledStep> {
  const ort = loadOnnxRuntime();
  const weightsByKey = new Map(model.weights.map((w) => [w.originalName, w]));
  const groupSpec = options.groups.map((g) => ({ name: g.name, weights: g.variables.map((v) => v.originalName) }));
  const groupOfWeight = new Map(groupSpec.flatMap((g) => g.weights.map((w) => [w, g.name] as const)));
  const units = Number(model.outputs[0].shape[1] ?? 1);
  const sessions = new Map<number, Session>();
  let engine = '';

  async function open(batchSize: number): Promise<Session> {
    let s = sessions.get(batchSize);
    if (!s) {
      const compiled = await compileTrainStep(model, {
        batchSize,
        outputActivation: options.loss.outputActivation,
        groups: groupSpec,
        optimizer: optimizerOf(options.optimizer),
        clipNorm: options.clipNorm,
      });
      // No spinning: a step is a few long operators, and spinning threads ran a step 2-4x slower on a loaded machine.
      // No memory pattern: see OnnxSessionOptions.memoryPattern (a step's memory is GBs; later steps do not change).
      const opened = await createOnnxSession(compiled.bytes, { threads: options.threads, log: options.log, spinning: false, memoryPattern: false, profile: options.profile });
      engine = opened.engine;
      s = { compiled, session: opened.session };
      sessions.set(batchSize, s);
    }
    return s;
  }

  const first = await open(options.batchSize);
  // The state every session shares: value per state key, in the tensors the last step produced.
  const state = new Map<string, Float32Array>();
  const spare = new Map<string, Float32Array>();
  const steps = new Map<string, number>();

  function variableOf(key: string): tf.LayerVariable {
    const w = weightsByKey.get(key);
    if (!w) throw new GraftError(`internal: the compiled step reads ${key}, which is not a weight of ${model.name}.`);
    return w;
  }

  const self: CompiledStep = {
    get engine() {
      return engine;
    },

    readFrom(groups) {
      for (const st of first.compiled.state) {
        if (st.kind === 'slot') continue;
        state.set(st.key, toGraph(variableOf(st.key).read(), st.perm));
      }
      const slotKeys = first.compiled.state.filter((st) => st.kind === 'slot');
      for (const g of groups) {
        if (!groupSpec.some((s) => s.name === g.name)) throw new GraftError(`group ${g.name} is not one the training step was compiled for (${groupSpec.map((s) => s.name).join(', ')}); compile it again.`);
        const saved = g.optimizer.getState();
        try {
          steps.set(g.name, saved.step);
          for (const st of slotKeys) {
            if (groupOfWeight.get(st.key.split('::')[0]) !== g.name) continue;
            const t = saved.slots[st.key];
            state.set(st.key, t ? toGraph(t, st.perm) : new Float32Array(sizeOfDims(st.dims)));
          }
        } finally {
          tf.dispose(Object.values(saved.slots));
        }
      }
    },

    writeBack(groups) {
      for (const st of first.compiled.state) {
        if (!st.next || st.kind === 'slot') continue;
        const v = variableOf(st.key);
        const t = fromGraph(state.get(st.key)!, st);
        v.write(t);
        t.dispose();
      }
      for (const g of groups) {
        const step = steps.get(g.name) ?? 0;
        const slots: Record<string, tf.Tensor> = {};
        if (step > 0) {
          for (const st of first.compiled.state) {
            if (st.kind === 'slot' && groupOfWeight.get(st.key.split('::')[0]) === g.name) slots[st.key] = fromGraph(state.get(st.key)!, st);
          }
        }
        try {
          g.optimizer.setState({ step, slots });
        } finally {
          tf.dispose(Object.values(slots));
        }
      }
    },

    async step(batch, lr, info) {
      const n = batch.shape[0];
      if (batch.labels.length !== n) throw new GraftError(`the batch has ${n} inputs but ${batch.labels.length} labels.`);
      const s = await open(n);
      const c = s.compiled;
      const x = batch.x instanceof Float32Array ? batch.x : ((await batch.x.data()) as Float32Array);
      const feeds: Record<string, Ort.Tensor> = {
        [c.x.name]: new ort.Tensor('float32', x, c.x.dims),
        [c.targets.name]: new ort.Tensor('float32', stepTargets(batch.labels, units, options.loss.labelSmoothing ?? 0), c.targets.dims),
        [c.sampleScale]: new ort.Tensor('float32', stepSampleScale(batch.labels, options.loss.classWeights), [n]),
      };
      for (const m of c.masks) feeds[m.name] = new ort.Tensor('float32', dropoutMask(sizeOfDims(m.dims), m.rate, info.dropoutSeed, m.layer), m.dims);
      const o = options.optimizer;
      const nextSteps = new Map<string, number>();
      for (const gi of c.groupInputs) {
        const rate = lr[gi.group];
        if (rate === undefined) throw new GraftError(`no learning rate for group ${gi.group}; pass one per group (${c.groupInputs.map((g) => g.group).join(', ')}).`);
        const t = (steps.get(gi.group) ?? 0) + 1;
        nextSteps.set(gi.group, t);
        const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
        feeds[gi.lr] = scalar(rate);
        if (gi.bc1) feeds[gi.bc1] = scalar(1 - (o.beta1 ?? 0.9) ** t);
        if (gi.bc2) feeds[gi.bc2] = scalar(1 - (o.beta2 ?? 0.999) ** t);
        if (gi.decay) feeds[gi.decay] = scalar(1 - rate * (o.weightDecay ?? 0));
      }
      // Updated state goes straight into the spare buffer of each tensor (onnxruntime writes pre-allocated outputs in
      // place); the buffers swap only once the loss is known to be finite, so a failed step changes nothing.
      const fetches: Record<string, Ort.Tensor | null> = { [c.loss]: null, [c.probs]: null };
      for (const st of c.state) {
        const current = state.get(st.key)!;
        feeds[st.name] = new ort.Tensor('float32', current, st.dims);
        if (!st.next) continue;
        let buffer = spare.get(st.key);
        if (!buffer || buffer.length !== current.length) spare.set(st.key, (buffer = new Float32Array(current.length)));
        fetches[st.next] = new ort.Tensor('float32', buffer, st.dims);
      }
      const result = await s.session.run(feeds, fetches);
      const loss = (result[c.loss].data as Float32Array)[0];
      if (!Number.isFinite(loss)) {
        throw new GraftError(`the training loss became ${loss}; lower the learning rate (try graft lr-find) or set --clip-norm 1.`);
      }
      for (const st of c.state) {
        if (!st.next) continue;
        const old = state.get(st.key)!;
        state.set(st.key, spare.get(st.key)!);
        spare.set(st.key, old);
      }
      for (const [g, t] of nextSteps) steps.set(g, t);
      return { loss, correct: countCorrect(result[c.probs].data as Float32Array, batch.labels, units) };
    },

    async dispose() {
      for (const s of sessions.values()) {
        if (options.profile) s.session.endProfiling();
        await s.session.release();
      }
      sessions.clear();
    },
  };
  self.readFrom(options.groups);
  return self;
}

/**
 * A tfjs value as the graph holds it: a copy, permuted by `perm` when there is one. Not through `tf.tidy`: tidy
 * walks whatever its function returns, element by element for a typed array, which took 11 s over ResNet50's conv5
 * kernels at the start of every last-stage run. The permutation is a plain JS pass, not tfjs's transpose plus a
 * second copy out of it.
 */
function toGraph(t: tf.Tensor, perm: number[] | undefined): Float32Array {
  const values = t.dataSync() as Float32Array;
  return perm ? permute(values, t.shape, perm) : new Float32Array(values);
}

/** A graph value back in tfjs's layout, as a new tensor (the caller disposes it). */
function fromGraph(values: Float32Array, st: { dims: number[]; perm?: number[] }): tf.Tensor {
  // A copy either way: the cpu backend would keep the array itself, which the next step overwrites.
  if (!st.perm) return tf.tensor(values.slice(), st.dims);
  const inverse = inversePermutation(st.perm);
  return tf.tensor(permute(values, st.dims, inverse), inverse.map((i) => st.dims[i]));
}

function sizeOfDims(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Options for `onnxGradients`. */
export interface OnnxGradientsOptions {
  /** Weight groups whose gradients are wanted. */
  groups: Array<{ name: string; weights: string[] }>;
  /** Loss options. */
  loss: LossOptions;
  /** Dropout seed (masks drawn as the training step draws them). */
  dropoutSeed?: number;
  /** Explicit dropout masks by layer name (override the seed). */
  masks?: Record<string, Float32Array>;
  /** onnxruntime intra-op threads. */
  threads?: number;
}

/**
 * The gradients-only variant: compiles and runs one forward + backward of `model` on a batch and returns the loss,
 * the model's outputs, the gradient of every weight of `groups` and the BN moving statistics training mode would
 * write (for tests against tfjs autodiff). Reads the weights from the model now.
 */
export async function onnxGradients(
  model: tf.LayersModel,
  x: Float32Array,
  shape: number[],
  labels: Int32Array,
  options: OnnxGradientsOptions,
): Promise<{ loss: number; probs: Float32Array; grads: Record<string, Float32Array>; stats: Record<string, Float32Array> }> {
  const ort = loadOnnxRuntime();
  const n = shape[0];
  const c = await compileTrainStep(model, { batchSize: n, outputActivation: options.loss.outputActivation, groups: options.groups });
  const { session } = await createOnnxSession(c.bytes, { threads: options.threads, log: null });
  try {
    const units = c.targets.dims[1];
    const feeds: Record<string, Ort.Tensor> = {
      [c.x.name]: new ort.Tensor('float32', x, c.x.dims),
      [c.targets.name]: new ort.Tensor('float32', stepTargets(labels, units, options.loss.labelSmoothing ?? 0), c.targets.dims),
      [c.sampleScale]: new ort.Tensor('float32', stepSampleScale(labels, options.loss.classWeights), [n]),
    };
    for (const m of c.masks) {
      const given = options.masks?.[m.layer];
      feeds[m.name] = new ort.Tensor('float32', given ?? dropoutMask(sizeOfDims(m.dims), m.rate, options.dropoutSeed ?? 0, m.layer), m.dims);
    }
    const byKey = new Map(model.weights.map((w) => [w.originalName, w]));
    for (const st of c.state) feeds[st.name] = new ort.Tensor('float32', toGraph(byKey.get(st.key)!.read(), st.perm), st.dims);
    const result = await session.run(feeds);
    const grads: Record<string, Float32Array> = {};
    for (const [k, name] of Object.entries(c.grads)) {
      const st = c.state.find((s) => s.key === k)!;
      const t = fromGraph(result[name].data as Float32Array, st);
      grads[k] = t.dataSync() as Float32Array;
      t.dispose();
    }
    const stats: Record<string, Float32Array> = {};
    for (const st of c.state) if (st.kind === 'stat' && st.next) stats[st.key] = result[st.next].data as Float32Array;
    return { loss: (result[c.loss].data as Float32Array)[0], probs: result[c.probs].data as Float32Array, grads, stats };
  } finally {
    await session.release();
  }
}
