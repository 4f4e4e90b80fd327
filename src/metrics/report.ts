/**
 * The evaluation report: the counts an evaluation produced (confusion matrix, top-k hits, multi-label counts, the
 * most confidently wrong samples) plus everything derived from them. Scores are always recomputed from counts, so
 * a report merged from shard reports is exactly the report of the whole run.
 */
import { GraftError } from '../errors';
import { ConfusionMatrix, addConfusionMatrices, assertSameLabels } from './confusion';
import { ClassScores, ClassificationMetrics, ZeroDivision, binaryScores, classificationMetrics, zeroDivisionOption } from './classification';
import { MultilabelCounts, MultilabelMetrics, addMultilabelCounts, multilabelMetrics } from './multilabel';

/** Layout name and version of report JSON files. */
export const REPORT_FORMAT = 'graft-evaluation';

/** A wrongly classified sample, for fastai-style "top losses". */
export interface Mistake {
  /** Image path (or dataset reference) of the sample. */
  source: string;
  /** True class name. */
  label: string;
  /** Predicted class name. */
  prediction: string;
  /** Score of the predicted class. */
  confidence: number;
  /** Score of the true class. */
  trueScore: number;
  /** -ln(score of the true class): how confidently wrong the model was. */
  loss: number;
}

/** The integer statistics of an evaluation: these add across shards. */
export interface EvaluationCounts {
  /** Single-label confusion matrix over the model's classes (predictions by argmax, or by threshold for binary). */
  confusion: ConfusionMatrix;
  /** For each k, how many samples had their true class among the k best scores. */
  topK: { k: number; hits: number }[];
  /** Per-label counts at the threshold, for sigmoid heads. */
  multilabel?: MultilabelCounts;
}

/** Settings that change the numbers; shards can only be merged when these agree. */
export interface EvaluationSettings {
  /** Test-time augmentation views averaged (`none`, `flip`, `flip+crop`). */
  tta: string;
  /** Largest k of top-k accuracy. */
  topK: number;
  /** How many of the most confidently wrong samples a report keeps. */
  mistakes: number;
  /** What ill-defined ratios become. */
  zeroDivision: ZeroDivision;
  /** For two-class models: the class treated as positive. */
  positiveLabel?: string;
  /** For two-class or sigmoid models: a positive is predicted when its score is above this. */
  threshold?: number;
}

/** What was evaluated. */
export interface ReportModel {
  /** Model folder. */
  dir: string;
  /** Architecture from graft.json. */
  architecture: string;
  /** Class names in output order. */
  classNames: string[];
  /** [height, width, channels]. */
  inputShape: [number, number, number];
  /** Preprocessing mode used. */
  preprocessing: string;
  /** softmax or sigmoid. */
  outputActivation: string;
}

/** Which data was evaluated. */
export interface ReportData {
  /** Dataset folder, manifest or predictions file. */
  spec: string;
  /** Samples evaluated. */
  samples: number;
  /** Samples that could not be read. */
  skipped: number;
  /** This report's shard (`index` of `count`), or null for the whole dataset. */
  shard: { index: number; count: number } | null;
  /** For a merged report: the shard indices it combines. */
  mergedShards?: number[];
}

/** A complete evaluation report (what `--out report.json` holds). */
export interface EvaluationReport {
  /** Always `graft-evaluation`. */
  format: typeof REPORT_FORMAT;
  /** Layout version. */
  formatVersion: 1;
  /** ISO time the report was made. */
  createdAt: string;
  /** The model, when a model was run. */
  model: ReportModel | null;
  /** The data. */
  data: ReportData;
  /** What ran the model (`tfjs wasm`, ...), or null for a predictions file. */
  engine: string | null;
  /** Settings that change the numbers. */
  settings: EvaluationSettings;
  /** Wall time and images per second (for a merged report: summed over shards). */
  throughput: { seconds: number; imagesPerSecond: number };
  /** The integer statistics; everything below is computed from these. */
  counts: EvaluationCounts;
  /** Accuracy, balanced accuracy, per-class precision / recall / F1 / support and their averages. */
  metrics: ClassificationMetrics;
  /** Top-k accuracy for k = 1..topK. */
  topK: { k: number; accuracy: number }[];
  /** Scores of the positive class, for two-class problems. */
  binary?: ClassScores & { threshold: number };
  /** Per-label scores at the threshold, for sigmoid heads. */
  multilabel?: MultilabelMetrics;
  /** The most confidently wrong samples, worst first. */
  mistakes: Mistake[];
  /** Zero-division and other warnings, one line each. */
  warnings: string[];
  /** Memory at the start and end of the run (absent from merged reports), to show evaluation streams in bounded memory. */
  resources?: { rssStartMiB: number; rssEndMiB: number; tensorsStart: number; tensorsEnd: number };
}

/** Everything a report holds besides what is derived from counts. */
export type ReportInput = Omit<EvaluationReport, 'format' | 'formatVersion' | 'createdAt' | 'metrics' | 'topK' | 'binary' | 'multilabel' | 'warnings'> & {
  /** Warnings from evaluation itself (not from scoring). */
  warnings?: string[];
};

/** Orders mistakes worst first, ties by path, so shard order never changes the list. */
export function compareMistakes(a: Mistake, b: Mistake): number {
  return b.loss - a.loss || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0);
}

/** Computes every score from the counts and returns the full report. */
export function buildReport(input: ReportInput): EvaluationReport {
  const { counts, settings } = input;
  const metrics = classificationMetrics(counts.confusion, { zeroDivision: settings.zeroDivision });
  const n = metrics.samples;
  const report: EvaluationReport = {
    format: REPORT_FORMAT,
    formatVersion: 1,
    createdAt: new Date().toISOString(),
    ...input,
    metrics,
    topK: counts.topK.map(({ k, hits }) => ({ k, accuracy: n ? hits / n : NaN })),
    mistakes: [...input.mistakes].sort(compareMistakes).slice(0, input.settings.mistakes),
    warnings: [...(input.warnings ?? []), ...metrics.warnings],
  };
  if (settings.positiveLabel !== undefined) {
    report.binary = { ...binaryScores(metrics, settings.positiveLabel), threshold: settings.threshold ?? 0.5 };
  }
  if (counts.multilabel) report.multilabel = multilabelMetrics(counts.multilabel, { zeroDivision: settings.zeroDivision });
  return report;
}

/** Options for `mergeReports`. */
export interface MergeReportsOptions {
  /** Where the reports came from, for error messages (defaults to `report 1`, `report 2`, ...). */
  names?: string[];
}

/**
 * Combines shard reports (`graft evaluate --shard i/n`) into the report of the whole dataset: counts add, scores
 * are recomputed, mistakes are re-ranked. Every shard of the same run must be present exactly once.
 */
export function mergeReports(reports: readonly EvaluationReport[], options: MergeReportsOptions = {}): EvaluationReport {
  if (reports.length === 0) throw new GraftError('no reports to merge; pass the JSON report of every shard.');
  const names = options.names ?? reports.map((_, i) => `report ${i + 1}`);
  reports.forEach((r, i) => validateReport(r, names[i]));
  const first = reports[0];
  const key = (r: EvaluationReport) => JSON.stringify({ ...r.settings, zeroDivision: String(r.settings.zeroDivision) });
  reports.forEach((r, i) => {
    if (key(r) !== key(first)) {
      throw new GraftError(`${names[i]} was evaluated with different settings (${key(r)}) than ${names[0]} (${key(first)}); evaluate every shard with the same options.`);
    }
    if (r.data.spec !== first.data.spec) {
      throw new GraftError(`${names[i]} evaluated ${r.data.spec} but ${names[0]} evaluated ${first.data.spec}; merge shards of one dataset.`);
    }
    assertSameLabels(first.counts.confusion.labels, r.counts.confusion.labels, `${names[0]} and ${names[i]}`);
  });
  const shards = checkShards(reports, names);
  const seconds = reports.reduce((a, r) => a + r.throughput.seconds, 0);
  const samples = reports.reduce((a, r) => a + r.data.samples, 0);
  const multilabel = reports.every((r) => r.counts.multilabel) ? addMultilabelCounts(reports.map((r) => r.counts.multilabel!)) : undefined;
  const topK = first.counts.topK.map(({ k }, j) => ({ k, hits: reports.reduce((a, r) => a + r.counts.topK[j].hits, 0) }));
  return buildReport({
    model: first.model,
    engine: [...new Set(reports.map((r) => r.engine))].join(' + '),
    settings: first.settings,
    data: {
      spec: first.data.spec,
      samples,
      skipped: reports.reduce((a, r) => a + r.data.skipped, 0),
      shard: null,
      ...(shards ? { mergedShards: shards } : {}),
    },
    throughput: { seconds, imagesPerSecond: seconds > 0 ? samples / seconds : 0 },
    counts: {
      confusion: addConfusionMatrices(reports.map((r) => r.counts.confusion)),
      topK,
      ...(multilabel ? { multilabel } : {}),
    },
    mistakes: reports
      .flatMap((r) => r.mistakes)
      .sort(compareMistakes)
      .slice(0, first.settings.mistakes),
  });
}

/** Checks the shards are one run's complete, distinct set; returns their indices (null when none is a shard). */
function checkShards(reports: readonly EvaluationReport[], names: string[]): number[] | null {
  const shards = reports.map((r) => r.data.shard);
  if (shards.every((s) => s === null)) {
    if (reports.length > 1) {
      throw new GraftError(`${names.join(', ')} are whole-dataset reports, not shards; merge the reports of graft evaluate --shard i/n runs.`);
    }
    return null;
  }
  const count = shards.find((s) => s)!.count;
  const seen = new Map<number, string>();
  shards.forEach((s, i) => {
    if (!s || s.count !== count) {
      throw new GraftError(`${names[i]} is ${s ? `shard ${s.index + 1}/${s.count}` : 'not a shard'}, but ${names[0]} is one of ${count} shards; merge shards of one --shard i/${count} run.`);
    }
    if (seen.has(s.index)) throw new GraftError(`${names[i]} and ${seen.get(s.index)} are both shard ${s.index + 1}/${count}; pass each shard once.`);
    seen.set(s.index, names[i]);
  });
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length) {
    throw new GraftError(`shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i + 1}/${count}`).join(', ')} missing from the merge; pass all ${count} shard reports.`);
  }
  return [...seen.keys()].sort((a, b) => a - b);
}

/** Checks a parsed JSON value is a graft evaluation report, naming what is wrong. */
export function validateReport(raw: unknown, source: string): EvaluationReport {
  const r = raw as Partial<EvaluationReport> | null;
  if (!r || typeof r !== 'object' || r.format !== REPORT_FORMAT) {
    throw new GraftError(`${source} is not a graft evaluation report (no "format": "${REPORT_FORMAT}"); pass a report written by graft evaluate --out.`);
  }
  if (r.formatVersion !== 1) throw new GraftError(`${source} has report formatVersion ${JSON.stringify(r.formatVersion)}; this graft reads version 1.`);
  const cm = r.counts?.confusion;
  if (!cm || !Array.isArray(cm.labels) || !Array.isArray(cm.matrix) || cm.matrix.length !== cm.labels.length) {
    throw new GraftError(`${source} has no valid counts.confusion; re-run graft evaluate to regenerate it.`);
  }
  const settings = r.settings as EvaluationSettings | undefined;
  if (!settings || !Array.isArray(r.counts?.topK) || !Array.isArray(r.mistakes) || !r.data) {
    throw new GraftError(`${source} is missing settings, counts.topK, data or mistakes; re-run graft evaluate to regenerate it.`);
  }
  settings.zeroDivision = zeroDivisionOption(settings.zeroDivision);
  return r as EvaluationReport;
}
