/**
 * The values training options take and the validators that need no tensors: optimiser configs, monitored
 * quantities, training engines. The CLI's flag tables and config files read them at start-up, so this file imports
 * nothing that loads tfjs (a command that never trains, such as `graft features`, never pays for tfjs).
 */
import { GraftError, finiteNumber, oneOf, rejectUnknownKeys } from '../errors';
import type { StepOptimizer } from '../onnx/train-step/compile';

/** Quantities a callback can monitor. */
export const MONITORS = ['val_loss', 'val_accuracy', 'val_f1', 'loss', 'accuracy'] as const;
/** A monitored quantity. */
export type Monitor = (typeof MONITORS)[number];

/** What a user may ask for with `--train-engine`. */
export const TRAIN_ENGINE_CHOICES = ['auto', 'onnx', 'tfjs'] as const;
/** A training-engine request. */
export type TrainEngineChoice = (typeof TRAIN_ENGINE_CHOICES)[number];

/** Optimisers graft implements. */
export const OPTIMIZERS = ['sgd', 'adam', 'adamw', 'rmsprop'] as const;
/** An optimiser name. */
export type OptimizerName = (typeof OPTIMIZERS)[number];

/**
 * Hyper-parameters of an optimiser (each applies to the optimisers that use it): the compiled step's own
 * description of them, with the type narrowed to the names graft accepts. Defaults (filled by `optimizerConfig`):
 * momentum 0, beta1 0.9, beta2 0.999, rho 0.9, epsilon 1e-7 (as Keras), weight decay 0 (adamw 0.01).
 */
export interface OptimizerConfig extends StepOptimizer {
  /** Which update rule. */
  type: OptimizerName;
}

const CONFIG_KEYS = ['type', 'momentum', 'nesterov', 'beta1', 'beta2', 'rho', 'epsilon', 'weightDecay'] as const;

/** Validates an optimiser config (from the API, the CLI or a config file). */
export function optimizerConfig(raw: Partial<OptimizerConfig> & { type?: string }): OptimizerConfig {
  rejectUnknownKeys('optimizer', raw, CONFIG_KEYS);
  const type = oneOf('optimizer', raw.type ?? 'adam', OPTIMIZERS);
  const num = (key: keyof OptimizerConfig, dflt: number, range: { min?: number; max?: number }) =>
    raw[key] === undefined ? dflt : finiteNumber(`optimizer ${key}`, raw[key], range);
  const config: OptimizerConfig = {
    type,
    momentum: num('momentum', 0, { min: 0, max: 1 }),
    nesterov: Boolean(raw.nesterov),
    beta1: num('beta1', 0.9, { min: 0, max: 1 }),
    beta2: num('beta2', 0.999, { min: 0, max: 1 }),
    rho: num('rho', 0.9, { min: 0, max: 1 }),
    epsilon: num('epsilon', 1e-7, { min: 0 }),
    weightDecay: num('weightDecay', type === 'adamw' ? 0.01 : 0, { min: 0 }),
  };
  if (config.nesterov && !(config.momentum! > 0)) throw new GraftError('nesterov needs momentum > 0; pass --momentum 0.9 (or drop --nesterov).');
  return config;
}

