/**
 * Plain-text and Markdown renderings of a report. The text table is character-for-character scikit-learn's
 * `classification_report`, so numbers can be compared by eye or by diff.
 */
import { AverageScores, ClassScores, PrfResult } from './classification';
import { EvaluationReport } from './report';
import { mostConfused } from './confusion';

/**
 * Formats `x` with `digits` decimals as Python's `format(x, '.{digits}f')` does: exact halves round to even
 * (0.125 -> 0.12, where JavaScript's toFixed gives 0.13), and NaN prints as `nan`.
 */
export function formatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const abs = Math.abs(x);
  const rounded = abs.toFixed(digits);
  // The long expansion is exact for a double, so a tail of 5000... is a true tie, which Python rounds to even.
  const long = abs.toFixed(Math.min(100, digits + 40));
  const dot = long.indexOf('.');
  const tail = long.slice(dot + 1 + digits);
  if (/^50*$/.test(tail)) {
    const truncated = long.slice(0, dot + 1 + digits).replace(/\.$/, '');
    const lastDigit = Number(truncated.replace('.', '').slice(-1));
    if (lastDigit % 2 === 0) return sign + truncated;
  }
  return sign + rounded;
}

/** Options for `formatClassificationReport`. */
export interface ClassificationReportOptions {
  /** Decimals per score (default 2, as scikit-learn). */
  digits?: number;
  /** Print an `accuracy` row instead of `micro avg` (scikit-learn does when the classes cover every label seen). */
  microIsAccuracy?: boolean;
}

/** scikit-learn's `classification_report` text for per-class scores and averages (`samples` included for multi-label). */
export function formatClassificationReport(
  prf: PrfResult & { averages: PrfResult['averages'] & { samples?: AverageScores } },
  options: ClassificationReportOptions = {},
): string {
  const digits = options.digits ?? 2;
  const headers = ['precision', 'recall', 'f1-score', 'support'];
  const width = Math.max(...prf.classes.map((c) => c.label.length), 'weighted avg'.length, digits);
  const num = (v: number) => ' ' + formatFixed(v, digits).padStart(9);
  const row = (name: string, s: Omit<ClassScores, 'label'>) =>
    `${name.padStart(width)} ${num(s.precision)}${num(s.recall)}${num(s.f1)} ${String(s.support).padStart(9)}\n`;
  let out = `${''.padStart(width)} ${headers.map((h) => ' ' + h.padStart(9)).join('')}\n\n`;
  for (const c of prf.classes) out += row(c.label, c);
  out += '\n';
  const { micro, macro, weighted, samples } = prf.averages;
  if (options.microIsAccuracy) {
    out += `${'accuracy'.padStart(width)} ${' '.repeat(20)}${num(micro.f1)} ${String(micro.support).padStart(9)}\n`;
  } else {
    out += row('micro avg', micro);
  }
  out += row('macro avg', macro);
  out += row('weighted avg', weighted);
  if (samples) out += row('samples avg', samples);
  return out;
}

/** One row of scikit-learn's `classification_report(output_dict=True)`. */
export interface ReportDictRow {
  /** Precision. */
  precision: number;
  /** Recall. */
  recall: number;
  /** F1. */
  'f1-score': number;
  /** Support. */
  support: number;
}

/**
 * The same data as scikit-learn's `classification_report(..., output_dict=True)`: one entry per class, then
 * `accuracy` (a number) or `micro avg`, `macro avg`, `weighted avg` (and `samples avg` for multi-label), with
 * the same keys, so the two can be compared key by key.
 */
export function classificationReportDict(
  prf: PrfResult & { averages: PrfResult['averages'] & { samples?: AverageScores } },
  options: { microIsAccuracy?: boolean } = {},
): Record<string, ReportDictRow | number> {
  const row = (s: Omit<ClassScores, 'label'>): ReportDictRow => ({ precision: s.precision, recall: s.recall, 'f1-score': s.f1, support: s.support });
  const out: Record<string, ReportDictRow | number> = {};
  for (const c of prf.classes) out[c.label] = row(c);
  const { micro, macro, weighted, samples } = prf.averages;
  if (options.microIsAccuracy) out.accuracy = micro.f1;
  else out['micro avg'] = row(micro);
  out['macro avg'] = row(macro);
  out['weighted avg'] = row(weighted);
  if (samples) out['samples avg'] = row(samples);
  return out;
}

/** The confusion matrix as aligned text, rows true and columns predicted. */
export function formatConfusionText(labels: string[], matrix: number[][]): string {
  const cell = Math.max(...labels.map((l) => l.length), ...matrix.flat().map((v) => String(v).length), 4);
  const first = Math.max(...labels.map((l) => l.length), 'true \\ pred'.length);
  const lines = [`${'true \\ pred'.padEnd(first)}  ${labels.map((l) => l.padStart(cell)).join(' ')}`];
  matrix.forEach((r, i) => lines.push(`${labels[i].padEnd(first)}  ${r.map((v) => String(v).padStart(cell)).join(' ')}`));
  return lines.join('\n');
}

/** A short description of what was evaluated, one line. */
function describe(report: EvaluationReport): string {
  const parts = [
    report.model ? `model ${report.model.dir}` : null,
    `data ${report.data.spec}`,
    report.data.shard ? `shard ${report.data.shard.index + 1}/${report.data.shard.count}` : null,
    report.data.mergedShards ? `merged from ${report.data.mergedShards.length} shards` : null,
    `${report.data.samples} samples`,
    report.data.skipped ? `${report.data.skipped} skipped` : null,
    report.engine ? `engine ${report.engine}` : null,
    report.settings.tta !== 'none' ? `TTA ${report.settings.tta}` : null,
  ];
  return parts.filter(Boolean).join(', ');
}

/** The text report `graft evaluate` prints: the table, summary scores, the confusion matrix and the worst mistakes. */
export function formatReportText(report: EvaluationReport, options: { digits?: number; mistakes?: number } = {}): string {
  const digits = options.digits ?? 2;
  const m = report.metrics;
  const parts = [describe(report), '', formatClassificationReport(m, { digits, microIsAccuracy: m.microIsAccuracy })];
  const summary = [`accuracy ${formatFixed(m.accuracy, 4)}`, `balanced accuracy ${formatFixed(m.balancedAccuracy, 4)}`];
  for (const t of report.topK.filter((t) => t.k > 1)) summary.push(`top-${t.k} accuracy ${formatFixed(t.accuracy, 4)}`);
  parts.push(summary.join(', '));
  if (report.binary) {
    const b = report.binary;
    parts.push(`binary (positive ${b.label}, threshold ${b.threshold}): precision ${formatFixed(b.precision, 4)}, recall ${formatFixed(b.recall, 4)}, F1 ${formatFixed(b.f1, 4)}`);
  }
  if (report.multilabel) {
    const ml = report.multilabel;
    parts.push('', `per-label at threshold ${ml.threshold} (sigmoid head): subset accuracy ${formatFixed(ml.subsetAccuracy, 4)}, Hamming loss ${formatFixed(ml.hammingLoss, 4)}`);
    parts.push(formatClassificationReport(ml, { digits }));
  }
  parts.push('', 'confusion matrix:', formatConfusionText(report.counts.confusion.labels, report.counts.confusion.matrix));
  const confused = mostConfused(report.counts.confusion, { limit: 5 });
  if (confused.length) parts.push(`most confused (true -> predicted): ${confused.map((c) => `${c.actual} -> ${c.predicted} ${c.count}`).join(', ')}`);
  const worst = report.mistakes.slice(0, options.mistakes ?? 10);
  if (worst.length) {
    parts.push('', 'most confidently wrong:');
    for (const w of worst) parts.push(`  ${w.source}  true ${w.label} (${formatFixed(w.trueScore, 3)}), predicted ${w.prediction} (${formatFixed(w.confidence, 3)})`);
  }
  if (report.throughput.seconds > 0) parts.push('', `${formatFixed(report.throughput.imagesPerSecond, 1)} images/s over ${formatFixed(report.throughput.seconds, 1)} s`);
  for (const w of report.warnings) parts.push(`warning: ${w}`);
  return parts.join('\n') + '\n';
}

/** Escapes text for a Markdown table cell. */
function md(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The report as Markdown: summary, per-class table, confusion matrix and mistakes. */
export function formatReportMarkdown(report: EvaluationReport, options: { digits?: number } = {}): string {
  const d = options.digits ?? 4;
  const f = (v: number) => formatFixed(v, d);
  const m = report.metrics;
  const lines = ['# Evaluation report', '', md(describe(report)), ''];
  lines.push(`| metric | value |`, `|---|---:|`, `| accuracy | ${f(m.accuracy)} |`, `| balanced accuracy | ${f(m.balancedAccuracy)} |`);
  for (const t of report.topK.filter((t) => t.k > 1)) lines.push(`| top-${t.k} accuracy | ${f(t.accuracy)} |`);
  if (report.throughput.seconds > 0) lines.push(`| images/s | ${formatFixed(report.throughput.imagesPerSecond, 1)} |`);
  lines.push('', '| class | precision | recall | f1-score | support |', '|---|---:|---:|---:|---:|');
  for (const c of m.classes) lines.push(`| ${md(c.label)} | ${f(c.precision)} | ${f(c.recall)} | ${f(c.f1)} | ${c.support} |`);
  for (const [name, a] of Object.entries(m.averages)) lines.push(`| **${name} avg** | ${f(a.precision)} | ${f(a.recall)} | ${f(a.f1)} | ${a.support} |`);
  if (report.binary) {
    const b = report.binary;
    lines.push('', `Binary, positive class **${md(b.label)}** at threshold ${b.threshold}: precision ${f(b.precision)}, recall ${f(b.recall)}, F1 ${f(b.f1)}.`);
  }
  if (report.multilabel) {
    const ml = report.multilabel;
    lines.push('', `## Per label at threshold ${ml.threshold}`, '', `Subset accuracy ${f(ml.subsetAccuracy)}, Hamming loss ${f(ml.hammingLoss)}.`, '');
    lines.push('| label | precision | recall | f1-score | support |', '|---|---:|---:|---:|---:|');
    for (const c of ml.classes) lines.push(`| ${md(c.label)} | ${f(c.precision)} | ${f(c.recall)} | ${f(c.f1)} | ${c.support} |`);
    for (const [name, a] of Object.entries(ml.averages)) lines.push(`| **${name} avg** | ${f(a.precision)} | ${f(a.recall)} | ${f(a.f1)} | ${a.support} |`);
  }
  const { labels, matrix } = report.counts.confusion;
  lines.push('', '## Confusion matrix (rows true, columns predicted)', '', `| true \\ pred | ${labels.map(md).join(' | ')} |`, `|---|${labels.map(() => '---:').join('|')}|`);
  matrix.forEach((r, i) => lines.push(`| **${md(labels[i])}** | ${r.join(' | ')} |`));
  const confused = mostConfused(report.counts.confusion, { limit: 10 });
  if (confused.length) {
    lines.push('', '## Most confused pairs', '', '| true | predicted | count |', '|---|---|---:|');
    for (const c of confused) lines.push(`| ${md(c.actual)} | ${md(c.predicted)} | ${c.count} |`);
  }
  if (report.mistakes.length) {
    lines.push('', '## Most confidently wrong', '', '| path | true | predicted | confidence | loss |', '|---|---|---|---:|---:|');
    for (const w of report.mistakes) lines.push(`| ${md(w.source)} | ${md(w.label)} | ${md(w.prediction)} | ${formatFixed(w.confidence, 3)} | ${formatFixed(w.loss, 3)} |`);
  }
  if (report.warnings.length) lines.push('', ...report.warnings.map((w) => `> warning: ${md(w)}`));
  return lines.join('\n') + '\n';
}
