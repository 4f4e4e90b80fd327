/**
 * `train()`, the fine-tune recipe behind `graft train` (fastai's `fine_tune`): train the new head on a frozen trunk,
 * then unfreeze (all groups, or the top K, optionally one more per stage) with discriminative learning rates. With
 * no pretrained weights it is one stage with everything trainable. While a prefix of the model is frozen and
 * augmentation is off, that prefix's outputs are computed once and the rest trains on them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { currentBackend } from '../backend';
import { AugmentSpec } from '../data/augment';
import { Dataset, openDataset, splitDataset } from '../data/dataset';
import { GraftError, finiteNumber, positiveInt, rejectUnknownKeys } from '../errors';
import { LayerGroup } from '../io/graft-json';
import { saveModelFolder } from '../io/model-folder';
import { saveWithFallback } from '../io/fallback-save';
import { ModelMeta, defaultInputShape } from '../models/build';
import { createClassifier, isModelFolder } from '../models/classifier';
import { HeadOptions } from '../models/head';
import { getArchitecture } from '../models/registry';
import { EngineChoice } from '../models/runner';
import { SimpleCnnOptions } from '../models/simple_cnn';
import { svgToPng } from '../util/svg';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { checkResumeSettings, resumeSettings } from './resume-check';
import { freezeTo } from './freeze';
import { resolveClassWeights } from './losses';
import { EpochLog, FitCallbacks, LoopState, Monitor, disposeLoopState, evaluateSource, fit } from './loop';
import { OptimizerConfig, optimizerConfig } from './optim';
import { ProgressMode, progressCallbacks } from './progress';
import { checkTrainOptions, withTrainDefaults } from './options';
import { TrainEngineChoice } from './step';
import { ScheduleConfig, scheduleConfig } from './schedule';
import { trainingCurveSvg } from './plot';
import { IN_PROCESS_RUNTIME, TrainRuntime } from './runtime';
import { datasetSource, planStageData } from './stage-data';

/** One stage of the recipe. */
export interface StageConfig {
  /** Name shown in progress lines, history.json and the curve. */
  name: string;
  /** Epochs in this stage. */
  epochs: number;
  /** What trains: `head`, `all`, or the number of trunk groups (from the top) unfrozen besides the head. */
  train: 'head' | 'all' | number;
  /** Learning rate of the head (the last group). */
  lr: number;
  /** Discriminative rates: the first trainable group gets lr / lrMult, geometric in between. */
  lrMult?: number;
  /** Explicit rate per group name (overrides lrMult). */
  groupLr?: Record<string, number>;
  /** Schedule over the stage (default: the run's). */
  schedule?: ScheduleConfig | string;
}

/** Everything `train()` (and `graft train`, and a `--config` file) accepts. */
export interface TrainOptions {
  /** Training images: a class-per-folder directory, a CSV manifest or an IDX folder (or an opened Dataset). */
  data: string | Dataset;
  /** Explicit validation set (else `valSplit` of the training data is held out). */
  val?: string | Dataset;
  /** Fraction of each class held out for validation when `val` is absent (default 0.2; 0 for none). */
  valSplit?: number;
  /** Registry architecture of the trunk (not needed when `weights` is a graft model folder). */
  arch?: string;
  /** `imagenet`, a Keras .h5 file, a graft model folder (its trunk), or null to train from scratch. */
  weights?: string | null;
  /** Square input size (channels from the architecture). */
  inputSize?: number;
  /** Full input shape [h, w, c] (overrides inputSize). */
  inputShape?: number[];
  /** The new head. */
  head?: HeadOptions;
  /** simple_cnn configuration. */
  simpleCnn?: SimpleCnnOptions;
  /** Model folder to write. */
  out: string;
  /** Epochs of the fine-tune stage(s) (from scratch: the only stage). Default 3. */
  epochs?: number;
  /** Epochs on the head with the trunk frozen first (default 1 with pretrained weights; ignored from scratch). */
  headEpochs?: number;
  /** What to unfreeze after the head stage: `all` (default) or the number of top trunk groups. */
  unfreeze?: 'all' | number;
  /** Unfreeze one more group per stage (needs a number for `unfreeze`), each stage `epochs` long. */
  gradual?: boolean;
  /** Learning rate of the head stage (default 1e-3); the unfrozen stages use half of it (fastai). */
  lr?: number;
  /** Head learning rate of the unfrozen stages (default lr / 2, as fastai's fine_tune). */
  fineTuneLr?: number;
  /** Discriminative multiplier for the unfrozen stages (default 10: the first group trains 10x slower than the head). */
  lrMult?: number;
  /** Explicit rate per group name for the unfrozen stages. */
  groupLr?: Record<string, number>;
  /** Optimiser name (default adam) or full config. */
  optimizer?: OptimizerConfig['type'] | OptimizerConfig;
  /** SGD / RMSprop momentum. */
  momentum?: number;
  /** SGD Nesterov momentum. */
  nesterov?: boolean;
  /** Weight decay (decoupled for adamw). */
  weightDecay?: number;
  /** Learning-rate schedule of every stage (default one-cycle). */
  schedule?: ScheduleConfig | string;
  /** Linear warm-up fraction of each stage. */
  warmup?: number;
  /** Augmentation: preset name, JSON pipeline, or null for none (default none). */
  augment?: AugmentSpec;
  /** Images per batch (default 32). */
  batchSize?: number;
  /** Seed of the split, shuffles, augmentation and dropout (default 0). */
  seed?: number;
  /** Label smoothing epsilon (default 0). */
  labelSmoothing?: number;
  /** `auto` (balanced), a list, or class name -> weight. */
  classWeights?: 'auto' | number[] | Record<string, number>;
  /** Clip gradients to this global norm. */
  clipNorm?: number;
  /** Early-stopping patience in epochs (per stage); restores the best weights. */
  earlyStopping?: number;
  /** Reduce-on-plateau patience in epochs (rates x0.1). */
  reduceOnPlateau?: number;
  /** Watched quantity (default val_loss with validation, else loss). */
  monitor?: Monitor;
  /** Save the model folder each time the monitored value improves, and end each stage on its best epoch. */
  saveBest?: boolean;
  /** Keep BatchNormalization layers trainable while the trunk is frozen (fastai's default; default false, as Keras). */
  trainBn?: boolean;
  /** Continue from `<out>/checkpoint`. */
  resume?: boolean;
  /** Trunk feature cache while the trunk is frozen: memory (default), disk (also kept under the cache dir) or off. */
  featureCache?: 'memory' | 'disk' | 'off';
  /** Engine for the frozen prefix (default auto). */
  prefixEngine?: EngineChoice;
  /** Worker threads per training step, each with a copy of the model and a slice of every batch (data parallel; default 1 = this thread). */
  workers?: number;
  /** What runs the training steps: `auto` (default: the compiled onnxruntime step when every trainable layer has one, else tfjs), `onnx` or `tfjs`. */
  trainEngine?: TrainEngineChoice;
  /** Explicit stages (replaces headEpochs / epochs / unfreeze / gradual). */
  stages?: StageConfig[];
  /** Progress display (default auto). */
  progress?: ProgressMode;
  /** Extra loop callbacks (after the progress display's). */
  callbacks?: FitCallbacks;
  /** Stop request: the run stops at the next batch and writes a checkpoint. */
  signal?: AbortSignal;
  /** Where notices go (default stderr; null for silence). */
  log?: ((line: string) => void) | null;
}

const STAGE_KEYS = ['name', 'epochs', 'train', 'lr', 'lrMult', 'groupLr', 'schedule'];

/** Options after `resolveTrainOptions`: every option with a table default has a value. */
export type ResolvedTrainOptions = TrainOptions &
  Required<Pick<TrainOptions, 'valSplit' | 'weights' | 'epochs' | 'headEpochs' | 'unfreeze' | 'lr' | 'lrMult' | 'optimizer' | 'schedule' | 'augment' | 'batchSize' | 'seed' | 'labelSmoothing' | 'featureCache' | 'prefixEngine' | 'trainEngine' | 'workers' | 'progress'>>;

/** What `train()` did. */
export interface TrainResult {
  /** The model folder written (or the checkpoint folder when interrupted). */
  out: string;
  /** Every epoch of every stage. */
  history: EpochLog[];
  /** The stages run. */
  stages: StageConfig[];
  /** `completed`, or `aborted` when a stop request interrupted it (resume with `resume: true`). */
  stopReason: 'completed' | 'aborted';
  /** Validation metrics of the saved model (empty without validation). */
  metrics: Record<string, number>;
  /** Where the resume checkpoint is (when aborted). */
  checkpoint?: string;
}

/** Sub-folder of the output holding the resume checkpoint while a run is unfinished. */
export const CHECKPOINT_DIR = 'checkpoint';

const NOTHING_FROM_SCRATCH = 'nothing to train: --epochs is 0 and, from scratch, there is no other stage; pass --epochs 1 or more.';

/** The recipe's stages from the options (or the explicit `stages`), checked against the model's groups. */
export function planStages(options: TrainOptions, model: { groups: LayerGroup[]; pretrained: boolean }): StageConfig[] {
  const { groups, pretrained } = model;
  const o = withTrainDefaults(options) as ResolvedTrainOptions;
  const trunkGroups = groups.length - 1;
  const lr = o.lr;
  const stages: StageConfig[] = o.stages
    ? o.stages.map((s) => {
        rejectUnknownKeys(`stage ${JSON.stringify(s.name)}`, s, STAGE_KEYS);
        return { ...s };
      })
    : [];
  if (!o.stages) {
    const epochs = o.epochs;
    if (!pretrained) {
      // From scratch there is one stage; --epochs 0 leaves nothing to train (the same error as 0 everywhere).
      if (epochs > 0) stages.push({ name: 'scratch', epochs, train: 'all', lr });
      else throw new GraftError(NOTHING_FROM_SCRATCH);
    } else {
      const headEpochs = o.headEpochs;
      if (headEpochs > 0) stages.push({ name: 'head', epochs: headEpochs, train: 'head', lr });
      const fine = { lr: o.fineTuneLr ?? lr / 2, lrMult: o.lrMult, groupLr: o.groupLr };
      const unfreeze = o.unfreeze;
      if (epochs > 0 && o.gradual) {
        if (unfreeze === 'all') throw new GraftError('gradual unfreezing needs a number of groups: pass --unfreeze K with --gradual.');
        for (let k = 1; k <= unfreeze; k++) stages.push({ name: `unfreeze-${k}`, epochs, train: k, ...fine });
      } else if (epochs > 0) {
        stages.push({ name: unfreeze === 'all' ? 'fine-tune' : `unfreeze-${unfreeze}`, epochs, train: unfreeze, ...fine });
      }
    }
  }
  if (!stages.length) throw new GraftError('nothing to train: every stage has 0 epochs; pass --epochs or --head-epochs.');
  for (const s of stages) {
    if (typeof s.name !== 'string' || !s.name) throw new GraftError(`every stage needs a name; received ${JSON.stringify(s)}.`);
    positiveInt(`stage ${s.name} epochs`, s.epochs);
    finiteNumber(`stage ${s.name} lr`, s.lr, { min: 0 });
    if (s.train !== 'head' && s.train !== 'all' && !(Number.isInteger(s.train) && s.train >= 0 && s.train <= trunkGroups)) {
      throw new GraftError(`stage ${s.name}: train must be head, all or a number of trunk groups 0..${trunkGroups}; received ${JSON.stringify(s.train)}.`);
    }
  }
  return stages;
}

/** Sets trainable flags for a stage: the last `k` trunk groups and the head train, everything before is frozen. */
export function applyStage(model: tf.LayersModel, stage: StageConfig, o: { groups: LayerGroup[]; trainBn: boolean }): void {
  const { groups, trainBn } = o;
  const trunkGroups = groups.length - 1;
  const k = stage.train === 'all' ? trunkGroups : stage.train === 'head' ? 0 : stage.train;
  freezeTo(model, groups, trunkGroups - k, { trainBn });
}

/**
 * Validates options against the option table and fills in its defaults (the CLI calls it before it touches any
 * file). `names: 'flags'` makes errors name command-line flags.
 */
export function resolveTrainOptions(raw: Omit<TrainOptions, 'out'> & { out?: string }, options: { names?: 'flags' | 'keys'; needOut?: boolean } = {}): ResolvedTrainOptions {
  const names = options.names ?? 'keys';
  const o = checkTrainOptions(raw, { names }) as ResolvedTrainOptions;
  const flag = (key: string, fallback: string) => (names === 'flags' ? fallback : key);
  if (o.data === undefined) throw new GraftError(`train needs ${flag('data', '--data')}: a folder with one sub-folder per class, a CSV manifest or an IDX folder.`);
  if (options.needOut !== false && !o.out) throw new GraftError(`train needs ${flag('out', '--out')}: the model folder to write.`);
  // Found before any file is opened, not after the dataset scan and the model build.
  if (o.weights === null && o.epochs === 0 && !o.stages) throw new GraftError(NOTHING_FROM_SCRATCH);
  if (o.workers > 1 && o.trainEngine === 'onnx') {
    throw new GraftError(`${flag('workers', '--workers')} ${o.workers} splits steps over tfjs worker threads and cannot run the compiled onnx step; drop it or use ${flag('trainEngine', '--train-engine')} auto.`);
  }
  if (o.arch === undefined && !isModelFolder(o.weights)) {
    throw new GraftError(`train needs ${flag('arch', '--arch')} (e.g. simple_cnn or vgg16) unless ${flag('weights', '--weights')} is a graft model folder.`);
  }
  return o;
}

/** The optimiser config from the flat options. */
export function optimizerFrom(o: TrainOptions): OptimizerConfig {
  const base = typeof o.optimizer === 'object' ? o.optimizer : { type: o.optimizer ?? 'adam' };
  const extra = Object.fromEntries(
    Object.entries({ momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay }).filter(([, v]) => v !== undefined),
  );
  return optimizerConfig({ ...base, ...extra });
}

/** The schedule of a stage, with the run's warm-up. */
function scheduleFrom(o: ResolvedTrainOptions, stage: StageConfig): ScheduleConfig {
  const s = scheduleConfig(stage.schedule ?? o.schedule);
  return o.warmup !== undefined && s.warmup === undefined ? { ...s, warmup: o.warmup } : s;
}

/** A resumed run's stage, history and loop state. */
interface ResumePoint {
  state: LoopState;
  stageIndex: number;
  history: EpochLog[];
  stages: StageConfig[];
}

/** The training data and its validation split (`--val`, or `--val-split` of the data, or none). */
async function openTrainData(o: ResolvedTrainOptions, log: ((line: string) => void) | null): Promise<{ ds: Dataset; data: { train: Dataset; validation?: Dataset } }> {
  const ds = typeof o.data === 'string' ? await openDataset(o.data, { log }) : o.data;
  if (o.val !== undefined) return { ds, data: await splitDataset(ds, { validation: o.val, open: { log } }) };
  if (o.valSplit > 0) return { ds, data: await splitDataset(ds, { validationFraction: o.valSplit, seed: o.seed }) };
  return { ds, data: { train: ds } };
}

/** The model a run trains: the checkpoint's (with its settings checked against this run's) or a new classifier. */
async function startModel(o: ResolvedTrainOptions, ckptDir: string, ds: Dataset): Promise<{ model: tf.LayersModel; meta: ModelMeta; resume?: ResumePoint }> {
  if (!o.resume) return buildClassifier(o, ds.classNames);
  if (!hasCheckpoint(ckptDir)) throw new GraftError(`--resume: ${ckptDir} holds no checkpoint; run without --resume to start afresh.`);
  const ckpt = await loadCheckpoint(ckptDir);
  const extra = ckpt.extra as { stageIndex: number; history: EpochLog[]; stages: StageConfig[]; settings?: Record<string, unknown> };
  try {
    checkResumeSettings(extra.settings, o, { checkpoint: ckptDir, savedArch: ckpt.meta.architecture });
  } catch (err) {
    ckpt.model.dispose();
    disposeLoopState(ckpt.state);
    throw err;
  }
  return { model: ckpt.model, meta: ckpt.meta as ModelMeta, resume: { state: ckpt.state, ...extra } };
}

/**
 * Runs the fine-tune recipe and writes the model folder (with history.json and training-curve.png). `runtime` gives
 * the engines (the public `train` passes engine/'s; the default runs everything on tfjs in this thread).
 */
export async function fineTune(options: TrainOptions, runtime: TrainRuntime = IN_PROCESS_RUNTIME): Promise<TrainResult> {
  const o = resolveTrainOptions(options);
  const log = o.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : o.log;
  const started = Date.now();
  const seed = o.seed;
  const out = path.resolve(o.out);
  const ckptDir = path.join(out, CHECKPOINT_DIR);

  const { ds, data } = await openTrainData(o, log);
  const { model, meta, resume } = await startModel(o, ckptDir, ds);

  try {
    if (JSON.stringify(meta.classNames) !== JSON.stringify(ds.classNames)) {
      throw new GraftError(`the checkpoint has classes ${meta.classNames.join(', ')} but the data has ${ds.classNames.join(', ')}; resume with the same data.`);
    }
    const stages = planStages(o, { groups: meta.groups, pretrained: meta.weights !== null && meta.weights !== undefined });
    if (resume && JSON.stringify(resume.stages) !== JSON.stringify(stages)) {
      throw new GraftError(`the checkpoint in ${ckptDir} was written with different stages (${resume.stages.map((s) => s.name).join(', ')}); resume with the same options, or train without --resume.`);
    }
    const classWeights = resolveClassWeights(o.classWeights, ds.classNames, Int32Array.from(data.train.samples, (s) => s.label));
    const loss = { outputActivation: meta.outputActivation, labelSmoothing: o.labelSmoothing, classWeights };
    const optimizer = optimizerFrom(o);
    const progress = progressCallbacks({ mode: o.progress ?? 'auto' });
    const callbacks = mergeCallbacks(progress, o.callbacks);
    // Epochs of the completed stages; a resumed stage's own epochs come back in its loop state.
    let history: EpochLog[] = resume ? resume.history.slice() : [];
    const stageInputs: Record<string, string> = {};
    const stepEngines: Record<string, string> = {};
    const trainingMeta = (extra: Record<string, unknown>) => ({
      ...meta,
      training: {
        recipe: meta.weights === null || meta.weights === undefined ? 'scratch' : 'fine-tune',
        data: { train: data.train.samples.length, validation: data.validation?.samples.length ?? 0, root: ds.root },
        stages,
        stageInputs,
        stepEngines,
        optimizer,
        schedule: o.schedule,
        batchSize: o.batchSize,
        seed,
        augment: o.augment ?? null,
        labelSmoothing: o.labelSmoothing,
        classWeights: classWeights ?? null,
        trainBn: Boolean(o.trainBn),
        backend: currentBackend()?.backend ?? tf.getBackend(),
        epochs: history.length,
        ...extra,
      },
    });

    for (let i = resume?.stageIndex ?? 0; i < stages.length; i++) {
      const stage = stages[i];
      applyStage(model, stage, { groups: meta.groups, trainBn: Boolean(o.trainBn) });
      const plan = await planStageData({ model, meta, data, options: o, seed: `${seed}/${stage.name}`, log, runtime });
      stageInputs[stage.name] = plan.input;
      const prior = history.slice();
      const resumeState = resume && i === resume.stageIndex ? resume.state : undefined;
      try {
        const result = await fit({
          model: plan.model,
          groups: plan.groups,
          train: plan.train,
          validation: plan.validation,
          epochs: stage.epochs,
          lr: stage.lr,
          lrMult: stage.lrMult,
          groupLr: stage.groupLr,
          optimizer,
          schedule: scheduleFrom(o, stage),
          loss,
          clipNorm: o.clipNorm,
          seed: `${seed}/${stage.name}`,
          classNames: ds.classNames,
          monitor: o.monitor,
          earlyStopping: o.earlyStopping ? { patience: o.earlyStopping } : undefined,
          reduceOnPlateau: o.reduceOnPlateau ? { patience: o.reduceOnPlateau } : undefined,
          // With --save-best the folder holds the best epoch during the run, so the final save must too.
          restoreBest: Boolean(o.earlyStopping || o.saveBest),
          signal: o.signal,
          gradients: o.workers > 1 ? workerGradients(runtime, o.workers) : undefined,
          stepEngine: o.workers > 1 ? undefined : runtime.stepEngine(o.trainEngine, { log, workers: o.workers }),
          batchSize: o.batchSize,
          onStepEngine: (name) => (stepEngines[stage.name] = name),
          resume: resumeState,
          epochOffset: prior.length,
          stage: stage.name,
          callbacks: {
            ...callbacks,
            onImproved: async (log) => {
              await callbacks.onImproved?.(log);
              if (o.saveBest) await saveModelFolder(out, model, trainingMeta({ inProgress: true, bestEpoch: log.epoch }));
            },
          },
          onCheckpoint: (state, reason) =>
            reason === 'abort' || i < stages.length - 1 || state.epoch < stage.epochs
              ? saveCheckpoint(ckptDir, model, meta, state, { stageIndex: i, history: prior, stages, settings: resumeSettings(o) })
              : undefined,
        });
        history = prior.concat(result.history);
        if (result.stopReason === 'aborted') {
          return { out: ckptDir, history, stages, stopReason: 'aborted', metrics: {}, checkpoint: ckptDir };
        }
      } finally {
        await plan.dispose();
        if (resumeState) disposeLoopState(resumeState);
      }
    }

    const metrics: Record<string, number> = {};
    if (data.validation) {
      const v = await evaluateSource(model, datasetSource(data.validation, meta, { batchSize: o.batchSize, shuffle: false, seed: '0' }), loss, ds.classNames);
      Object.assign(metrics, { val_loss: v.loss, val_accuracy: v.accuracy, val_f1_macro: v.f1, val_samples: data.validation.samples.length });
    }
    const png = await svgToPng(trainingCurveSvg(history));
    const finalMeta = { ...trainingMeta({ seconds: (Date.now() - started) / 1000 }), metrics };
    const files = { 'history.json': JSON.stringify(history, null, 2) + '\n', 'training-curve.png': png };
    await saveWithFallback(out, (dir) => saveModelFolder(dir, model, finalMeta, { files }), 'trained model');
    fs.rmSync(ckptDir, { recursive: true, force: true });
    return { out, history, stages, stopReason: 'completed', metrics };
  } finally {
    model.dispose();
  }
}

/** The runtime's data-parallel gradients, or an error when it has no worker threads. */
function workerGradients(runtime: TrainRuntime, workers: number) {
  if (!runtime.pooledGradients) throw new GraftError(`workers ${workers} needs worker threads, which this runtime lacks; use graft's train (not fineTune) or workers 1.`);
  return runtime.pooledGradients(workers);
}

/** The classifier a run trains: trunk + new head, initialised from the run's seed. */
export async function buildClassifier(o: TrainOptions, classNames: string[]): Promise<{ model: tf.LayersModel; meta: ModelMeta }> {
  const inputShape = o.inputShape ?? (o.inputSize && o.arch ? [o.inputSize, o.inputSize, defaultInputShape(getArchitecture(o.arch))[2]] : undefined);
  return createClassifier({ arch: o.arch, weights: o.weights, inputShape, classNames, head: o.head, simpleCnn: o.simpleCnn, seed: o.seed });
}

/** Calls both sets of callbacks, the first's first. */
function mergeCallbacks(a: FitCallbacks, b: FitCallbacks = {}): FitCallbacks {
  return {
    onEpochBegin: (epoch, steps) => {
      a.onEpochBegin?.(epoch, steps);
      b.onEpochBegin?.(epoch, steps);
    },
    onBatchEnd: (info) => {
      a.onBatchEnd?.(info);
      b.onBatchEnd?.(info);
    },
    onEpochEnd: async (log) => {
      await a.onEpochEnd?.(log);
      await b.onEpochEnd?.(log);
    },
    onImproved: async (log) => {
      await a.onImproved?.(log);
      await b.onImproved?.(log);
    },
  };
}
