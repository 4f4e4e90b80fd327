import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { GraftError, rejectUnknownKeys } from '../../errors';
import { train } from '../../engine/training';
import { TrainOptions, resolveTrainOptions } from '../../train/fine-tune';
import { TRAIN_CONFIG_KEYS, TRAIN_OPTIONS, TrainOptionSpec } from '../../train/options';
import { globals, useBackend } from '../common';
import { checkModelOut } from '../output-paths';
import { lastCheckpointNote, runStoppable, signalExitCode } from '../signals';

export { parseNamedNumbers } from '../../train/options';

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

/** The commander option of a table entry (its help line ends with the default). */
function commanderOption(spec: TrainOptionSpec): Option {
  const shown = spec.default === undefined ? '' : ` (default ${spec.default === null ? 'none' : String(spec.default)})`;
  return new Option(spec.flag!, spec.help + shown);
}

/** Adds the flags of the given table entries to a command. */
export function addTrainFlags(cmd: Command, keys: readonly string[]): Command {
  for (const spec of TRAIN_OPTIONS) if (spec.flag && keys.includes(spec.key)) cmd.addOption(commanderOption(spec));
  return cmd;
}

/**
 * Turns commander's values into train options: the `--config` file first, then every flag given on top, each flag's
 * text parsed by its table entry. Nothing is checked here; `resolveTrainOptions` checks it all, naming flags.
 */
export function trainOptionsFromCli(opts: Record<string, unknown>, keys: readonly string[] = TRAIN_CONFIG_KEYS): TrainOptions {
  const fromFile = typeof opts.config === 'string' ? readTrainConfig(opts.config) : {};
  const given: Record<string, unknown> = {};
  for (const spec of TRAIN_OPTIONS) {
    if (!spec.flag || !keys.includes(spec.key)) continue;
    const value = opts[new Option(spec.flag).attributeName()];
    if (value === undefined) continue;
    given[spec.key] = typeof value === 'string' && spec.parse ? spec.parse(value) : value;
  }
  const merged: Record<string, unknown> = { ...fromFile, ...given };
  for (const key of Object.keys(merged)) if (!keys.includes(key)) delete merged[key];
  return merged as unknown as TrainOptions;
}

/** `graft train`: fine-tune a pretrained trunk with a new head (or train from scratch) and write a model folder. */
export function trainCommand(): Command {
  const cmd = new Command('train')
    .description('train a classifier: head on a frozen trunk, then unfreeze with discriminative rates (or from scratch with --weights none)')
    .option('--config <file>', 'JSON file of train options (same names as the API, camelCase); flags override it')
    .option('--force', 'write --out even when it holds a model graft did not write, or lies inside --data');
  return addTrainFlags(cmd, TRAIN_CONFIG_KEYS).action(async (opts: Record<string, unknown>, command: Command) => {
    const quiet = Boolean(globals(command).quiet);
    // Every flag and the output folder are checked before the backend starts or any data is read.
    const options = resolveTrainOptions({ ...trainOptionsFromCli(opts), ...(quiet ? { progress: 'none' as const } : {}) }, { names: 'flags' });
    checkModelOut('--out', options.out, { data: [options.data as string, options.val as string], force: Boolean(opts.force) });
    await useBackend(command);
    const { result, stoppedBy } = await runStoppable((signal) => train({ ...options, signal }), {
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
