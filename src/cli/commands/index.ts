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
