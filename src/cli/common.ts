/**
 * What every command shares: the global options, the backend set-up, and the one place that turns an error into
 * a message and an exit code.
 */
import { Command, Option } from 'commander';
import { GraftError, positiveInt } from '../errors';
import { BACKEND_CHOICES } from '../backend/choices';
import type { BackendInfo } from '../backend';
import { withFlagNames } from './flag-names';

/** Options every command accepts (declared once on the program, usable before or after the subcommand). */
export interface GlobalOptions {
  /** Backend request. */
  backend?: string;
  /** Print stack traces. */
  verbose?: boolean;
  /** Less output. */
  quiet?: boolean;
  /** Cores to compute on. */
  threads?: string;
}

/** Adds the global options to the root program. */
export function addGlobalOptions(program: Command): Command {
  return program
    .addOption(
      new Option('--backend <name>', `tfjs backend (${BACKEND_CHOICES.join('|')}); default $GRAFT_BACKEND or auto`).choices(
        BACKEND_CHOICES as unknown as string[],
      ),
    )
    .option('--threads <n>', 'cores to compute on: wasm threads in this process, onnxruntime threads (default $GRAFT_THREADS or every core)')
    .option('--verbose', 'print stack traces and more detail')
    .option('-q, --quiet', 'print only results and errors');
}

/** The global options as seen from a subcommand. */
export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

/** The global `--threads`, checked (undefined: not given, so `GRAFT_THREADS` or every core). */
export function globalThreads(cmd: Command): number | undefined {
  const { threads } = globals(cmd);
  return threads === undefined ? undefined : positiveInt('--threads', threads);
}

/** Activates the backend the user asked for (`--backend`, `GRAFT_BACKEND`, or auto) on `--threads` cores. */
export async function useBackend(cmd: Command): Promise<BackendInfo> {
  const g = globals(cmd);
  // Loaded here, not at the top: commands that run on onnxruntime alone never start tfjs.
  const { initBackend } = await import('../backend');
  return initBackend({ backend: g.backend, threads: globalThreads(cmd), log: g.quiet ? null : undefined });
}

/** Prints an error the way every command does: one line, the stack only with --verbose. Returns the exit code. */
export function reportError(err: unknown, verbose: boolean): number {
  if (err instanceof GraftError) {
    process.stderr.write(`graft: ${withFlagNames(err.message)}\n`);
    if (verbose && err.cause) process.stderr.write(`${(err.cause as Error)?.stack ?? err.cause}\n`);
    return err.exitCode;
  }
  const e = err as Error & { code?: string; syscall?: string };
  // A failed system call (a missing file, a read-only disk, a file where a folder should be) is the environment's
  // doing, not a bug: Node's message already names the call and the path.
  if (typeof e?.code === 'string' && (e.syscall || /^E[A-Z]+$/.test(e.code))) {
    process.stderr.write(`graft: ${e.message}\n`);
    if (verbose) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
  const first = String(e?.message ?? e).split('\n')[0];
  process.stderr.write(`graft: unexpected error: ${first} (run again with --verbose for the stack trace, and please report it)\n`);
  if (verbose) process.stderr.write(`${e?.stack ?? e}\n`);
  return 1;
}

/** Parses `--x 1,2,3`-style lists. */
export function parseList(value: string, previous: string[] = []): string[] {
  return previous.concat(value.split(',').map((s) => s.trim()).filter(Boolean));
}
