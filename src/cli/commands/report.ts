import { Command } from 'commander';
import { GraftError } from '../../errors';
import { mergeReportFiles, reportFromPredictions } from '../../eval';
import { ZERO_DIVISION_CHOICES } from '../../metrics';
import { globals, parseList } from '../common';
import { FORMAT_HELP, emitReport, outputFormats } from '../report-output';

/** `graft report`: a report from a predictions CSV, or shard reports merged into one. */
export function reportCommand(): Command {
  return new Command('report')
    .description('make a report from a predictions CSV (label,prediction), or merge graft evaluate --shard reports into one')
    .option('--predictions <file.csv>', 'CSV with label and prediction columns (class names or indices)')
    .option('--merge <reports...>', 'JSON reports of every shard of one graft evaluate --shard i/n run')
    .option('--model <folder>', 'with --predictions: the model whose classes the labels name')
    .option('--classes <list>', 'with --predictions: class names in index order (instead of --model)', parseList)
    .option('--zero-division <v>', `with --predictions: value of ill-defined scores: ${ZERO_DIVISION_CHOICES.join(', ')}`, 'warn')
    .option('--out <path>', 'write the report here (other formats get their own extension beside it)')
    .option('--format <list>', FORMAT_HELP, parseList)
    .action(async (opts: { predictions?: string; merge?: string[]; model?: string; classes?: string[]; zeroDivision: string; out?: string; format?: string[] }, cmd: Command) => {
      if (Boolean(opts.predictions) === Boolean(opts.merge)) {
        throw new GraftError('pass exactly one of --predictions <file.csv> or --merge <a.json> <b.json> ...');
      }
      if (opts.merge && (opts.model || opts.classes)) throw new GraftError('--model and --classes only apply to --predictions; merged reports already name their classes.');
      const formats = outputFormats(opts.out, opts.format, { csv: false });
      const report = opts.merge
        ? mergeReportFiles(opts.merge)
        : reportFromPredictions(opts.predictions!, { model: opts.model, classNames: opts.classes, zeroDivision: opts.zeroDivision });
      const written = await emitReport(report, { out: opts.out, formats, quiet: globals(cmd).quiet });
      if (written.length && !globals(cmd).quiet) process.stderr.write(`wrote ${written.join(', ')}\n`);
    });
}
