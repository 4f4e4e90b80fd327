/**
 * Stop requests for long commands: SIGINT (Ctrl-C) and SIGTERM (what `timeout`, schedulers and Kubernetes send)
 * both ask the run to stop after the current batch and write a checkpoint, and are acknowledged as soon as the
 * process gets the signal; a second one stops at once, without a checkpoint, and says so. The exit code is the
 * shell's 128 + signal number (130 for SIGINT, 143 for SIGTERM), so job runners see how the run ended.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The signals that stop a run. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** One of `STOP_SIGNALS`. */
export type StopSignalName = (typeof STOP_SIGNALS)[number];

const SIGNAL_NUMBERS: Record<StopSignalName, number> = { SIGINT: 2, SIGTERM: 15 };

/** The exit code for a run stopped by `signal` (128 + its number, as shells report it). */
export function signalExitCode(signal: StopSignalName): number {
  return 128 + SIGNAL_NUMBERS[signal];
}

/** What a second signal leaves behind: the checkpoint an earlier epoch wrote into `<out>/checkpoint`, if any. */
export function lastCheckpointNote(out: unknown): string | undefined {
  if (typeof out !== 'string') return undefined;
  const dir = path.join(out, 'checkpoint');
  const state = path.join(dir, 'train-state.json');
  return fs.existsSync(state) ? `the checkpoint an earlier epoch wrote is still in ${dir} (--resume continues from it)` : 'no checkpoint was written';
}

/** Options of `runStoppable`. */
export interface StoppableOptions {
  /** No acknowledgement lines. */
  quiet?: boolean;
  /** What a second signal says is left on disk (e.g. the last epoch's checkpoint), if anything. */
  leftBehind?: () => string | undefined;
  /** Where the acknowledgements go (default stderr). */
  write?: (text: string) => void;
  /** What a second signal does once it has said so (default: exit the process with 128 + the signal number). */
  exit?: (code: number) => void;
}

/**
 * Runs `run` with SIGINT and SIGTERM turned into an abort request; returns the run's result and the signal that
 * stopped it (undefined when none came). The handlers are removed when the run ends.
 */
export async function runStoppable<T>(run: (signal: AbortSignal) => Promise<T>, options: StoppableOptions = {}): Promise<{ result: T; stoppedBy?: StopSignalName }> {
  const controller = new AbortController();
  const write = options.write ?? ((text: string) => void process.stderr.write(text));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stoppedBy: StopSignalName | undefined;
  const handlers = STOP_SIGNALS.map((name) => {
    const handler = () => {
      if (!stoppedBy) {
        stoppedBy = name;
        if (!options.quiet) write(`\ngraft: ${name} received: stopping after this batch and saving a checkpoint (send it again to stop at once, without one)\n`);
        controller.abort();
        return;
      }
      const left = options.leftBehind?.();
      write(`\ngraft: ${name} received again: stopping now without saving a checkpoint${left ? `; ${left}` : ''}\n`);
      exit(signalExitCode(stoppedBy));
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  try {
    const result = await run(controller.signal);
    return { result, stoppedBy };
  } finally {
    for (const [name, handler] of handlers) process.off(name, handler);
  }
}
