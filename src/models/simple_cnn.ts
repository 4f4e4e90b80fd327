/**
 * graft's small configurable CNN for small images and from-scratch baselines: blocks of conv (+ batch norm) +
 * activation, each closed by a 2x2 pooling, then a head (flatten or global pooling, dense layers, dropout). The
 * default (conv 32 / conv 64, dense 128, dropout 0.5 on 28x28x1) is the classic Fashion-MNIST baseline (~91-92%).
 */
import { GraftError, finiteNumber, oneOf, positiveInt, rejectUnknownKeys } from '../errors';
import { ArchitectureSpec } from './spec';
import { HEAD_ACTIVATIONS, HEAD_POOLINGS, HeadActivation, HeadOptions, HeadPooling, applyHead, resolveHead } from './head';

/** Configuration of `simple_cnn`. */
export interface SimpleCnnOptions {
  /** Filters of each conv block; the block count is its length (default [32, 64]). */
  filters?: readonly number[];
  /** Square kernel size of every conv (default 3). */
  kernelSize?: number;
  /** Convs per block before its pooling (default 1). */
  convsPerBlock?: number;
  /** Pooling closing each block: `max` (default) or `avg`. */
  pooling?: 'max' | 'avg';
  /** Activation after each conv and hidden dense layer (default relu). */
  activation?: HeadActivation;
  /** Batch normalisation after each conv (default false). */
  batchNorm?: boolean;
  /** How the top reduces the last feature map: `flatten` (default), `avg` or `max` global pooling. */
  topPooling?: HeadPooling;
  /** Hidden dense layers of the top (default [128]). */
  dense?: readonly number[];
  /** Dropout in the top (default 0.5). */
  dropout?: number;
}

/** The defaults: the Fashion-MNIST baseline. */
export const SIMPLE_CNN_DEFAULTS: Required<SimpleCnnOptions> = {
  filters: [32, 64],
  kernelSize: 3,
  convsPerBlock: 1,
  pooling: 'max',
  activation: 'relu',
  batchNorm: false,
  topPooling: 'flatten',
  dense: [128],
  dropout: 0.5,
};

/** Validates `simple_cnn` options and fills the defaults. */
export function resolveSimpleCnn(options: SimpleCnnOptions = {}): Required<SimpleCnnOptions> {
  rejectUnknownKeys('simpleCnn', options, Object.keys(SIMPLE_CNN_DEFAULTS));
  const o = { ...SIMPLE_CNN_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  if (!Array.isArray(o.filters) || o.filters.length === 0) {
    throw new GraftError(`simpleCnn.filters must be a non-empty list such as [32, 64]; received ${JSON.stringify(o.filters)}.`);
  }
  if (!Array.isArray(o.dense)) throw new GraftError(`simpleCnn.dense must be a list such as [128]; received ${JSON.stringify(o.dense)}.`);
  return {
    filters: o.filters.map((f, i) => positiveInt(`simpleCnn.filters[${i}]`, f)),
    kernelSize: positiveInt('simpleCnn.kernelSize', o.kernelSize),
    convsPerBlock: positiveInt('simpleCnn.convsPerBlock', o.convsPerBlock),
    pooling: oneOf('simpleCnn.pooling', o.pooling, ['max', 'avg'] as const),
    activation: oneOf('simpleCnn.activation', o.activation, HEAD_ACTIVATIONS),
    batchNorm: typeof o.batchNorm === 'boolean' ? o.batchNorm : oneOf('simpleCnn.batchNorm', o.batchNorm, ['true', 'false']) === 'true',
    topPooling: oneOf('simpleCnn.topPooling', o.topPooling, HEAD_POOLINGS),
    dense: o.dense.map((u, i) => positiveInt(`simpleCnn.dense[${i}]`, u)),
    dropout: finiteNumber('simpleCnn.dropout', o.dropout, { min: 0, max: 0.99 }),
  };
}

/** The head `simple_cnn` uses as its top, and `createClassifier` uses by default on a `simple_cnn` trunk. */
export function simpleCnnHead(cfg: Required<SimpleCnnOptions>): HeadOptions {
  return { pooling: cfg.topPooling, hidden: cfg.dense, dropout: cfg.dropout, activation: cfg.activation };
}

/** The `simple_cnn` architecture. */
export const SIMPLE_CNN_SPEC: ArchitectureSpec = {
  name: 'simple_cnn',
  keras: 'graft',
  defaultInputSize: 28,
  minInputSize: 8,
  preprocessing: 'unit',
  imagenet: null,
  params: null,
  inputChannels: 1,
  defaultClasses: 10,
  defaultHead: ({ simpleCnn }) => simpleCnnHead(simpleCnn),
  trunk(net, input, { simpleCnn: cfg }) {
    const size = Math.min(input.shape[1] ?? 0, input.shape[2] ?? 0);
    if (size < 2 ** cfg.filters.length) {
      throw new GraftError(
        `simple_cnn with ${cfg.filters.length} pooling blocks needs input at least ${2 ** cfg.filters.length}x${2 ** cfg.filters.length}; received ${size}. Use fewer filters entries or a larger input.`,
      );
    }
    let x = input;
    cfg.filters.forEach((filters, b) => {
      const block = `block${b + 1}`;
      net.group(block);
      for (let i = 1; i <= cfg.convsPerBlock; i++) {
        x = net.conv(x, { filters, kernel: cfg.kernelSize, padding: 'same', useBias: !cfg.batchNorm, name: `${block}_conv${i}` });
        if (cfg.batchNorm) x = net.bn(x, { name: `${block}_conv${i}_bn` });
        x = net.act(x, cfg.activation, `${block}_conv${i}_act`);
      }
      x = net.pool(x, cfg.pooling, { size: 2, name: `${block}_pool` });
    });
    return x;
  },
  top(net, x, { classes, classifierActivation }, { simpleCnn: cfg }) {
    return applyHead(net, x, resolveHead({ ...simpleCnnHead(cfg), outputActivation: classifierActivation }), classes);
  },
};
