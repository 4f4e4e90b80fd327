/**
 * What the training recipe needs from the engines above it (engine/ sits above train/ and supplies the real ones):
 * a forward-only runner for a frozen prefix, and data-parallel gradients on worker threads. The in-process runtime
 * here runs everything on the current tfjs backend, so train/ works on its own.
 */
import * as tf from '@tensorflow/tfjs';
import { EngineChoice, Runner, tfjsPrefixRunner } from '../models/runner';
import type { FitOptions } from './loop';
import { StepEngineFactory, TrainEngineChoice, localGradients, tfjsStepEngine } from './step';

/** Options of a prefix runner request. */
export interface PrefixRunnerRequest {
  /** `auto`, `onnx` or `tfjs`. */
  engine: EngineChoice;
  /** Where engine notices go (null for silence). */
  log: ((line: string) => void) | null;
}

/** The engines training can use. */
export interface TrainRuntime {
  /** Runs `model` from its input to `boundary` forward (the frozen prefix); its weights are read when it opens. */
  prefixRunner(model: tf.LayersModel, boundary: string, request: PrefixRunnerRequest): Promise<Runner>;
  /** A gradient-source factory computing each step on `workers` worker threads (absent: `workers` > 1 is an error). */
  pooledGradients?(workers: number): NonNullable<FitOptions['gradients']>;
  /** What runs the training steps for `--train-engine` (`auto` picks the fastest that supports the model). */
  stepEngine(choice: TrainEngineChoice, request: { log: ((line: string) => void) | null; workers: number }): StepEngineFactory;
}

/** Everything on the current tfjs backend in this thread. */
export const IN_PROCESS_RUNTIME: TrainRuntime = {
  prefixRunner: async (model, boundary) => tfjsPrefixRunner(model, boundary),
  stepEngine: () => async (context) => tfjsStepEngine(context, localGradients(context.model, context.loss)),
};
