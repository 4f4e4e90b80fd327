/**
 * The engine table: the one place that knows which engines can run a model, in what order `auto` tries them, and
 * how each one loads a saved model folder (a Predictor), a model or the prefix of one (a Runner) and, when it can,
 * a compiled training step. Every caller (evaluate, predict, features, the frozen prefix in training) goes through
 * `openWithEngine`, so each fallback is decided and logged here, once, in the same words.
 */
// tfjs and the exporter load only when an engine needs them: evaluating on onnxruntime never loads tfjs.
import * as fs from 'node:fs';
import type * as tf from '@tensorflow/tfjs';
import { GraftError, oneOf, positiveInt } from '../errors';
import { readGraftMeta } from '../io/graft-json';
import { checkModelFolderFiles } from '../io/model-folder';
import { ENGINE_CHOICES, EngineChoice, Runner } from '../models/runner';
import type { StepEngine, StepEngineContext } from '../train/step';
import type { Predictor } from './predictor';
import { computeThreads } from '../backend/compute-threads';
import { createOnnxPredictor, tryLoadOnnxRuntime } from './onnx-runtime';

export type { Predictor } from './predictor';
export { ENGINE_CHOICES } from '../models/runner';
export type { EngineChoice, Runner } from '../models/runner';

/** Options every engine receives. */
export interface EngineOptions {
  /** Cores the engine may compute on (default: `--threads` / GRAFT_THREADS as given to initBackend, else every core). */
  threads?: number;
  /** Where the engine's own notices go (e.g. CUDA falling back to CPU); default stderr, null for silence. */
  log?: ((line: string) => void) | null;
}

/** One way of running models. */
export interface Engine {
  /** Name used by `--engine`. */
  name: Exclude<EngineChoice, 'auto'>;
  /** Null when the engine can run here, else one line saying why not and what to install. */
  unavailable(): string | null | Promise<string | null>;
  /** A saved model folder, for prediction and evaluation. */
  predictor(modelDir: string, options: EngineOptions): Promise<Predictor>;
  /** An in-memory model, whole or (with `boundary`) from its input to that layer's output. */
  runner(model: tf.LayersModel, options: EngineOptions & { boundary?: string }): Promise<Runner>;
  /** Training steps for the model in `context` (absent: the engine cannot train); throws naming a layer it cannot train. */
  trainStep?(context: StepEngineContext, options: EngineOptions): Promise<StepEngine>;
  /**
   * A model graft exported to an ONNX file and cached (absent: the engine runs in-memory models only). `shapes` are
   * the input [h, w, c] and the output without the batch dimension.
   */
  fileRunner?(file: string, shapes: { input: number[]; output: number[] }, options: EngineOptions): Promise<Runner>;
}

/** The tfjs engine: the model on the current tfjs backend (a saved model on worker threads when that pays). */
const TFJS_ENGINE: Engine = {
  name: 'tfjs',
  unavailable: () => null,
  async predictor(modelDir, o) {
    // The CLI starts a backend only when it expects tfjs to run; a fallback to tfjs starts the default one here.
    const { currentBackend, initBackend } = await import('../backend');
    if (!currentBackend()) await initBackend({ threads: o.threads, log: null });
    const { createTfjsEnginePredictor } = await import('./workers');
    return createTfjsEnginePredictor(modelDir, { threads: o.threads });
  },
  async runner(model, o) {
    const { tfjsPrefixRunner, tfjsRunner } = await import('../models/runner');
    return o.boundary ? tfjsPrefixRunner(model, o.boundary) : tfjsRunner(model);
  },
  async trainStep(context) {
    const { localGradients, tfjsStepEngine } = await import('../train/step');
    return tfjsStepEngine(context, localGradients(context.model, context.loss));
  },
};

/** The onnxruntime engine: the model's ONNX export on onnxruntime-node (CUDA when its provider is installed). */
const ONNX_ENGINE: Engine = {
  name: 'onnx',
  unavailable: () => tryLoadOnnxRuntime().reason ?? null,
  predictor: (modelDir, o) => createOnnxPredictor(modelDir, o),
  async runner(model, o) {
    const { createOnnxModelRunner, createOnnxPrefixRunner } = await import('./onnx-runners');
    return o.boundary ? createOnnxPrefixRunner(model, o.boundary, o) : createOnnxModelRunner(model, o);
  },
  async fileRunner(file, shapes, o) {
    const { createOnnxSession, optimizedModelPath, sessionRunner, warmUp } = await import('./onnx-runtime');
    const threads = o.threads ?? computeThreads();
    // onnxruntime's optimized graph is kept beside the export, so a later run skips graph optimization.
    const optimizedPath = optimizedModelPath(file, threads);
    const { session, engine } = await createOnnxSession(file, { threads, optimizedPath, log: o.log });
    // The warm-up (one zero image, so that a graph onnxruntime cannot run falls back before the job starts) runs once
    // per optimized graph: a marker beside it remembers the graph's modification time. Later runs go straight to
    // the first batch (ResNet50: a fifth of a second saved on every start).
    const marker = `${optimizedPath}.ran`;
    const stamp = fs.existsSync(optimizedPath) ? String(fs.statSync(optimizedPath).mtimeMs) : null;
    if (stamp === null || !fs.existsSync(marker) || fs.readFileSync(marker, 'utf8') !== stamp) {
      await warmUp(session, shapes.input, file);
      if (stamp !== null) fs.writeFileSync(marker, stamp);
    }
    return sessionRunner(session, engine, shapes);
  },
  // The whole step (forward, loss, backward, clipping, optimiser) compiled into one graph; weights and optimiser
  // state stay in onnxruntime between steps and go back to tfjs on `sync`.
  async trainStep(context, o) {
    const { createOnnxTrainStep } = await import('./onnx-train-step');
    const compiled = await createOnnxTrainStep(context.model, {
      groups: context.groups,
      optimizer: context.optimizer,
      loss: context.loss,
      clipNorm: context.clipNorm,
      batchSize: context.batchSize,
      threads: o.threads,
      log: o.log,
    });
    let steps = 0;
    return {
      name: `${compiled.engine} (compiled step)`,
      step: (batch, lr, info) => compiled.step({ x: batch.x, shape: batch.x.shape, labels: batch.labels }, lr, { step: steps++, dropoutSeed: info.dropoutSeed }),
      sync: async () => compiled.writeBack(context.groups),
      dispose: () => compiled.dispose(),
    };
  },
};

/** Engines in the order `auto` prefers them; the last one must always be available. */
export const ENGINES: Engine[] = [ONNX_ENGINE, TFJS_ENGINE];

/** Options for `openWithEngine` and the functions built on it. */
export interface EngineChoiceOptions extends EngineOptions {
  /** `auto` (default: the first engine that loads, with a one-line notice for each skipped), `onnx` or `tfjs`. */
  engine?: EngineChoice | string;
  /** Name of the option in errors (default `engine`, e.g. `prefix engine`). */
  label?: string;
}

/**
 * Opens something with the requested engine: `auto` goes down `ENGINES` and says in one line why it left each one
 * that could not run `what`; an explicit engine never falls back, and its failure is an error naming the reason.
 */
export async function openWithEngine<T>(
  what: string,
  options: EngineChoiceOptions,
  open: (engine: Engine, o: EngineOptions) => Promise<T>,
  engines: readonly Engine[] = ENGINES,
): Promise<T> {
  const choice = oneOf(options.label ?? 'engine', options.engine ?? 'auto', ENGINE_CHOICES);
  const threads = options.threads === undefined ? undefined : positiveInt('threads', options.threads);
  const log = options.log === undefined ? (line: string) => process.stderr.write(line + '\n') : options.log;
  const o: EngineOptions = { threads, log };
  if (choice !== 'auto') {
    const engine = engines.find((e) => e.name === choice);
    const why = engine ? await engine.unavailable() : `it cannot run ${what} in this build`;
    if (why) throw new GraftError(`--engine ${choice} is not available: ${why}; or use --engine auto.`);
    try {
      return await open(engine!, o);
    } catch (err) {
      if (err instanceof GraftError) throw err;
      throw new GraftError(`--engine ${choice} cannot run ${what}: ${firstLine(err)}; use --engine auto.`, { cause: err });
    }
  }
  for (const [i, engine] of engines.entries()) {
    const last = i === engines.length - 1;
    const why = await engine.unavailable();
    if (last && why) throw new GraftError(`no engine can run ${what}: ${why}; reinstall graft with npm ci.`);
    if (why) {
      log?.(`graft: ${engine.name} engine unavailable (${why}); using ${engines[i + 1].name}.`);
      continue;
    }
    try {
      return await open(engine, o);
    } catch (err) {
      if (last) throw err;
      log?.(`graft: ${engine.name} engine could not load ${what} (${firstLine(err)}); using ${engines[i + 1].name}.`);
    }
  }
  throw new GraftError('graft has no engines; reinstall graft with npm ci.');
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

/** Opens a model folder for prediction; see `openWithEngine` for how the engine is chosen. */
export async function createPredictor(modelDir: string, options: EngineChoiceOptions = {}): Promise<Predictor> {
  // Read graft.json first so a folder that is not a model fails the same way whatever the engine.
  readGraftMeta(modelDir);
  checkModelFolderFiles(modelDir);
  return openWithEngine(modelDir, options, (engine, o) => engine.predictor(modelDir, o));
}

/** Runs an in-memory model (e.g. a feature extractor) forward; the runner never disposes the model. */
export async function createModelRunner(model: tf.LayersModel, options: EngineChoiceOptions = {}): Promise<Runner> {
  return openWithEngine(`model ${model.name}`, options, (engine, o) => engine.runner(model, o));
}

/** The step engine for a training context: `--train-engine` through the table (engines without training are skipped). */
export async function createStepEngine(context: StepEngineContext, options: EngineChoiceOptions = {}): Promise<StepEngine> {
  const trainers = ENGINES.filter((e) => e.trainStep);
  return openWithEngine('the training steps', { label: 'train engine', ...options }, (engine, o) => engine.trainStep!(context, o), trainers);
}

/** Runs `model` from its input to the output of `boundaryLayerName` (a frozen prefix); weights are read now. */
export async function createPrefixRunner(model: tf.LayersModel, boundaryLayerName: string, options: EngineChoiceOptions = {}): Promise<Runner> {
  return openWithEngine(`the layers up to ${boundaryLayerName}`, { label: 'prefix engine', ...options }, (engine, o) => engine.runner(model, { ...o, boundary: boundaryLayerName }));
}
