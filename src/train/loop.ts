/**
 * The training loop: a custom loop on `tf.variableGrads` with per-group learning rates and optimisers, a schedule
 * over progress, gradient clipping, validation each epoch, early stopping with best-weight restore, reduce-on-plateau,
 * and a checkpointable state that resumes bit for bit (the data order and dropout masks are pure functions of the
 * seed, epoch and batch, so a resumed run sees exactly what the uninterrupted one would have).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, finiteNumber, oneOf, positiveInt } from '../errors';
import { BatchSource } from '../data/batches';
import { LayerGroup } from '../io/graft-json';
import { classificationMetrics } from '../metrics/classification';
import { confusionMatrix } from '../metrics/confusion';
import { createRng } from '../util/rng';
import { MONITORS, Monitor } from './config';
import { LossOptions, classificationLoss, predictedClasses } from './losses';
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
import { GradientSource, StepEngine, StepEngineFactory, localGradients, tfjsStepEngine } from './step';

export type { Batch, BatchSource } from '../data/batches';
export type { GradientSource } from './step';
export { localGradients } from './step';

export { MONITORS } from './config';
export type { Monitor } from './config';

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
  /** Mean loss of this batch alone. */
  batchLoss: number;
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
  /** Where the tfjs engine's gradients come from (default this thread; `pooledGradients` splits batches over worker threads). */
  gradients?: (model: tf.LayersModel, loss: LossOptions) => Promise<GradientSource>;
  /** What runs the steps (default the tfjs engine with `gradients`); rebuilt whenever the trainable set changes. */
  stepEngine?: StepEngineFactory;
  /** Largest batch `train` gives (default 32), for engines that plan memory per batch shape. */
  batchSize?: number;
  /** Called with the step engine's name whenever one is built (e.g. for graft.json and logs). */
  onStepEngine?(name: string): void;
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


/** The checked settings of one fit. */
interface FitSettings {
  epochs: number;
  monitor: Monitor;
  optimizer: OptimizerConfig;
  schedule: Schedule;
  clipNorm?: number;
  restoreBest: boolean;
  offset: number;
  seed: number | string;
}

function fitSettings(options: FitOptions): FitSettings {
  const monitor = oneOf('monitor', options.monitor ?? (options.validation ? 'val_loss' : 'loss'), MONITORS);
  if (monitor.startsWith('val_') && !options.validation) throw new GraftError(`monitor ${monitor} needs validation data; pass --val or --val-split, or monitor loss.`);
  return {
    epochs: positiveInt('epochs', options.epochs),
    monitor,
    optimizer: optimizerConfig(typeof options.optimizer === 'string' ? { type: options.optimizer } : (options.optimizer ?? { type: 'adam' })),
    schedule: typeof options.schedule === 'function' ? options.schedule : makeSchedule(options.schedule ?? 'constant'),
    clipNorm: options.clipNorm === undefined ? undefined : finiteNumber('clip-norm', options.clipNorm, { min: 0 }),
    restoreBest: options.restoreBest ?? Boolean(options.earlyStopping),
    offset: options.epochOffset ?? 0,
    seed: options.seed ?? 0,
  };
}

function freshState(): LoopState {
  return {
    epoch: 0,
    batch: 0,
    partial: { lossSum: 0, correct: 0, seen: 0, seconds: 0 },
    history: [],
    lrScale: 1,
    watch: { best: null, bestEpoch: null, wait: 0, plateauBest: null, plateauWait: 0 },
    optimizers: {},
  };
}

/**
 * The step piece: parameter groups with their optimisers and the step engine built on them, both rebuilt (BN modes
 * synced, engine state written back first) whenever the model's trainable set changes.
 */
class Trainer {
  groups: ParamGroup[] = [];
  private engine: StepEngine | undefined;
  private signature = '';

  constructor(
    private readonly options: FitOptions,
    private readonly settings: FitSettings,
  ) {}

  /** Rebuilds groups and engine if the trainable set changed; `restore` seeds new groups' optimiser state. */
  async ensure(restore: Record<string, OptimizerState> = {}): Promise<StepEngine> {
    const { model } = this.options;
    const now = trainableSignature(model);
    if (this.engine && now === this.signature) return this.engine;
    await this.release();
    // BN modes follow the trainable flags (frozen: inference mode; trainable without gamma: graft's training call).
    syncFrozenBatchNorm(model);
    const o = this.options;
    this.groups = buildParamGroups(model, o.groups, { lr: o.lr, lrMult: o.lrMult, groupLr: o.groupLr, optimizer: this.settings.optimizer });
    for (const g of this.groups) if (restore[g.name]) g.optimizer.setState(restore[g.name]);
    const context = { model, groups: this.groups, optimizer: this.settings.optimizer, loss: o.loss, clipNorm: this.settings.clipNorm, batchSize: o.batchSize ?? 32 };
    const factory: StepEngineFactory =
      o.stepEngine ?? (async (c) => tfjsStepEngine(c, o.gradients ? await o.gradients(c.model, c.loss) : localGradients(c.model, c.loss)));
    this.engine = await factory(context);
    this.signature = now;
    o.onStepEngine?.(this.engine.name);
    return this.engine;
  }

  /** Brings the tfjs model and the group optimisers up to date with the engine. */
  async sync(): Promise<void> {
    await this.engine?.sync();
  }

  /** Optimiser state by group (copies the caller owns). */
  optimizerStates(): Record<string, OptimizerState> {
    return Object.fromEntries(this.groups.map((g) => [g.name, g.optimizer.getState()]));
  }

  private async release(): Promise<void> {
    if (this.engine) {
      await this.engine.sync();
      await this.engine.dispose();
    }
    this.engine = undefined;
    disposeParamGroups(this.groups);
    this.groups = [];
  }

  /** Writes the engine's state back and frees everything. */
  async dispose(): Promise<void> {
    await this.release();
  }
}

/** A deep copy of a state (the copy owns new tensors); `optimizers` replaces the state's own when given. */
function cloneState(s: LoopState, optimizers?: Record<string, OptimizerState>): LoopState {
  return {
    ...s,
    partial: { ...s.partial, maxLr: s.partial.maxLr && { ...s.partial.maxLr } },
    history: s.history.slice(),
    watch: { ...s.watch },
    optimizers:
      optimizers ??
      Object.fromEntries(
        Object.entries(s.optimizers).map(([k, o]) => [k, { step: o.step, slots: Object.fromEntries(Object.entries(o.slots).map(([n, t]) => [n, t.clone()])) }]),
      ),
    bestWeights: s.bestWeights && Object.fromEntries(Object.entries(s.bestWeights).map(([k, t]) => [k, t.clone()])),
  };
}

/** The epoch piece: trains one epoch (or the rest of one, on resume); false when a stop request ended it. */
async function trainEpoch(options: FitOptions, settings: FitSettings, state: LoopState, trainer: Trainer): Promise<boolean> {
  const { train } = options;
  const cb = options.callbacks ?? {};
  const steps = train.steps;
  const totalSteps = settings.epochs * steps;
  const epochNumber = settings.offset + state.epoch + 1;
  const started = Date.now() - state.partial.seconds * 1000;
  cb.onEpochBegin?.(epochNumber, steps);
  let index = 0;
  let batchLoss = NaN;
  for await (const batch of train.batches(state.epoch)) {
    try {
      if (index < state.batch) {
        // Resuming mid-epoch: these batches were already trained on before the interruption.
        index += 1;
        continue;
      }
      // Prefetched batches and in-process steps resolve as microtasks, which never let the event loop run its
      // I/O phase: without this turn a Ctrl-C or SIGTERM handler would wait for the next real I/O (several batches).
      await new Promise((resolve) => setImmediate(resolve));
      if (options.signal?.aborted) {
        state.partial.seconds = (Date.now() - started) / 1000;
        return false;
      }
      const engine = await trainer.ensure();
      const lr = rates(trainer.groups, settings, state, (state.epoch * steps + state.batch) / totalSteps);
      const maxLr = (state.partial.maxLr ??= {});
      for (const [g, r] of Object.entries(lr)) maxLr[g] = Math.max(maxLr[g] ?? 0, r);
      const dropoutSeed = createRng(settings.seed).fork(`dropout/${state.epoch}/${state.batch}`).int(2 ** 30);
      const { loss, correct } = await engine.step(batch, lr, { dropoutSeed });
      state.partial.lossSum += loss * batch.labels.length;
      batchLoss = loss;
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
      batchLoss,
      accuracy: state.partial.correct / state.partial.seen,
      imagesPerSecond: state.partial.seen / Math.max(seconds, 1e-9),
    });
  }
  state.partial.seconds = (Date.now() - started) / 1000;
  return true;
}

/** Each group's rate at `progress` (0..1) of the fit: base rate x schedule x plateau multiplier. */
function rates(groups: ParamGroup[], settings: FitSettings, state: LoopState, progress: number): Record<string, number> {
  return Object.fromEntries(groups.map((g) => [g.name, g.lr * settings.schedule(Math.min(1, progress)) * state.lrScale]));
}

/** The epoch's log entry, with validation (the model must be synced); resets the epoch's running sums. */
async function closeEpoch(options: FitOptions, settings: FitSettings, state: LoopState, trainer: Trainer): Promise<EpochLog> {
  const p = state.partial;
  const log: EpochLog = {
    epoch: settings.offset + state.epoch + 1,
    ...(options.stage ? { stage: options.stage } : {}),
    loss: p.lossSum / Math.max(p.seen, 1),
    accuracy: p.correct / Math.max(p.seen, 1),
    lr: p.maxLr ?? rates(trainer.groups, settings, state, state.epoch / settings.epochs),
    seconds: 0,
    imagesPerSecond: p.seen / Math.max(p.seconds, 1e-9),
  };
  const validationStarted = Date.now();
  if (options.validation) {
    const v = await evaluateSource(options.model, options.validation, options.loss, options.classNames);
    Object.assign(log, { val_loss: v.loss, val_accuracy: v.accuracy, val_f1: v.f1 });
  }
  log.seconds = p.seconds + (Date.now() - validationStarted) / 1000;
  state.history.push(log);
  state.epoch += 1;
  state.batch = 0;
  state.partial = { lossSum: 0, correct: 0, seen: 0, seconds: 0 };
  return log;
}

/**
 * The monitor piece (Keras's EarlyStopping and ReduceLROnPlateau): updates the watch state with the epoch's
 * monitored value; says whether it improved and whether to stop early.
 */
function watchEpoch(options: FitOptions, settings: FitSettings, state: LoopState, log: EpochLog): { improved: boolean; stop: boolean } {
  const value = log[settings.monitor] as number;
  const w = state.watch;
  const improved = improves(settings.monitor, value, w.best, options.earlyStopping?.minDelta ?? 0);
  if (improved) Object.assign(w, { best: value, bestEpoch: log.epoch, wait: 0 });
  else w.wait += 1;
  const plateau = options.reduceOnPlateau;
  if (plateau) {
    if (improves(settings.monitor, value, w.plateauBest, 0)) Object.assign(w, { plateauBest: value, plateauWait: 0 });
    else if (++w.plateauWait >= plateau.patience) {
      state.lrScale = Math.max(state.lrScale * (plateau.factor ?? 0.1), plateau.minScale ?? 1e-3);
      w.plateauWait = 0;
    }
  }
  const stop = Boolean(options.earlyStopping && w.wait >= options.earlyStopping.patience && state.epoch < settings.epochs);
  return { improved, stop };
}

/** Trains `model` for `epochs`; see `FitOptions`. */
export async function fit(options: FitOptions): Promise<FitResult> {
  const settings = fitSettings(options);
  const { model } = options;
  const cb = options.callbacks ?? {};
  const state: LoopState = options.resume ? cloneState(options.resume) : freshState();
  const trainer = new Trainer(options, settings);
  // The resumed optimiser state moves into the groups; the state keeps none of its own between checkpoints.
  await trainer.ensure(state.optimizers);
  tf.dispose(Object.values(state.optimizers).flatMap((o) => Object.values(o.slots)));
  state.optimizers = {};

  const checkpoint = async (reason: 'epoch' | 'abort') => {
    if (!options.onCheckpoint) return;
    await trainer.sync();
    const snapshot = cloneState(state, trainer.optimizerStates());
    try {
      await options.onCheckpoint(snapshot, reason);
    } finally {
      disposeLoopState(snapshot);
    }
  };

  let stopReason: FitResult['stopReason'] = 'completed';
  try {
    while (state.epoch < settings.epochs) {
      if (!(await trainEpoch(options, settings, state, trainer))) {
        stopReason = 'aborted';
        break;
      }
      await trainer.sync();
      const log = await closeEpoch(options, settings, state, trainer);
      const { improved, stop } = watchEpoch(options, settings, state, log);
      if (improved) {
        if (settings.restoreBest) {
          if (state.bestWeights) tf.dispose(Object.values(state.bestWeights));
          state.bestWeights = snapshotWeights(model);
        }
        await cb.onImproved?.(log);
      }
      if (stop) stopReason = 'early-stopping';
      await cb.onEpochEnd?.(log);
      await checkpoint('epoch');
      if (stop) break;
    }
    if (stopReason === 'aborted') await checkpoint('abort');
    await trainer.dispose();
    if (stopReason !== 'aborted' && settings.restoreBest && state.bestWeights) restoreWeights(model, state.bestWeights);
  } finally {
    await trainer.dispose();
    if (state.bestWeights) tf.dispose(Object.values(state.bestWeights));
  }
  const w = state.watch;
  return {
    history: state.history,
    stopReason,
    best: w.best === null ? null : { monitor: settings.monitor, value: w.best, epoch: w.bestEpoch! },
  };
}
