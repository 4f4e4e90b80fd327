/**
 * The one table from API option names (camelCase, as in `train({...})`, `--config` files and `evaluate({...})`) to
 * the command-line flags that set them, so the CLI can word every error with the flag the user typed.
 */
import { TRAIN_OPTIONS, optionName } from '../train/options';

/** API option -> flag, for every option a command-line flag sets: the training option table's, then the others. */
export const FLAG_FOR_OPTION: Readonly<Record<string, string>> = {
  ...Object.fromEntries(TRAIN_OPTIONS.filter((o) => o.flag).map((o) => [o.key, optionName(o, 'flags')])),
  validationFraction: '--val-split',
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

/**
 * An error message as the command line should print it: a message that starts with an API option name
 * ("batchSize must be ...", "zeroDivision must be one of ...") starts with its flag instead.
 */
export function withFlagNames(message: string): string {
  const m = /^([a-z][A-Za-z]*)(?= (must|has|is|needs|takes|cannot|should) )/.exec(message);
  return m && FLAG_FOR_OPTION[m[1]] ? FLAG_FOR_OPTION[m[1]] + message.slice(m[1].length) : message;
}
