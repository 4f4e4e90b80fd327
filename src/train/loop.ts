/**
 * The training loop: a custom loop on `tf.variableGrads` with per-group learning rates and optimisers, a schedule
 * over progress, gradient clipping, validation each epoch, early stopping with best-weight restore, reduce-on-plateau,
 * and a checkpointable state that resumes bit for bit (the data order and dropout masks are pure functions of the
 * seed, epoch and batch, so a resumed run sees exactly what the uninterrupted one would have).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, finiteNumber, oneOf, positiveInt } from '../errors';
import { LayerGroup } from '../io/graft-json';
import { classificationMetrics } from '../metrics/classification';
import { confusionMatrix } from '../metrics/confusion';
import { createRng } from '../util/rng';
import { LossOptions, classificationLoss, countCorrect, predictedClasses } from './losses';
import {
  OptimizerConfig,
  OptimizerName,
  OptimizerState,
  ParamGroup,
  buildParamGroups,
  disposeParamGroups,
  optimizerConfig,
  trainableSignature,
  variableOf,
} from './optim';
import { syncFrozenBatchNorm } from './freeze';
import { Schedule, ScheduleConfig, makeSchedule } from './schedule';

/** One batch: preprocessed inputs (the loop disposes `x`) and class indices. */
export interface Batch {
  /** Inputs in the model's input shape. */
  x: tf.Tensor;
  /** Class index per sample. */
  labels: Int32Array;
}

/** Where batches come from; `batches(epoch)` must give the same batches for the same epoch (seeded shuffle). */
export interface BatchSource {
  /** Samples per epoch. */
  samples: number;
  /** Batches per epoch. */
  steps: number;
  /** The batches of one epoch (0-based). */
  batches(epoch: number): AsyncIterable<Batch>;
}

/** Quantities a callback can monitor. */
export const MONITORS = ['val_loss', 'val_accuracy', 'val_f1', 'loss', 'accuracy'] as const;
/** A monitored quantity. */
export type Monitor = (typeof MONITORS)[number];

/** What one epoch did (one entry of history.json). */
export interface EpochLog {
  /** Epoch number, 1-based and counted across stages. */
  epoch: number;
  /** Stage name (fine-tune recipe), if any. */
  stage?: string;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Training accuracy over the epoch. */
  accuracy: number;
  /** Validation loss. */
  val_loss?: number;
  /** Validation accuracy. */
  val_accuracy?: number;
  /** Validation macro F1 (scikit-learn, zero_division=0). */
  val_f1?: number;
  /** Highest learning rate of each group during the epoch. */
  lr: Record<string, number>;
  /** Wall time of the epoch including validation. */
  seconds: number;
  /** Training images per second. */
  imagesPerSecond: number;
}

/** Progress within an epoch, for bars. */
export interface BatchInfo {
  /** Epoch number (1-based, across stages). */
  epoch: number;
  /** Batches done in this epoch. */
  batch: number;
  /** Batches in the epoch. */
  steps: number;
  /** Running mean loss of the epoch. */
  loss: number;
  /** Running accuracy of the epoch. */
  accuracy: number;
  /** Training images per second so far this epoch. */
  imagesPerSecond: number;
}

/** Hooks the loop calls. */
export interface FitCallbacks {
  /** Before an epoch's first batch. */
  onEpochBegin?(epoch: number, steps: number): void;
  /** After every batch. */
  onBatchEnd?(info: BatchInfo): void;
  /** After validation; may change the model (e.g. unfreeze: the loop then rebuilds groups with fresh state). */
  onEpochEnd?(log: EpochLog): void | Promise<void>;
  /** When the monitored value improves (checkpoint of the best epoch). */
  onImproved?(log: EpochLog): void | Promise<void>;
}

/** Early stopping (Keras `EarlyStopping`). */
export interface EarlyStoppingOptions {
  /** Epochs without improvement before stopping. */
  patience: number;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
}

/** Reduce the learning rate on a plateau (Keras `ReduceLROnPlateau`). */
export interface ReduceOnPlateauOptions {
  /** Epochs without improvement before reducing. */
  patience: number;
  /** Multiplier applied to every group's rate (default 0.1). */
  factor?: number;
  /** Smallest overall multiplier (default 1e-3). */
  minScale?: number;
}

/** Options for `fit`. */
export interface FitOptions {
  /** The model to train (run with `training: true`); only its trainable weights change. */
  model: tf.LayersModel;
  /** Its layer groups (per-group learning rates); layers outside every group train at the head rate. */
  groups: LayerGroup[];
  /** Training batches. */
  train: BatchSource;
  /** Validation batches, if any. */
  validation?: BatchSource;
  /** Epochs to run. */
  epochs: number;
  /** Learning rate of the last group (the head). */
  lr: number;
  /** Discriminative rates: first trainable group gets lr / lrMult, geometric in between. */
  lrMult?: number;
  /** Explicit rate per group name. */
  groupLr?: Record<string, number>;
  /** Optimiser (name or config; default adam). */
  optimizer?: OptimizerConfig | OptimizerName;
  /** Learning-rate schedule over this fit (default constant). */
  schedule?: ScheduleConfig | string | Schedule;
  /** Loss settings. */
  loss: LossOptions;
  /** Clip gradients to this global L2 norm. */
  clipNorm?: number;
  /** Seed for dropout masks (data order is the BatchSource's job). */
  seed?: number | string;
  /** Class names (for validation F1). */
  classNames?: string[];
  /** What early stopping, plateau and best-checkpoint watch (default val_loss with validation, else loss). */
  monitor?: Monitor;
  /** Stop when the monitored value stops improving. */
  earlyStopping?: EarlyStoppingOptions;
  /** Reduce rates when the monitored value plateaus. */
  reduceOnPlateau?: ReduceOnPlateauOptions;
  /** Put the best epoch's weights back at the end (default: true when early stopping is on). */
  restoreBest?: boolean;
  /** Stop request (e.g. Ctrl-C): the loop stops before the next batch and reports a checkpoint. */
  signal?: AbortSignal;
  /** Continue from a saved state. */
  resume?: LoopState;
  /** Receives the state after every epoch and on abort (the state's tensors are disposed after it returns). */
  onCheckpoint?(state: LoopState, reason: 'epoch' | 'abort'): void | Promise<void>;
  /** Progress and control hooks. */
  callbacks?: FitCallbacks;
  /** Where gradients come from (default this thread; `pooledGradients` splits batches over worker threads). */
  gradients?: (model: tf.LayersModel, loss: LossOptions) => Promise<GradientSource>;
  /** Epochs already run by earlier stages (history numbering). */
  epochOffset?: number;
  /** Stage name written into each history entry. */
  stage?: string;
}

/** Everything needed to continue a fit exactly where it stopped. */
export interface LoopState {
  /** Epochs completed in this fit. */
  epoch: number;
  /** Batches completed in the current (unfinished) epoch. */
  batch: number;
  /** Sums of the unfinished epoch (and the highest rate per group so far). */
  partial: { lossSum: number; correct: number; seen: number; seconds: number; maxLr?: Record<string, number> };
  /** Completed epochs. */
  history: EpochLog[];
  /** Plateau multiplier on every rate. */
  lrScale: number;
  /** Monitor bookkeeping. */
  watch: WatchState;
  /** Optimiser state per group name. */
  optimizers: Record<string, OptimizerState>;
  /** Best weights so far by weight name (when restoring best). */
  bestWeights?: Record<string, tf.Tensor>;
}

/** Bookkeeping for the monitored value. */
export interface WatchState {
  /** Best value seen. */
  best: number | null;
  /** Epoch (1-based, across stages) of the best value. */
  bestEpoch: number | null;
  /** Epochs since the best (early stopping). */
  wait: number;
  /** Best value since the last rate reduction. */
  plateauBest: number | null;
  /** Epochs since plateauBest improved. */
  plateauWait: number;
}

/** How a fit ended. */
export interface FitResult {
  /** Every completed epoch (including resumed ones). */
  history: EpochLog[];
  /** Why it stopped. */
  stopReason: 'completed' | 'early-stopping' | 'aborted';
  /** Best monitored value and its epoch. */
  best: { monitor: Monitor; value: number; epoch: number } | null;
}

/** Frees the tensors a state holds. */
export function disposeLoopState(state: LoopState): void {
  for (const o of Object.values(state.optimizers)) tf.dispose(Object.values(o.slots));
  if (state.bestWeights) tf.dispose(Object.values(state.bestWeights));
}

/** Copies of every weight (trainable or not, e.g. BN moving statistics) by name. */
export function snapshotWeights(model: tf.LayersModel): Record<string, tf.Tensor> {
  return Object.fromEntries(model.weights.map((w) => [w.originalName, w.read().clone()]));
}

/** Writes a snapshot back into the model. */
export function restoreWeights(model: tf.LayersModel, weights: Record<string, tf.Tensor>): void {
  for (const w of model.weights) {
    const t = weights[w.originalName];
    if (!t) throw new GraftError(`saved weights have no ${w.originalName}; the checkpoint belongs to a different model.`);
    variableOf(w).assign(t);
  }
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

/** Loss, accuracy and macro F1 of `model` over a source (inference mode). */
export async function evaluateSource(
  model: tf.LayersModel,
  source: BatchSource,
  loss: LossOptions,
  classNames?: string[],
): Promise<{ loss: number; accuracy: number; f1: number }> {
  let lossSum = 0;
  const truth: number[] = [];
  const predicted: number[] = [];
  for await (const batch of source.batches(0)) {
    try {
      const [l, pred] = tf.tidy(() => {
        const probs = model.apply(batch.x, { training: false }) as tf.Tensor;
        return [classificationLoss(probs, batch.labels, { ...loss, labelSmoothing: 0 }).dataSync()[0], predictedClasses(probs)] as const;
      });
      lossSum += l * batch.labels.length;
      truth.push(...batch.labels);
      predicted.push(...pred);
    } finally {
      batch.x.dispose();
    }
  }
  const n = truth.length;
  if (!n) return { loss: NaN, accuracy: NaN, f1: NaN };
  const units = (model.outputs[0].shape[1] as number) ?? 1;
  const names = classNames ?? Array.from({ length: Math.max(units, 2) }, (_, i) => String(i));
  const metrics = classificationMetrics(confusionMatrix(truth, predicted, names), { zeroDivision: 0 });
  return { loss: lossSum / n, accuracy: metrics.accuracy, f1: metrics.averages.macro.f1 };
}

/** Whether `value` improves on `best` for this monitor. */
function improves(monitor: Monitor, value: number, best: number | null, minDelta: number): boolean {
  if (!Number.isFinite(value)) return false;
  if (best === null) return true;
  return monitor.endsWith('loss') ? value < best - minDelta : value > best + minDelta;
}

/** Trains `model` for `epochs`; see `FitOptions`. */
export async function fit(options: FitOptions): Promise<FitResult> {
  const { model, train, validation, loss } = options;
  const epochs = positiveInt('epochs', options.epochs);
  const monitor = oneOf('monitor', options.monitor ?? (validation ? 'val_loss' : 'loss'), MONITORS);
  if (monitor.startsWith('val_') && !validation) throw new GraftError(`monitor ${monitor} needs validation data; pass --val or --val-split, or monitor loss.`);
  const optimizer = optimizerConfig(typeof options.optimizer === 'string' ? { type: options.optimizer } : (options.optimizer ?? { type: 'adam' }));
  const schedule: Schedule = typeof options.schedule === 'function' ? options.schedule : makeSchedule(options.schedule ?? 'constant');
  const clipNorm = options.clipNorm === undefined ? undefined : finiteNumber('clip-norm', options.clipNorm, { min: 0 });
  const restoreBest = options.restoreBest ?? Boolean(options.earlyStopping);
  const offset = options.epochOffset ?? 0;
  const steps = train.steps;
  const totalSteps = epochs * steps;
  const seed = options.seed ?? 0;
  const cb = options.callbacks ?? {};

  const state: LoopState = options.resume
    ? cloneState(options.resume)
    : {
        epoch: 0,
        batch: 0,
        partial: { lossSum: 0, correct: 0, seen: 0, seconds: 0 },
        history: [],
        lrScale: 1,
        watch: { best: null, bestEpoch: null, wait: 0, plateauBest: null, plateauWait: 0 },
        optimizers: {},
      };
  let groups: ParamGroup[] = [];
  let signature = '';
  const ensureGroups = () => {
    const now = trainableSignature(model);
    if (now === signature) return;
    // BN modes follow the trainable flags (frozen: inference mode; trainable without gamma: graft's training call).
    syncFrozenBatchNorm(model);
    disposeParamGroups(groups);
    groups = buildParamGroups(model, options.groups, { lr: options.lr, lrMult: options.lrMult, groupLr: options.groupLr, optimizer });
    signature = now;
  };
  ensureGroups();
  // Gradients come from this thread, or from worker threads (rebuilt whenever the trainable set changes).
  let source: GradientSource | undefined;
  let sourceSignature = '';
  const ensureSource = async (): Promise<GradientSource> => {
    if (source && sourceSignature === signature) return source;
    await source?.dispose?.();
    source = options.gradients ? await options.gradients(model, loss) : localGradients(model, loss);
    sourceSignature = signature;
    return source;
  };
  for (const g of groups) {
    const saved = state.optimizers[g.name];
    if (saved) g.optimizer.setState(saved);
  }
  tf.dispose(Object.values(state.optimizers).flatMap((o) => Object.values(o.slots)));
  state.optimizers = {};

  const rates = (progress: number) => Object.fromEntries(groups.map((g) => [g.name, g.lr * schedule(Math.min(1, progress)) * state.lrScale]));
  const exportState = (): LoopState => ({
    ...state,
    partial: { ...state.partial, maxLr: state.partial.maxLr && { ...state.partial.maxLr } },
    history: state.history.slice(),
    watch: { ...state.watch },
    optimizers: Object.fromEntries(groups.map((g) => [g.name, g.optimizer.getState()])),
    bestWeights: state.bestWeights && Object.fromEntries(Object.entries(state.bestWeights).map(([k, t]) => [k, t.clone()])),
  });
  const checkpoint = async (reason: 'epoch' | 'abort') => {
    if (!options.onCheckpoint) return;
    const snapshot = exportState();
    try {
      await options.onCheckpoint(snapshot, reason);
    } finally {
      disposeLoopState(snapshot);
    }
  };

  let stopReason: FitResult['stopReason'] = 'completed';
  try {
    epochs: while (state.epoch < epochs) {
      const epochNumber = offset + state.epoch + 1;
      const started = Date.now() - state.partial.seconds * 1000;
      cb.onEpochBegin?.(epochNumber, steps);
      let index = 0;
      for await (const batch of train.batches(state.epoch)) {
        if (index < state.batch) {
          // Resuming mid-epoch: these batches were already trained on before the interruption.
          batch.x.dispose();
          index += 1;
          continue;
        }
        // Prefetched batches and in-process steps resolve as microtasks, which never let the event loop run its
        // I/O phase: without this turn a Ctrl-C or SIGTERM handler would wait for the next real I/O (several batches).
        await new Promise((resolve) => setImmediate(resolve));
        if (options.signal?.aborted) {
          batch.x.dispose();
          state.partial.seconds = (Date.now() - started) / 1000;
          stopReason = 'aborted';
          break epochs;
        }
        try {
          ensureGroups();
          const step = state.epoch * steps + state.batch;
          const lr = rates(step / totalSteps);
          const maxLr = (state.partial.maxLr ??= {});
          for (const [g, r] of Object.entries(lr)) maxLr[g] = Math.max(maxLr[g] ?? 0, r);
          const dropoutSeed = createRng(seed).fork(`dropout/${state.epoch}/${state.batch}`).int(2 ** 30);
          const gradients = await ensureSource();
          const { lossValue, correct } = await withDropoutSeed(model, dropoutSeed, () => trainStep(gradients, groups, batch, lr, clipNorm));
          state.partial.lossSum += lossValue * batch.labels.length;
          state.partial.correct += correct;
          state.partial.seen += batch.labels.length;
        } finally {
          batch.x.dispose();
        }
        state.batch += 1;
        index += 1;
        const seconds = (Date.now() - started) / 1000;
        cb.onBatchEnd?.({
          epoch: epochNumber,
          batch: state.batch,
          steps,
          loss: state.partial.lossSum / state.partial.seen,
          accuracy: state.partial.correct / state.partial.seen,
          imagesPerSecond: state.partial.seen / Math.max(seconds, 1e-9),
        });
      }
      const trainSeconds = (Date.now() - started) / 1000;
      const log: EpochLog = {
        epoch: epochNumber,
        ...(options.stage ? { stage: options.stage } : {}),
        loss: state.partial.lossSum / Math.max(state.partial.seen, 1),
        accuracy: state.partial.correct / Math.max(state.partial.seen, 1),
        lr: state.partial.maxLr ?? rates(state.epoch / epochs),
        seconds: 0,
        imagesPerSecond: state.partial.seen / Math.max(trainSeconds, 1e-9),
      };
      if (validation) {
        const v = await evaluateSource(model, validation, loss, options.classNames);
        Object.assign(log, { val_loss: v.loss, val_accuracy: v.accuracy, val_f1: v.f1 });
      }
      log.seconds = (Date.now() - started) / 1000;
      state.history.push(log);
      state.epoch += 1;
      state.batch = 0;
      state.partial = { lossSum: 0, correct: 0, seen: 0, seconds: 0 };

      const value = log[monitor] as number;
      const w = state.watch;
      const minDelta = options.earlyStopping?.minDelta ?? 0;
      if (improves(monitor, value, w.best, minDelta)) {
        Object.assign(w, { best: value, bestEpoch: epochNumber, wait: 0 });
        if (restoreBest) {
          if (state.bestWeights) tf.dispose(Object.values(state.bestWeights));
          state.bestWeights = snapshotWeights(model);
        }
        await cb.onImproved?.(log);
      } else {
        w.wait += 1;
      }
      const plateau = options.reduceOnPlateau;
      if (plateau) {
        if (improves(monitor, value, w.plateauBest, 0)) Object.assign(w, { plateauBest: value, plateauWait: 0 });
        else if (++w.plateauWait >= plateau.patience) {
          state.lrScale = Math.max(state.lrScale * (plateau.factor ?? 0.1), plateau.minScale ?? 1e-3);
          w.plateauWait = 0;
        }
      }
      const early = options.earlyStopping && w.wait >= options.earlyStopping.patience && state.epoch < epochs;
      if (early) stopReason = 'early-stopping';
      await cb.onEpochEnd?.(log);
      await checkpoint('epoch');
      if (early) break;
    }
    if (stopReason === 'aborted') await checkpoint('abort');
    else if (restoreBest && state.bestWeights) restoreWeights(model, state.bestWeights);
  } finally {
    await source?.dispose?.();
    disposeParamGroups(groups);
    if (state.bestWeights) tf.dispose(Object.values(state.bestWeights));
  }
  const w = state.watch;
  return {
    history: state.history,
    stopReason,
    best: w.best === null ? null : { monitor, value: w.best, epoch: w.bestEpoch! },
  };
}

/** A deep copy of a state (the copy owns new tensors). */
function cloneState(s: LoopState): LoopState {
  return {
    ...s,
    partial: { ...s.partial, maxLr: s.partial.maxLr && { ...s.partial.maxLr } },
    history: s.history.slice(),
    watch: { ...s.watch },
    optimizers: Object.fromEntries(
      Object.entries(s.optimizers).map(([k, o]) => [k, { step: o.step, slots: Object.fromEntries(Object.entries(o.slots).map(([n, t]) => [n, t.clone()])) }]),
    ),
    bestWeights: s.bestWeights && Object.fromEntries(Object.entries(s.bestWeights).map(([k, t]) => [k, t.clone()])),
  };
}

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

/** One optimisation step; returns the batch loss and the number of correct predictions. */
async function trainStep(
  source: GradientSource,
  groups: ParamGroup[],
  batch: Batch,
  lr: Record<string, number>,
  clipNorm: number | undefined,
): Promise<{ lossValue: number; correct: number }> {
  const computed = await source.compute(batch, groups);
  const { loss: lossValue, probs } = computed;
  let grads = computed.grads;
  try {
    if (!Number.isFinite(lossValue)) {
      throw new GraftError(`the training loss became ${lossValue}; lower the learning rate (try graft lr-find) or set --clip-norm 1.`);
    }
    if (clipNorm !== undefined) {
      const names = Object.keys(grads);
      const clipped = clipByGlobalNorm(Object.values(grads), clipNorm);
      tf.dispose(Object.values(grads));
      grads = Object.fromEntries(names.map((n, i) => [n, clipped[i]]));
    }
    for (const g of groups) {
      const params = g.variables
        .map((v) => ({ key: v.originalName, variable: variableOf(v), grad: grads[v.originalName] }))
        .filter((p) => p.grad);
      g.optimizer.apply(params, lr[g.name]);
    }
    await source.afterStep?.(groups);
    return { lossValue, correct: countCorrect(probs, batch.labels) };
  } finally {
    tf.dispose([probs, ...Object.values(grads)]);
  }
}
