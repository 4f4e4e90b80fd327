import { engineFlag, sharedFlag } from '../flags';
import { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { finiteNumber, positiveInt } from '../../errors';
import { tryLoadOnnxRuntime } from '../../engine/onnx-runtime';
import { evaluate, EvaluateProgress, reportPaths, ttaFromFlags } from '../../eval';
import { ZERO_DIVISION_CHOICES, zeroDivisionOption } from '../../metrics';
import { VERIFY_MODES } from '../../data/dataset';
import { globalThreads, globals, parseList, useBackend } from '../common';
import { FORMAT_HELP, emitReport, outputFormats } from '../report-output';

interface EvaluateCliOptions {
  model: string;
  data: string;
  batchSize?: string;
  tta?: boolean;
  ttaCrop?: boolean;
  topK?: string;
  shard?: string;
  out?: string;
  format?: string[];
  engine?: string;
  zeroDivision?: string;
  positiveLabel?: string;
  threshold?: string;
  mistakes?: string;
  verify?: string;
}

/** A progress display for evaluation: a bar on a terminal, a line every few seconds elsewhere. */
function progressDisplay(quiet: boolean): { update(p: EvaluateProgress): void; stop(): void } {
  if (quiet) return { update: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY) {
    let bar: SingleBar | undefined;
    return {
      update(p) {
        if (!bar) {
          bar = new SingleBar({ stream: process.stderr, format: 'evaluate [{bar}] {value}/{total} {ips} img/s eta {eta_formatted}', hideCursor: true, clearOnComplete: true });
          bar.start(p.total, 0, { ips: '-' });
        }
        bar.update(p.done, { ips: p.imagesPerSecond.toFixed(0) });
      },
      stop: () => bar?.stop(),
    };
  }
  let last = 0;
  return {
    update(p) {
      if (p.seconds - last < 5 && p.done < p.total) return;
      last = p.seconds;
      process.stderr.write(`evaluate ${p.done}/${p.total} images, ${p.imagesPerSecond.toFixed(1)} images/s\n`);
    },
    stop: () => undefined,
  };
}

/** `graft evaluate`: score a labelled dataset with a saved model and write the report. */
export function evaluateCommand(): Command {
  return new Command('evaluate')
    .description('score a saved model on a labelled dataset: scikit-learn-exact precision/recall/F1, confusion matrix, top-k, worst mistakes')
    .requiredOption('--model <folder>', 'model folder (with graft.json)')
    .addOption(sharedFlag('data', { required: true }))
    .addOption(sharedFlag('batchSize'))
    .option('--tta', 'test-time augmentation: average the scores of the image and its mirror')
    .option('--tta-crop', 'test-time augmentation with a centre crop (87.5%, zoomed back) as a third view')
    .option('--top-k <k>', 'report top-1..top-k accuracy (default min(5, classes))')
    .option('--shard <i/n>', 'evaluate only shard i of n (every n-th sample, 1 <= i <= n); combine with graft report --merge')
    .option('--out <path>', 'write the report here (report.json; other formats get their own extension beside it)')
    .option('--format <list>', FORMAT_HELP, parseList)
    .addOption(engineFlag())
    .option('--zero-division <v>', `value of ill-defined precision/recall/F1: ${ZERO_DIVISION_CHOICES.join(', ')} (warn = 0 with a warning)`, 'warn')
    .option('--positive-label <class>', 'two-class models: the positive class (default the second class)')
    .option('--threshold <t>', 'two-class and sigmoid models: predict a class when its score is above t', '0.5')
    .option('--mistakes <n>', 'how many of the most confidently wrong images to list', '20')
    .option('--verify <mode>', `how dataset files are checked before evaluating: ${VERIFY_MODES.join(', ')} (header reads headers and skips a damaged file when it is reached; decode decodes every file first)`, 'header')
    .action(async (opts: EvaluateCliOptions, cmd: Command) => {
      const { quiet } = globals(cmd);
      const formats = outputFormats(opts.out, opts.format, { csv: true });
      // tfjs starts only when it will run: onnxruntime needs no tfjs backend (createPredictor starts the default one
      // if auto falls back to tfjs).
      if (opts.engine === 'tfjs' || globals(cmd).backend !== undefined || tryLoadOnnxRuntime().reason) await useBackend(cmd);
      const progress = progressDisplay(Boolean(quiet));
      let report;
      try {
        const options: Parameters<typeof evaluate>[0] = {
          model: opts.model,
          data: opts.data,
          batchSize: opts.batchSize === undefined ? undefined : positiveInt('--batch-size', opts.batchSize),
          tta: ttaFromFlags(opts),
          topK: opts.topK === undefined ? undefined : positiveInt('--top-k', opts.topK),
          shard: opts.shard,
          engine: opts.engine,
          threads: globalThreads(cmd),
          zeroDivision: opts.zeroDivision,
          positiveLabel: opts.positiveLabel,
          threshold: finiteNumber('--threshold', opts.threshold, { min: 0, max: 1 }),
          mistakes: opts.mistakes === '0' ? 0 : positiveInt('--mistakes', opts.mistakes),
          verify: opts.verify as never,
          predictionsCsv: formats.includes('csv') && opts.out ? reportPaths(opts.out).csv : undefined,
          onProgress: (p) => progress.update(p),
          log: quiet ? null : undefined,
        };
        zeroDivisionOption(opts.zeroDivision);
        // Checking the files and loading the model can take a while on a big dataset: say what is happening first.
        if (!quiet) process.stderr.write(`evaluate: checking the images of ${opts.data} and loading ${opts.model}\n`);
        report = await evaluate(options);
      } finally {
        progress.stop();
      }
      const written = await emitReport(report, { out: opts.out, formats, quiet });
      if (!quiet) {
        const t = report.throughput;
        const files = formats.includes('csv') && opts.out ? [...written, reportPaths(opts.out).csv] : written;
        process.stderr.write(`evaluated ${report.data.samples} images in ${t.seconds.toFixed(1)} s: ${t.imagesPerSecond.toFixed(1)} images/s (${report.engine})\n`);
        if (files.length) process.stderr.write(`wrote ${files.join(', ')}\n`);
      }
    });
}
