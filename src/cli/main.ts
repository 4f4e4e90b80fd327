import { Command, CommanderError } from 'commander';
import { GRAFT_VERSION } from '../version';
import { addGlobalOptions, reportError } from './common';
import { COMMAND_TABLE, requestedCommand } from './commands';

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
