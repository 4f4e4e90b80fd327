/**
 * Classifier heads: the new top graft attaches to any trunk (pooling, optional hidden dense layers with dropout and
 * an activation, then the output layer). Options are validated here once, for the API and the CLI alike.
 */
import { GraftError, finiteNumber, oneOf, positiveInt, rejectUnknownKeys } from '../errors';
import { Net, Sym } from './net';

/** How the head reduces the trunk's feature map to a vector. */
export const HEAD_POOLINGS = ['avg', 'max', 'flatten'] as const;
/** Activations for hidden head layers. */
export const HEAD_ACTIVATIONS = ['relu', 'leaky_relu', 'tanh', 'sigmoid', 'elu'] as const;
/** Output activations: softmax for one label per image, sigmoid for multi-label or binary. */
export const OUTPUT_ACTIVATIONS = ['softmax', 'sigmoid'] as const;

/** A head pooling mode. */
export type HeadPooling = (typeof HEAD_POOLINGS)[number];
/** A hidden-layer activation. */
export type HeadActivation = (typeof HEAD_ACTIVATIONS)[number];
/** An output activation. */
export type OutputActivation = (typeof OUTPUT_ACTIVATIONS)[number];

/** A classifier head. */
export interface HeadOptions {
  /** Feature-map reduction: `avg` (default for ImageNet trunks), `max` or `flatten`. */
  pooling?: HeadPooling;
  /** Units of hidden dense layers between pooling and output (default none). */
  hidden?: readonly number[];
  /** Dropout rate after each hidden layer, or before the output when there are none (0 = no dropout layer). */
  dropout?: number;
  /** Activation of the hidden layers (default relu). */
  activation?: HeadActivation;
  /** Output activation (default softmax). */
  outputActivation?: OutputActivation;
}

const HEAD_KEYS = ['pooling', 'hidden', 'dropout', 'activation', 'outputActivation'] as const;

/** Validates head options and fills defaults (`defaults` first, then graft's: avg pooling, no hidden, softmax). */
export function resolveHead(head: HeadOptions = {}, defaults: HeadOptions = {}): Required<HeadOptions> {
  rejectUnknownKeys('head', head, HEAD_KEYS);
  const merged = { ...defaults, ...stripUndefined(head) };
  const hidden = merged.hidden ?? [];
  if (!Array.isArray(hidden)) throw new GraftError(`head.hidden must be a list of layer sizes such as [256]; received ${JSON.stringify(hidden)}.`);
  return {
    pooling: oneOf('head.pooling', merged.pooling ?? 'avg', HEAD_POOLINGS),
    hidden: hidden.map((u, i) => positiveInt(`head.hidden[${i}]`, u)),
    dropout: finiteNumber('head.dropout', merged.dropout ?? 0, { min: 0, max: 0.99 }),
    activation: oneOf('head.activation', merged.activation ?? 'relu', HEAD_ACTIVATIONS),
    outputActivation: oneOf('head.outputActivation', merged.outputActivation ?? 'softmax', OUTPUT_ACTIVATIONS),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Builds a head on `x` into the open group of `net`: pooling (skipped when `x` is already a vector), `fc<i>` +
 * `fc<i>_act` (+ `fc<i>_dropout`) per hidden layer, then `predictions`.
 */
export function applyHead(net: Net, x: Sym, head: Required<HeadOptions>, classes: number): Sym {
  if (x.shape.length === 4) {
    x = head.pooling === 'flatten' ? net.flatten(x, 'flatten') : net.globalPool(x, head.pooling, `${head.pooling}_pool`);
  }
  head.hidden.forEach((units, i) => {
    x = net.dense(x, units, { name: `fc${i + 1}` });
    x = net.act(x, head.activation, `fc${i + 1}_act`);
    if (head.dropout > 0) x = net.dropout(x, head.dropout, `fc${i + 1}_dropout`);
  });
  if (head.hidden.length === 0 && head.dropout > 0) x = net.dropout(x, head.dropout, 'dropout');
  return net.dense(x, classes, { activation: head.outputActivation, name: 'predictions' });
}
