/**
 * The step piece of the training loop: a `StepEngine` runs whole optimisation steps (forward, loss, backward,
 * clipping, the optimiser update) on batches. The tfjs engine here computes gradients with `tf.variableGrads` (or on
 * worker threads) and applies graft's group optimisers; engine/ adds one that compiles the step into a single
 * onnxruntime graph. The loop only calls `step` and, before it reads weights or optimiser state, `sync`.
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { Batch } from '../data/batches';
import { LossOptions, classificationLoss, countCorrect } from './losses';
import { OptimizerConfig, ParamGroup, variableOf } from './optim';

export { TRAIN_ENGINE_CHOICES } from './config';
export type { TrainEngineChoice } from './config';

/** What a step engine is built for: the model as staged, its parameter groups, the optimiser and the loss. */
export interface StepEngineContext {
  /** The model the loop trains (its trainable flags say what trains). */
  model: tf.LayersModel;
  /** Parameter groups with their optimisers (state already restored on resume). */
  groups: ParamGroup[];
  /** The optimiser configuration every group uses. */
  optimizer: OptimizerConfig;
  /** The loss. */
  loss: LossOptions;
  /** Clip gradients to this global norm. */
  clipNorm?: number;
  /** Largest batch the loop will pass. */
  batchSize: number;
}

/** Per-step facts the engine needs besides the batch. */
export interface StepInfo {
  /** Seed of this step's dropout masks (a pure function of the run's seed, epoch and batch). */
  dropoutSeed: number;
}

/** Runs optimisation steps. */
export interface StepEngine {
  /** What runs the steps, for logs and graft.json (e.g. `tfjs wasm`, `onnxruntime cpu x2`). */
  readonly name: string;
  /** One step on `batch` at rate `lr[group]`; returns the batch's mean loss and its number of correct predictions. */
  step(batch: Batch, lr: Record<string, number>, info: StepInfo): Promise<{ loss: number; correct: number }>;
  /** Brings the tfjs model (weights, batch-norm statistics) and the groups' optimiser state up to date. */
  sync(): Promise<void>;
  /** Frees what the engine holds (never the model's weights). */
  dispose(): Promise<void>;
}

/** Builds a step engine for a context. */
export type StepEngineFactory = (context: StepEngineContext) => Promise<StepEngine>;

/** Computes a batch's loss, predictions and gradients (keyed by weight `originalName`). */
export interface GradientSource {
  /** Gradients of the batch's mean loss for the trainable weights of `groups`; the caller disposes `grads`. */
  compute(batch: Batch, groups: ParamGroup[]): Promise<{ loss: number; probs: tf.Tensor; grads: Record<string, tf.Tensor> }>;
  /** Called after the optimiser step (e.g. to copy the new weights to worker threads). */
  afterStep?(groups: ParamGroup[]): Promise<void>;
  /** Frees what it holds. */
  dispose?(): Promise<void>;
}

/** Gradients in this thread with `tf.variableGrads`. */
export function localGradients(model: tf.LayersModel, loss: LossOptions): GradientSource {
  return {
    async compute(batch, groups) {
      const weights = groups.flatMap((g) => g.variables);
      let probs: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(
        () => {
          const out = model.apply(batch.x, { training: true }) as tf.Tensor;
          probs = tf.keep(out);
          return classificationLoss(out, batch.labels, loss);
        },
        weights.map(variableOf),
      );
      const byName: Record<string, tf.Tensor> = {};
      for (const w of weights) {
        const g = grads[variableOf(w).name];
        if (g) byName[w.originalName] = g;
      }
      const lossValue = value.dataSync()[0];
      value.dispose();
      return { loss: lossValue, probs: probs!, grads: byName };
    },
  };
}

/** The error every engine raises when the loss stops being a number. */
export function nonFiniteLoss(value: number): GraftError {
  return new GraftError(`the training loss became ${value}; lower the learning rate (try graft lr-find) or set --clip-norm 1.`);
}

const DROPOUT_CLASSES = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'AlphaDropout', 'GaussianDropout', 'GaussianNoise']);

/**
 * Runs `fn` with every dropout layer's seed set from `seed`, then puts the seeds back (they are part of the saved
 * config). tfjs draws an unseeded mask from Math.random, which would make runs unrepeatable.
 */
async function withDropoutSeed<T>(model: tf.LayersModel, seed: number, fn: () => Promise<T>): Promise<T> {
  const layers = model.layers.filter((l) => DROPOUT_CLASSES.has(l.getClassName())) as unknown as Array<{ seed?: number }>;
  const saved = layers.map((l) => l.seed);
  layers.forEach((l, i) => (l.seed = seed + i));
  try {
    return await fn();
  } finally {
    layers.forEach((l, i) => (l.seed = saved[i]));
  }
}

/** Scales gradients so their global L2 norm is at most `clipNorm`. */
function clipByGlobalNorm(grads: tf.Tensor[], clipNorm: number): tf.Tensor[] {
  return tf.tidy(() => {
    const norm = tf.addN(grads.map((g) => g.square().sum())).sqrt();
    const scale = tf.minimum(tf.scalar(1), tf.scalar(clipNorm).div(norm.add(1e-12)));
    return grads.map((g) => tf.keep(g.mul(scale)));
  });
}

/**
 * The tfjs step engine: gradients from `source` (this thread, or worker threads), optional clipping, then each
 * group's optimiser. The model's variables are the state, so `sync` has nothing to do.
 */
export function tfjsStepEngine(context: StepEngineContext, source: GradientSource): StepEngine {
  const { model, groups, clipNorm } = context;
  return {
    name: `tfjs ${tf.getBackend()}`,
    step: (batch, lr, info) =>
      withDropoutSeed(model, info.dropoutSeed, async () => {
        const computed = await source.compute(batch, groups);
        const { loss, probs } = computed;
        let grads = computed.grads;
        try {
          if (!Number.isFinite(loss)) throw nonFiniteLoss(loss);
          if (clipNorm !== undefined) {
            const names = Object.keys(grads);
            const clipped = clipByGlobalNorm(Object.values(grads), clipNorm);
            tf.dispose(Object.values(grads));
            grads = Object.fromEntries(names.map((n, i) => [n, clipped[i]]));
          }
          for (const g of groups) {
            const params = g.variables.map((v) => ({ key: v.originalName, variable: variableOf(v), grad: grads[v.originalName] })).filter((p) => p.grad);
            g.optimizer.apply(params, lr[g.name]);
          }
          await source.afterStep?.(groups);
          return { loss, correct: countCorrect(probs, batch.labels) };
        } finally {
          tf.dispose([probs, ...Object.values(grads)]);
        }
      }),
    sync: async () => undefined,
    dispose: async () => {
      await source.dispose?.();
    },
  };
}
