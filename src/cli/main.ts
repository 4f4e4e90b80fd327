import { Command, CommanderError } from 'commander';
import { GRAFT_VERSION } from '../version';
import { addGlobalOptions, reportError } from './common';
import { COMMAND_TABLE } from './commands';

/** Global options that take a value, so the subcommand can be found after them in argv. */
const VALUE_OPTIONS = ['--backend', '--threads'];

/** The subcommand named in `argv` (node, script, ...args), if it is one graft has. */
function requestedCommand(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    if (VALUE_OPTIONS.includes(arg)) i++;
    else if (!arg.startsWith('-')) return COMMAND_TABLE.some(([name]) => name === arg) ? arg : undefined;
  }
  return undefined;
}

/**
 * Builds the `graft` program: with `argv`, only the subcommand it names (the others' modules are never loaded);
 * without, or when it names none (help, a typo), every subcommand.
 */
export function buildProgram(argv?: readonly string[]): Command {
  const program = addGlobalOptions(
    new Command('graft')
      .description('Transfer learning for TensorFlow.js in Node: pretrained trunks, new heads, augmentation, fine-tuning and reports.')
      .version(GRAFT_VERSION, '-V, --version'),
  );
  program.showHelpAfterError('(run the command with --help for its options)');
  const only = argv ? requestedCommand(argv) : undefined;
  // `graft --version` needs no subcommand at all.
  const versionOnly = !only && argv !== undefined && argv.slice(2).some((a) => a === '-V' || a === '--version');
  if (!versionOnly) for (const [name, load] of COMMAND_TABLE) if (!only || name === only) program.addCommand(load());
  // Commander's own errors (unknown option, missing argument) go through the same exit path as ours.
  const exitOverride = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}

/** The CLI entry: runs argv and returns the exit code (the only place graft decides one). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(argv);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    return reportError(err, argv.includes('--verbose'));
  }
}
