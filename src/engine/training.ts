/**
 * The public training entry points: train/'s recipe and lr-find with the engines from the engine table (the frozen
 * prefix on onnxruntime when it loads, data-parallel worker threads for `workers`).
 */
import { LrFindOptions, LrFindResult, runLrFind } from '../train/lr-find';
import { TrainOptions, TrainResult, fineTune } from '../train/fine-tune';
import { TrainRuntime } from '../train/runtime';
import { createPrefixRunner, createStepEngine } from './index';
import { pooledGradients } from './pooled-gradients';

/** The engines training uses: the engine table's prefix runners and the worker-thread gradient pool. */
export const ENGINE_RUNTIME: TrainRuntime = {
  prefixRunner: (model, boundary, request) => createPrefixRunner(model, boundary, request),
  pooledGradients,
  stepEngine: (choice, request) => (context) => createStepEngine(context, { engine: choice, log: request.log }),
};

/** Runs the fine-tune recipe (see `TrainOptions`) and writes the model folder. */
export function train(options: TrainOptions): Promise<TrainResult> {
  return fineTune(options, ENGINE_RUNTIME);
}

/** The learning-rate range test (see `LrFindOptions`). */
export function lrFind(options: LrFindOptions): Promise<LrFindResult> {
  return runLrFind(options, ENGINE_RUNTIME);
}
