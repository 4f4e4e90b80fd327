/**
 * The one table from API option names (camelCase, as in `train({...})`, `--config` files and `evaluate({...})`) to
 * the command-line flags that set them, so the CLI can word every error with the flag the user typed.
 */

/** API option -> flag, for every option a command-line flag sets. */
export const FLAG_FOR_OPTION: Readonly<Record<string, string>> = {
  data: '--data',
  val: '--val',
  valSplit: '--val-split',
  validationFraction: '--val-split',
  arch: '--arch',
  weights: '--weights',
  inputSize: '--input-size',
  out: '--out',
  epochs: '--epochs',
  headEpochs: '--head-epochs',
  unfreeze: '--unfreeze',
  gradual: '--gradual',
  lr: '--lr',
  fineTuneLr: '--fine-tune-lr',
  lrMult: '--lr-mult',
  groupLr: '--group-lr',
  optimizer: '--optimizer',
  momentum: '--momentum',
  nesterov: '--nesterov',
  weightDecay: '--weight-decay',
  schedule: '--schedule',
  warmup: '--warmup',
  augment: '--aug',
  batchSize: '--batch-size',
  seed: '--seed',
  labelSmoothing: '--label-smoothing',
  classWeights: '--class-weights',
  clipNorm: '--clip-norm',
  earlyStopping: '--early-stopping',
  reduceOnPlateau: '--reduce-on-plateau',
  monitor: '--monitor',
  saveBest: '--save-best',
  trainBn: '--train-bn',
  resume: '--resume',
  featureCache: '--feature-cache',
  prefixEngine: '--prefix-engine',
  workers: '--workers',
  topK: '--top-k',
  shard: '--shard',
  engine: '--engine',
  zeroDivision: '--zero-division',
  positiveLabel: '--positive-label',
  threshold: '--threshold',
  mistakes: '--mistakes',
  verify: '--verify',
  pooling: '--pooling',
  startLr: '--start-lr',
  endLr: '--end-lr',
  steps: '--steps',
  stage: '--stage',
  perClass: '--per-class',
  classes: '--classes',
  split: '--split',
  tile: '--tile',
  variants: '--variants',
  n: '--n',
  threads: '--threads',
};

/** The flag that sets API option `option` (the option itself when no flag does). */
export function flagFor(option: string): string {
  return FLAG_FOR_OPTION[option] ?? option;
}

/**
 * An error message as the command line should print it: a message that starts with an API option name
 * ("batchSize must be ...", "zeroDivision must be one of ...") starts with its flag instead.
 */
export function withFlagNames(message: string): string {
  const m = /^([a-z][A-Za-z]*)(?= (must|has|is|needs|takes|cannot|should) )/.exec(message);
  return m && FLAG_FOR_OPTION[m[1]] ? FLAG_FOR_OPTION[m[1]] + message.slice(m[1].length) : message;
}
