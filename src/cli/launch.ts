/**
 * What `bin/graft` runs. Every command runs `main` on the main thread except `graft features`, which runs it in a
 * worker thread whose young generation is capped (FEATURES_YOUNG_GENERATION_MB). A features run streams a million
 * images through small, short-lived objects; on the main thread V8 keeps growing its young generation as the run
 * goes on (to 2 x 16 MiB semi-spaces, plus the unreclaimed buffers they hold), so the peak RSS over 20,000 images was
 * 1.2-1.35x that over 2,000 although nothing is kept per image. A worker's heap limits are fixed when it starts (a V8
 * flag set from inside the process is not), and the cap costs the run no time. The main thread only waits, so
 * signals keep their default effect: Ctrl-C stops the run and the rows written so far stay in `--out`'s `.partial`.
 * It loads no native addon either: sharp, onnxruntime-node and tfjs-node are each loaded by one thread only (the
 * worker), since some addons fail to load on a second thread of the same process (tensorflow/tfjs#8388).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { requestedCommand } from './commands';

/** Young generation of the features worker, MiB: V8 gives a third to each semi-space. */
export const FEATURES_YOUNG_GENERATION_MB = 6;

/** What the main thread hands the worker. */
interface LaunchData {
  graftLaunch: true;
  argv: string[];
  /** The main thread's stderr is a terminal this wide (a worker's own stderr is a pipe to it). */
  terminal: { columns: number } | null;
}

/**
 * A reader that stops early (`graft features ... | head`) closes the pipe under the next write: end quietly with
 * status 0, as Unix tools do, instead of an unhandled EPIPE and its stack trace. Anything else stays an error.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

/** What the features worker's own failure (one `main` could not catch) tells the user. */
export function workerError(err: Error & { code?: string }): Error {
  if (err.code !== 'ERR_WORKER_OUT_OF_MEMORY') return err;
  const { GraftError } = require('../errors') as typeof import('../errors');
  return new GraftError('graft features ran out of memory; pass --out <file> (.npy, .csv or .jsonl) so that rows go to disk as they are computed instead of being kept for stdout.', { cause: err });
}

/** Runs the CLI for `argv` (node, script, ...args) and returns its exit code. */
export async function launch(argv: string[]): Promise<number> {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  if (requestedCommand(argv) !== 'features') return (await import('./main')).main(argv);
  const data: LaunchData = { graftLaunch: true, argv, terminal: process.stderr.isTTY ? { columns: process.stderr.columns } : null };
  return new Promise<number>((resolve) => {
    let code = 1;
    const worker = new Worker(__filename, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: FEATURES_YOUNG_GENERATION_MB } });
    worker.on('message', (c: number) => (code = c));
    worker.on('error', (err: Error & { code?: string }) => {
      // Only what escapes `main` (which reports every error it sees) lands here, e.g. the worker running out of memory.
      code = (require('./common') as typeof import('./common')).reportError(workerError(err), argv.includes('--verbose'));
    });
    worker.on('exit', () => resolve(code));
  });
}

if (!isMainThread && (workerData as LaunchData | undefined)?.graftLaunch) {
  const { argv, terminal } = workerData as LaunchData;
  // Progress bars check their stream: the worker's stderr ends on the main thread's terminal.
  if (terminal) Object.assign(process.stderr, { isTTY: true, columns: terminal.columns });
  void (require('./main') as typeof import('./main')).main(argv).then((code) => parentPort!.postMessage(code));
}
