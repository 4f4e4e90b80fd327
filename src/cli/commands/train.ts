import * as fs from 'node:fs';
import { Command } from 'commander';
import { GraftError, rejectUnknownKeys } from '../../errors';
import { PREFIX_ENGINES } from '../../engine/prefix';
import { TRAIN_CONFIG_KEYS, TrainOptions, train } from '../../train/fine-tune';
import { MONITORS } from '../../train/loop';
import { OPTIMIZERS } from '../../train/optim';
import { SCHEDULES } from '../../train/schedule';
import { globals, useBackend } from '../common';
import { checkModelOut } from '../output-paths';
import { lastCheckpointNote, runStoppable, signalExitCode } from '../signals';

/** Raw commander values (strings; undefined when the flag was not given, so a config file's value stands). */
interface TrainCliOptions {
  config?: string;
  data?: string;
  val?: string;
  valSplit?: string;
  arch?: string;
  weights?: string;
  inputSize?: string;
  out?: string;
  epochs?: string;
  headEpochs?: string;
  unfreeze?: string;
  gradual?: boolean;
  lr?: string;
  fineTuneLr?: string;
  lrMult?: string;
  groupLr?: string;
  optimizer?: string;
  momentum?: string;
  nesterov?: boolean;
  weightDecay?: string;
  schedule?: string;
  warmup?: string;
  aug?: string;
  batchSize?: string;
  seed?: string;
  labelSmoothing?: string;
  classWeights?: string;
  clipNorm?: string;
  earlyStopping?: string;
  reduceOnPlateau?: string;
  monitor?: string;
  saveBest?: boolean;
  trainBn?: boolean;
  resume?: boolean;
  featureCache?: string;
  prefixEngine?: string;
  workers?: string;
  force?: boolean;
}

/** Parses `name=value,name=value` into numbers by name. */
export function parseNamedNumbers(flag: string, text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = part.split('=');
    const n = Number(value);
    if (!name || value === undefined || !Number.isFinite(n)) throw new GraftError(`${flag} takes name=number pairs like block5=1e-4,head=1e-3; received ${JSON.stringify(text)}.`);
    out[name.trim()] = n;
  }
  return out;
}

/** Reads a `--config` JSON file (unknown keys are errors). */
export function readTrainConfig(file: string): Partial<TrainOptions> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GraftError(`cannot read --config ${file}: ${(err as Error).message.split('\n')[0]}; pass a JSON object of train options.`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new GraftError(`--config ${file} must hold a JSON object of train options.`);
  rejectUnknownKeys(`--config ${file}`, raw, TRAIN_CONFIG_KEYS);
  return raw as Partial<TrainOptions>;
}

/** Turns the flags into train options: the config file first, then every flag given on top. */
export function trainOptionsFromCli(opts: TrainCliOptions): TrainOptions {
  const fromFile = opts.config ? readTrainConfig(opts.config) : {};
  const flags: Partial<Record<keyof TrainOptions, unknown>> = {
    data: opts.data,
    val: opts.val,
    valSplit: opts.valSplit,
    arch: opts.arch,
    weights: opts.weights === undefined ? undefined : opts.weights === 'none' ? null : opts.weights,
    inputSize: opts.inputSize,
    out: opts.out,
    epochs: opts.epochs,
    headEpochs: opts.headEpochs,
    unfreeze: opts.unfreeze,
    gradual: opts.gradual,
    lr: opts.lr,
    fineTuneLr: opts.fineTuneLr,
    lrMult: opts.lrMult,
    groupLr: opts.groupLr === undefined ? undefined : parseNamedNumbers('--group-lr', opts.groupLr),
    optimizer: opts.optimizer,
    momentum: opts.momentum === undefined ? undefined : Number(opts.momentum),
    nesterov: opts.nesterov,
    weightDecay: opts.weightDecay === undefined ? undefined : Number(opts.weightDecay),
    schedule: opts.schedule,
    warmup: opts.warmup,
    augment: opts.aug,
    batchSize: opts.batchSize,
    seed: opts.seed,
    labelSmoothing: opts.labelSmoothing,
    classWeights: opts.classWeights === undefined ? undefined : parseClassWeights(opts.classWeights),
    clipNorm: opts.clipNorm,
    earlyStopping: opts.earlyStopping,
    reduceOnPlateau: opts.reduceOnPlateau,
    monitor: opts.monitor,
    saveBest: opts.saveBest,
    trainBn: opts.trainBn,
    resume: opts.resume,
    featureCache: opts.featureCache,
    prefixEngine: opts.prefixEngine,
    workers: opts.workers,
  };
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return { ...fromFile, ...given } as TrainOptions;
}

/** `auto`, a comma list of numbers, or name=weight pairs. */
function parseClassWeights(text: string): TrainOptions['classWeights'] {
  if (text === 'auto') return 'auto';
  if (text.includes('=')) return parseNamedNumbers('--class-weights', text);
  const list = text.split(',').map(Number);
  if (list.some((n) => !Number.isFinite(n))) throw new GraftError(`--class-weights takes auto, numbers like 1,2,1 or name=weight pairs; received ${JSON.stringify(text)}.`);
  return list;
}

/** `graft train`: fine-tune a pretrained trunk with a new head (or train from scratch) and write a model folder. */
export function trainCommand(): Command {
  return new Command('train')
    .description('train a classifier: head on a frozen trunk, then unfreeze with discriminative rates (or from scratch with --weights none)')
    .option('--config <file>', 'JSON file of train options (same names as the API, camelCase); flags override it')
    .option('--data <path>', 'training images: class-per-folder directory, CSV manifest or IDX folder')
    .option('--val <path>', 'validation set (default: hold out --val-split of --data)')
    .option('--val-split <fraction>', 'fraction of each class held out for validation when --val is absent (default 0.2; 0 for none)')
    .option('--arch <name>', 'trunk architecture (graft models lists them)')
    .option('--weights <w>', 'imagenet, a Keras .h5 file, a graft model folder (reuse its trunk), or none (default: none = from scratch)')
    .option('--input-size <n>', 'square input size (default: the architecture\'s)')
    .option('--out <folder>', 'model folder to write')
    .option('--epochs <n>', 'epochs of each unfrozen stage (from scratch: of the only stage) (default 3)')
    .option('--head-epochs <n>', 'epochs on the head with the trunk frozen first (default 1; 0 to skip)')
    .option('--unfreeze <all|K>', 'after the head stage unfreeze every group or the top K trunk groups (default all)')
    .option('--gradual', 'unfreeze one more group per stage up to --unfreeze K')
    .option('--lr <rate>', 'head-stage learning rate; unfrozen stages use half (default 1e-3)')
    .option('--fine-tune-lr <rate>', 'head rate of the unfrozen stages (default --lr / 2, as fastai)')
    .option('--lr-mult <x>', 'discriminative rates: the first group trains x times slower than the head (default 10)')
    .option('--group-lr <name=rate,...>', 'explicit learning rate per group for the unfrozen stages')
    .option('--optimizer <name>', `optimiser (${OPTIMIZERS.join('|')}; default adam)`)
    .option('--momentum <m>', 'momentum for sgd / rmsprop')
    .option('--nesterov', 'Nesterov momentum (sgd)')
    .option('--weight-decay <wd>', 'weight decay (decoupled for adamw)')
    .option('--schedule <name>', `learning-rate schedule (${SCHEDULES.join('|')}; default one-cycle)`)
    .option('--warmup <fraction>', 'linear warm-up over this fraction of each stage')
    .option('--aug <preset|json>', 'augmentation preset or JSON pipeline (default none)')
    .option('--batch-size <n>', 'images per batch (default 32)')
    .option('--seed <n>', 'seed of the split, shuffles, augmentation and dropout (default 0)')
    .option('--label-smoothing <eps>', 'label smoothing (default 0)')
    .option('--class-weights <auto|list|name=w,...>', 'weight classes (auto: balanced, as scikit-learn)')
    .option('--clip-norm <n>', 'clip gradients to this global norm')
    .option('--early-stopping <patience>', 'stop a stage after this many epochs without improvement and keep its best weights')
    .option('--reduce-on-plateau <patience>', 'divide the rates by 10 after this many epochs without improvement')
    .option('--monitor <name>', `quantity watched by early stopping, plateau and --save-best (${MONITORS.join('|')})`)
    .option('--save-best', 'write the model folder whenever the monitored value improves')
    .option('--train-bn', 'keep BatchNormalization layers training while the trunk is frozen (fastai default)')
    .option('--resume', 'continue from <out>/checkpoint (after Ctrl-C or a crash)')
    .option('--force', 'write --out even when it holds a model graft did not write, or lies inside --data')
    .option('--feature-cache <mode>', 'cache frozen-trunk features: memory (default), disk or off')
    .option('--workers <n>', 'worker threads per training step, each with its own copy of the model and a slice of every batch (default 1; wasm already computes on every core in this process)')
    .option('--prefix-engine <name>', `engine for the frozen trunk (${PREFIX_ENGINES.join('|')}; default auto)`)
    .action(async (opts: TrainCliOptions, cmd: Command) => {
      const options = trainOptionsFromCli(opts);
      if (typeof options.out === 'string') checkModelOut('--out', options.out, { data: [options.data as string, options.val as string], force: opts.force });
      const quiet = Boolean(globals(cmd).quiet);
      await useBackend(cmd);
      const { result, stoppedBy } = await runStoppable((signal) => train({ ...options, signal, progress: quiet ? 'none' : options.progress }), {
        quiet,
        leftBehind: () => lastCheckpointNote(options.out),
      });
      if (result.stopReason === 'aborted') {
        const code = stoppedBy ? signalExitCode(stoppedBy) : 130;
        throw new GraftError(`stopped by ${stoppedBy ?? 'request'}: checkpoint saved in ${result.checkpoint}; run the same command with --resume to continue.`, { exitCode: code });
      }
      const m = result.metrics;
      const scores = m.val_accuracy === undefined ? 'no validation data' : `val_accuracy ${m.val_accuracy.toFixed(4)}, val_f1_macro ${m.val_f1_macro.toFixed(4)}, val_loss ${m.val_loss.toFixed(4)}`;
      process.stdout.write(`saved ${result.out}: ${scores} after ${result.history.length} epochs (${result.stages.map((s) => s.name).join(' -> ')})\n`);
    });
}
