/**
 * How `graft evaluate` and `graft report` hand a report to the user: without --out, text / json / md go to stdout;
 * with --out, every format is written next to it (atomically) and the text table is still printed.
 */
import { GraftError } from '../errors';
import { EvaluationReport, formatReportMarkdown, formatReportText } from '../metrics';
import { ReportFormat, reportFormats, reportPaths, writeReports } from '../eval/reports';
import { checkOutputFile } from './output-paths';

/** Shared option text for --format. */
export const FORMAT_HELP = 'comma-separated report formats: text, json, md, html (+ confusion PNG), csv (per-sample predictions; evaluate only)';

/** Resolves --format against --out: defaults, and formats that need a file. */
export function outputFormats(out: string | undefined, formats: string[] | undefined, options: { csv: boolean }): ReportFormat[] {
  const chosen = reportFormats(formats?.length ? formats : out ? ['json'] : ['text']);
  if (!options.csv && chosen.includes('csv')) throw new GraftError('--format csv (per-sample predictions) is only made by graft evaluate; choose text, json, md or html.');
  const needFile = chosen.filter((f) => f === 'html' || f === 'csv');
  if (!out && needFile.length) throw new GraftError(`--format ${needFile.join(',')} writes files; add --out <path> (e.g. --out runs/eval.json).`);
  if (out) {
    const paths = reportPaths(out);
    for (const f of chosen) checkOutputFile('--out', f === 'html' ? paths.png : paths[f]);
  }
  return chosen;
}

/** Prints and/or writes a report as the options ask; returns the files written. */
export async function emitReport(report: EvaluationReport, options: { out?: string; formats: ReportFormat[]; quiet?: boolean }): Promise<string[]> {
  if (!options.out) {
    for (const f of options.formats) {
      const text = f === 'json' ? JSON.stringify(report, null, 2) + '\n' : f === 'md' ? formatReportMarkdown(report) : formatReportText(report);
      process.stdout.write(text);
    }
    return [];
  }
  const written = await writeReports(report, { out: options.out, formats: options.formats.filter((f) => f !== 'csv') });
  if (!options.quiet) process.stdout.write(formatReportText(report));
  return written;
}
