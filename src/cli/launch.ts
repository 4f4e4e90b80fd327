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
import { WHOLE_PROCESS_WORKER } from '../backend/compute-threads';

/** Young generation of the features worker, MiB: V8 gives a third to each semi-space. */
export const FEATURES_YOUNG_GENERATION_MB = 6;

/** What the main thread hands the worker. */
interface LaunchData {
  /** The worker runs the command for the whole process and owns its cores (tfjs's threaded wasm build may start). */
  [WHOLE_PROCESS_WORKER]: true;
  argv: string[];
  /** The main thread's stderr is a terminal this wide (a worker's own stderr is a pipe to it). */
  terminal: { columns: number } | null;
}

/** The status of a process that a closed pipe stopped (128 + SIGPIPE), which `set -o pipefail` scripts see. */
export const CLOSED_PIPE_STATUS = 141;

/**
 * A reader that stops early closes the pipe under the next write. On stdout (`graft features ... | head`) graft ends
 * at once and quietly with status 141, as a Unix tool stopped by SIGPIPE does, instead of an unhandled EPIPE and
 * its stack trace. On stderr (progress piped on its own to a reader that quit) only the messages stop: the work goes
 * on to its end and its files. Any other stream error stays an error.
 */
function handleClosedPipes(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(CLOSED_PIPE_STATUS);
    throw err;
  });
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.stderr.write = () => true;
  });
}

/** What the features worker's own failure (one `main` could not catch) tells the user; `argv` is the command's. */
export function workerError(err: Error & { code?: string }, argv: readonly string[]): Error {
  if (err.code !== 'ERR_WORKER_OUT_OF_MEMORY') return err;
  const { GraftError } = require('../errors') as typeof import('../errors');
  const streaming = argv.some((a) => a === '--out' || a.startsWith('--out='));
  return new GraftError(
    streaming
      ? 'graft features ran out of memory although --out streams its rows; run it with --verbose and report it, or split the images with --shard i/n.'
      : 'graft features ran out of memory keeping every row for stdout; pass --out <file> (.npy, .csv or .jsonl) so that rows go to disk as they are computed.',
    { cause: err },
  );
}

/** Runs the CLI for `argv` (node, script, ...args) and returns its exit code. */
export async function launch(argv: string[]): Promise<number> {
  handleClosedPipes();
  if (requestedCommand(argv) !== 'features') return (await import('./main')).main(argv);
  const data: LaunchData = { [WHOLE_PROCESS_WORKER]: true, argv, terminal: process.stderr.isTTY ? { columns: process.stderr.columns } : null };
  return new Promise<number>((resolve) => {
    let code: number | undefined;
    const worker = new Worker(__filename, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: FEATURES_YOUNG_GENERATION_MB } });
    worker.on('message', (c: number) => (code = c));
    worker.on('error', (err: Error & { code?: string }) => {
      // Only what escapes `main` (which reports every error it sees) lands here, e.g. the worker running out of memory.
      code = (require('./common') as typeof import('./common')).reportError(workerError(err, argv), argv.includes('--verbose'));
    });
    // No code posted: the worker ended some other way (process.exit inside it, a crash); its own status stands.
    worker.on('exit', (status) => resolve(code ?? (status || 1)));
  });
}

if (!isMainThread && (workerData as LaunchData | undefined)?.[WHOLE_PROCESS_WORKER]) {
  const { argv, terminal } = workerData as LaunchData;
  // Progress bars check their stream: the worker's stderr ends on the main thread's terminal.
  if (terminal) Object.assign(process.stderr, { isTTY: true, columns: terminal.columns });
  void (require('./main') as typeof import('./main')).main(argv).then((code) => parentPort!.postMessage(code));
}
