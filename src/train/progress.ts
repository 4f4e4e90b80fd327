/**
 * What a person watching training sees: on a terminal, a bar per epoch with loss, accuracy, images/s and ETA
 * (cli-progress); elsewhere (CI, pipes, log files) one plain line per epoch; nothing with `none`.
 */
import { SingleBar } from 'cli-progress';
import { oneOf } from '../errors';
import { BatchInfo, EpochLog, FitCallbacks } from './loop';

/** Progress display modes. */
export const PROGRESS_MODES = ['auto', 'bar', 'lines', 'none'] as const;
/** A progress display mode (`auto`: bar on a TTY, lines otherwise). */
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** Options for `progressCallbacks`. */
export interface ProgressOptions {
  /** Display mode (default auto). */
  mode?: ProgressMode | string;
  /** Where to write (default stderr). */
  stream?: NodeJS.WriteStream;
  /** `lines` mode: also a progress line within an epoch whenever this many seconds passed since the last line (default 10). */
  lineSeconds?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

const fmt = (x: number | undefined, digits = 4) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));

/** One line summarising an epoch (also used by the bar when it stops). */
export function formatEpochLine(log: EpochLog): string {
  const parts = [`epoch ${log.epoch}${log.stage ? ` (${log.stage})` : ''}`, `loss ${fmt(log.loss)}`, `acc ${fmt(log.accuracy)}`];
  if (log.val_loss !== undefined) parts.push(`val_loss ${fmt(log.val_loss)}`, `val_acc ${fmt(log.val_accuracy)}`, `val_f1 ${fmt(log.val_f1)}`);
  const rates = Object.entries(log.lr).map(([g, r]) => `${g}=${r.toExponential(1)}`);
  parts.push(`lr ${rates.join(',')}`, `${log.imagesPerSecond.toFixed(0)} img/s`, `${log.seconds.toFixed(1)}s`);
  return parts.join('  ');
}

/** One line on progress within an epoch (logs have no bar to watch). */
export function formatBatchLine(info: BatchInfo): string {
  return `epoch ${info.epoch}  batch ${info.batch}/${info.steps}  loss ${fmt(info.loss)}  acc ${fmt(info.accuracy)}  ${info.imagesPerSecond.toFixed(0)} img/s`;
}

/**
 * Plain lines for logs: one per epoch, and one within the epoch whenever `intervalMs` passed since the last line,
 * so a log never goes quiet for long (a resnet50 epoch can take minutes).
 */
function lineCallbacks(stream: NodeJS.WriteStream, intervalMs: number, now: () => number): FitCallbacks {
  let last = now();
  return {
    onEpochBegin() {
      last = now();
    },
    onBatchEnd(info: BatchInfo) {
      if (info.batch >= info.steps || now() - last < intervalMs) return;
      last = now();
      stream.write(`${formatBatchLine(info)}\n`);
    },
    onEpochEnd(log: EpochLog) {
      last = now();
      stream.write(`${formatEpochLine(log)}\n`);
    },
  };
}

/** Loop callbacks that draw progress. */
export function progressCallbacks(options: ProgressOptions = {}): FitCallbacks {
  const stream = options.stream ?? process.stderr;
  const requested = oneOf('progress', options.mode ?? 'auto', PROGRESS_MODES);
  const mode = requested === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : requested;
  if (mode === 'none') return {};
  if (mode === 'lines') return lineCallbacks(stream, (options.lineSeconds ?? 10) * 1000, options.now ?? Date.now);
  let bar: SingleBar | undefined;
  return {
    onEpochBegin(epoch: number, steps: number) {
      bar = new SingleBar({
        stream,
        format: `epoch ${epoch} [{bar}] {value}/{total} loss {loss} acc {acc} {ips} img/s eta {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
      });
      bar.start(steps, 0, { loss: '-', acc: '-', ips: '-' });
    },
    onBatchEnd(info: BatchInfo) {
      bar?.update(info.batch, { loss: fmt(info.loss), acc: fmt(info.accuracy), ips: info.imagesPerSecond.toFixed(0) });
    },
    onEpochEnd(log: EpochLog) {
      bar?.stop();
      bar = undefined;
      stream.write(`${formatEpochLine(log)}\n`);
    },
  };
}
