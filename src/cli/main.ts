import { Command, CommanderError } from 'commander';
import { GRAFT_VERSION } from '../version';
import { addGlobalOptions, reportError } from './common';
import { COMMANDS } from './commands';

/** Builds the `graft` program with every subcommand. */
export function buildProgram(): Command {
  const program = addGlobalOptions(
    new Command('graft')
      .description('Transfer learning for TensorFlow.js in Node: pretrained trunks, new heads, augmentation, fine-tuning and reports.')
      .version(GRAFT_VERSION, '-V, --version'),
  );
  program.showHelpAfterError('(run the command with --help for its options)');
  for (const make of COMMANDS) program.addCommand(make());
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
  // libvips' operation cache only pays when the same image is processed again with the same operations; graft's
  // commands see every image once, and the cache's bookkeeping costs about 0.2 ms per image. Speed only, never output.
  (require('sharp') as typeof import('sharp')).cache(false);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    return reportError(err, argv.includes('--verbose'));
  }
}
