import { Command } from 'commander';

/**
 * Every graft subcommand, in the order `graft --help` lists them, each loaded only when it is built: a command's
 * file loads the libraries it needs (tfjs, onnxruntime, sharp, h5wasm), and `graft features` on a cached model
 * should not pay for what `graft train` needs. Each command file parses and validates its options, then calls the
 * same library function the API exports.
 */
export const COMMAND_TABLE: ReadonlyArray<readonly [name: string, load: () => Command]> = [
  ['demo', () => require('./demo').demoCommand()],
  ['doctor', () => require('./doctor').doctorCommand()],
  ['dataset', () => require('./dataset').datasetCommand()],
  ['models', () => require('./models').modelsCommand()],
  ['summary', () => require('./summary').summaryCommand()],
  ['import-keras', () => require('./import-keras').importKerasCommand()],
  ['features', () => require('./features').featuresCommand()],
  ['augment', () => require('./augment').augmentCommand()],
  ['train', () => require('./train').trainCommand()],
  ['lr-find', () => require('./lr-find').lrFindCommand()],
  ['export', () => require('./export').exportCommand()],
  ['serve', () => require('./serve').serveCommand()],
  ['evaluate', () => require('./evaluate').evaluateCommand()],
  ['predict', () => require('./predict').predictCommand()],
  ['report', () => require('./report').reportCommand()],
];

/** Builders of every subcommand, in `--help` order. */
export const COMMANDS: Array<() => Command> = COMMAND_TABLE.map(([, load]) => load);

/** Global options that take a value, so the subcommand can be found after them in argv. */
const VALUE_OPTIONS = ['--backend', '--threads'];

/** The subcommand named in `argv` (node, script, ...args), if it is one graft has. Loads no command. */
export function requestedCommand(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    if (VALUE_OPTIONS.includes(arg)) i++;
    else if (!arg.startsWith('-')) return COMMAND_TABLE.some(([name]) => name === arg) ? arg : undefined;
  }
  return undefined;
}
