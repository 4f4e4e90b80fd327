/**
 * The one table of training options: for each, its API name, its command-line flag, how a flag's text becomes a
 * value, its default, its check and its help. `graft train` and `graft lr-find` build their flags from it, a
 * `--config` file is checked against it, and `resolveTrainOptions` fills in defaults from it, so a flag, its default
 * and its wording live in one place. Errors name the flag when the options came from the command line.
 */
import { GraftError, finiteNumber, oneOf, rejectUnknownKeys } from '../errors';
import { parseAugmentation } from '../data/augment';
import { ENGINE_CHOICES } from '../models/runner';
import { MONITORS, OPTIMIZERS, TRAIN_ENGINE_CHOICES, optimizerConfig } from './config';
import { PROGRESS_MODES } from './progress';
import { SCHEDULES, scheduleConfig } from './schedule';

/** How a value is checked and normalised; `name` is the flag or the API key, whichever the caller used. */
type Check = (value: unknown, name: string) => unknown;

/** One training option. */
export interface TrainOptionSpec {
  /** API name (camelCase), also the `--config` key. */
  key: string;
  /** Commander flag with its argument, e.g. `--lr <rate>`; absent for options only the API and config files set. */
  flag?: string;
  /** Help line; the default is appended from `default`. */
  help: string;
  /** Default filled in by `resolveTrainOptions` (absent: none, or derived from other options). */
  default?: unknown;
  /** Turns a flag's text into the value (default: the text itself; boolean flags give true). */
  parse?: (text: string) => unknown;
  /** Validates and normalises a value from any source. */
  check?: Check;
}

const wholeNumber = (min: number): Check => (v, name) => {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw new GraftError(`${name} must be a whole number >= ${min}; received ${JSON.stringify(v)}.`);
  return n;
};
const number = (range: { min?: number; max?: number }): Check => (v, name) => finiteNumber(name, v, range);
const choice = (valid: readonly string[]): Check => (v, name) => oneOf(name, v, valid);
const flag: Check = (v, name) => {
  if (typeof v !== 'boolean') throw new GraftError(`${name} must be true or false; received ${JSON.stringify(v)}.`);
  return v;
};
const text: Check = (v, name) => {
  if (typeof v !== 'string' || !v) throw new GraftError(`${name} must be a non-empty string; received ${JSON.stringify(v)}.`);
  return v;
};

/** Parses `name=value,name=value` into numbers by name. */
export function parseNamedNumbers(flagName: string, value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, v] = part.split('=');
    const n = Number(v);
    if (!name || v === undefined || !Number.isFinite(n)) throw new GraftError(`${flagName} takes name=number pairs like block5=1e-4,head=1e-3; received ${JSON.stringify(value)}.`);
    out[name.trim()] = n;
  }
  return out;
}

/** `auto`, a comma list of numbers, or name=weight pairs. */
function parseClassWeights(value: string): unknown {
  if (value === 'auto') return 'auto';
  if (value.includes('=')) return parseNamedNumbers('--class-weights', value);
  const list = value.split(',').map(Number);
  if (list.some((n) => !Number.isFinite(n))) throw new GraftError(`--class-weights takes auto, numbers like 1,2,1 or name=weight pairs; received ${JSON.stringify(value)}.`);
  return list;
}

const namedNumbers: Check = (v, name) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((n) => typeof n !== 'number' || !Number.isFinite(n))) {
    throw new GraftError(`${name} must map group names to numbers, like block5=1e-4,head=1e-3; received ${JSON.stringify(v)}.`);
  }
  return v;
};

/** Every option of `train()`, in the order `graft train --help` lists them. */
export const TRAIN_OPTIONS: readonly TrainOptionSpec[] = [
  { key: 'data', flag: '--data <path>', help: 'images: a class-per-folder directory, a CSV manifest (path,label) or IDX files' },
  { key: 'val', flag: '--val <path>', help: 'validation images, same kinds as --data (default: hold out --val-split of --data)' },
  { key: 'valSplit', flag: '--val-split <fraction>', help: 'fraction of each class held out for validation when --val is absent; 0 for none', default: 0.2, check: number({ min: 0, max: 0.99 }) },
  { key: 'arch', flag: '--arch <name>', help: 'trunk architecture (`graft models` lists them); not needed when --weights is a graft model folder', check: text },
  { key: 'weights', flag: '--weights <w>', help: 'imagenet, a Keras .h5 file or URL, a graft model folder (its trunk), or none to train from scratch', default: null, parse: (t) => (t === 'none' ? null : t) },
  { key: 'inputSize', flag: '--input-size <n>', help: 'square input size in pixels (default: the architecture\'s; channels come from the architecture)', check: wholeNumber(1) },
  { key: 'inputShape', help: 'full input shape [h, w, c] (overrides inputSize)' },
  { key: 'head', help: 'the new head: { pooling, hidden, dropout, activation, outputActivation }' },
  { key: 'simpleCnn', help: 'simple_cnn configuration' },
  { key: 'out', flag: '--out <folder>', help: 'model folder to write', check: text },
  { key: 'epochs', flag: '--epochs <n>', help: 'epochs of each unfrozen stage (from scratch: of the only stage)', default: 3, check: wholeNumber(0) },
  { key: 'headEpochs', flag: '--head-epochs <n>', help: 'epochs on the head with the trunk frozen first; 0 to skip', default: 1, check: wholeNumber(0) },
  {
    key: 'unfreeze',
    flag: '--unfreeze <all|K>',
    help: 'after the head stage unfreeze every group, or the top K trunk groups',
    default: 'all',
    check: (v, name) => (v === 'all' ? v : wholeNumber(0)(v, `${name} (all or a number of trunk groups)`)),
  },
  { key: 'gradual', flag: '--gradual', help: 'unfreeze one more group per stage up to --unfreeze K', check: flag },
  { key: 'lr', flag: '--lr <rate>', help: 'head-stage learning rate; unfrozen stages use half', default: 1e-3, check: number({ min: 0 }) },
  { key: 'fineTuneLr', flag: '--fine-tune-lr <rate>', help: 'head rate of the unfrozen stages (default --lr / 2, as fastai)', check: number({ min: 0 }) },
  { key: 'lrMult', flag: '--lr-mult <x>', help: 'discriminative rates: the first unfrozen group trains x times slower than the head', default: 10, check: number({ min: 1 }) },
  { key: 'groupLr', flag: '--group-lr <name=rate,...>', help: 'explicit learning rate per group for the unfrozen stages', parse: (t) => parseNamedNumbers('--group-lr', t), check: namedNumbers },
  {
    key: 'optimizer',
    flag: '--optimizer <name>',
    help: `optimiser (${OPTIMIZERS.join('|')})`,
    default: 'adam',
    check: (v, name) => (typeof v === 'string' ? oneOf(name, v, OPTIMIZERS) : optimizerConfig(v as Parameters<typeof optimizerConfig>[0])),
  },
  { key: 'momentum', flag: '--momentum <m>', help: 'momentum for sgd and rmsprop', check: number({ min: 0, max: 1 }) },
  { key: 'nesterov', flag: '--nesterov', help: 'Nesterov momentum (sgd)', check: flag },
  { key: 'weightDecay', flag: '--weight-decay <wd>', help: 'weight decay (decoupled for adamw)', check: number({ min: 0 }) },
  { key: 'schedule', flag: '--schedule <name>', help: `learning-rate schedule (${SCHEDULES.join('|')})`, default: 'one-cycle', check: (v) => (scheduleConfig(v as string), v) },
  { key: 'warmup', flag: '--warmup <fraction>', help: 'linear warm-up over this fraction of each stage', check: number({ min: 0, max: 1 }) },
  { key: 'augment', flag: '--aug <preset|json>', help: 'augmentation preset, inline JSON pipeline or a JSON file', default: null, check: (v) => (parseAugmentation(v as string), v) },
  { key: 'batchSize', flag: '--batch-size <n>', help: 'images per batch', default: 32, check: wholeNumber(1) },
  { key: 'seed', flag: '--seed <n>', help: 'seed of the split, shuffles, augmentation, dropout and head initialisation', default: 0, check: wholeNumber(0) },
  { key: 'labelSmoothing', flag: '--label-smoothing <eps>', help: 'label smoothing', default: 0, check: number({ min: 0, max: 0.99 }) },
  { key: 'classWeights', flag: '--class-weights <auto|list|name=w,...>', help: 'weight classes (auto: balanced, as scikit-learn)', parse: parseClassWeights },
  { key: 'clipNorm', flag: '--clip-norm <n>', help: 'clip gradients to this global norm', check: number({ min: 0 }) },
  { key: 'earlyStopping', flag: '--early-stopping <patience>', help: 'stop a stage after this many epochs without improvement and keep its best weights', check: wholeNumber(1) },
  { key: 'reduceOnPlateau', flag: '--reduce-on-plateau <patience>', help: 'divide the rates by 10 after this many epochs without improvement', check: wholeNumber(1) },
  { key: 'monitor', flag: '--monitor <name>', help: `quantity watched by early stopping, plateau and --save-best (${MONITORS.join('|')}; default val_loss with validation, else loss)`, check: choice(MONITORS) },
  { key: 'saveBest', flag: '--save-best', help: 'write the model folder whenever the monitored value improves', check: flag },
  { key: 'trainBn', flag: '--train-bn', help: 'keep BatchNormalization layers training while the trunk is frozen (fastai default)', check: flag },
  { key: 'resume', flag: '--resume', help: 'continue from <out>/checkpoint (after Ctrl-C or a crash)', check: flag },
  { key: 'featureCache', flag: '--feature-cache <mode>', help: 'cache frozen-trunk features: memory, disk or off', default: 'memory', check: choice(['memory', 'disk', 'off']) },
  { key: 'prefixEngine', flag: '--prefix-engine <name>', help: `what runs the frozen trunk (${ENGINE_CHOICES.join('|')})`, default: 'auto', check: choice(ENGINE_CHOICES) },
  { key: 'trainEngine', flag: '--train-engine <name>', help: `what runs the training steps (${TRAIN_ENGINE_CHOICES.join('|')}): auto compiles each step into one onnxruntime graph when every trainable layer is supported`, default: 'auto', check: choice(TRAIN_ENGINE_CHOICES) },
  { key: 'workers', flag: '--workers <n>', help: 'worker threads per training step, each with its own copy of the model and a slice of every batch (wasm already computes on every core in this process)', default: 1, check: wholeNumber(1) },
  { key: 'stages', help: 'explicit stages (replaces headEpochs / epochs / unfreeze / gradual)' },
  { key: 'progress', help: 'progress display', default: 'auto', check: choice(PROGRESS_MODES) },
];

/** Keys a `--config` JSON file may set (everything but the programmatic hooks). */
export const TRAIN_CONFIG_KEYS: readonly string[] = TRAIN_OPTIONS.map((o) => o.key);
/** The `train()` options lr-find uses (model, data and optimiser); a train config file's other keys are ignored. */
export const LR_FIND_TRAIN_KEYS = [
  'data', 'arch', 'weights', 'inputSize', 'inputShape', 'head', 'simpleCnn', 'batchSize', 'seed', 'optimizer', 'momentum', 'nesterov',
  'weightDecay', 'augment', 'labelSmoothing', 'classWeights', 'trainBn', 'featureCache', 'prefixEngine', 'trainEngine', 'progress',
] as const;
/** Keys the API takes besides the config keys. */
const HOOK_KEYS = ['callbacks', 'signal', 'log'];

/** Options with every table default filled in where the value is absent (no checks). */
export function withTrainDefaults<T extends object>(o: T): T {
  const out = { ...o } as Record<string, unknown>;
  for (const spec of TRAIN_OPTIONS) if (out[spec.key] === undefined && spec.default !== undefined) out[spec.key] = spec.default;
  return out as T;
}

/** The flag that sets training option `key` (`--batch-size`), or the key itself when no flag does. */
export function flagFor(key: string): string {
  const spec = TRAIN_OPTIONS.find((o) => o.key === key);
  return spec ? optionName(spec, 'flags') : key;
}

/** The option's flag name without its argument (`--batch-size`), or the key when it has no flag. */
export function optionName(spec: TrainOptionSpec, names: 'flags' | 'keys'): string {
  return names === 'flags' && spec.flag ? spec.flag.split(' ')[0] : spec.key;
}

/**
 * Checks every option against the table, fills in defaults, and returns a new object; unknown keys are errors.
 * With `names: 'flags'` errors name the command-line flag (`--batch-size`), else the API key (`batchSize`).
 */
export function checkTrainOptions<T extends object>(raw: T, options: { names?: 'flags' | 'keys'; keys?: readonly string[] } = {}): T {
  const names = options.names ?? 'keys';
  const keys = options.keys ?? TRAIN_CONFIG_KEYS;
  rejectUnknownKeys('train', raw, [...keys, ...HOOK_KEYS]);
  const out = { ...raw } as Record<string, unknown>;
  for (const spec of TRAIN_OPTIONS) {
    if (!keys.includes(spec.key)) continue;
    if (out[spec.key] === undefined) {
      if (spec.default !== undefined) out[spec.key] = spec.default;
      continue;
    }
    if (spec.check && out[spec.key] !== null) out[spec.key] = spec.check(out[spec.key], optionName(spec, names));
  }
  return out as T;
}
