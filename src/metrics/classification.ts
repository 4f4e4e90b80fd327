/**
 * Precision, recall, F1, support and their averages, computed from counts exactly as scikit-learn's
 * `precision_recall_fscore_support` / `classification_report` (1.4+) do, including every zero-division case:
 * - precision is ill-defined for a class nobody predicted, recall for a class with no true samples, and F1 only when
 *   the class has neither (F1 = 2·tp / (2·tp + fp + fn), so a class with samples but no predictions scores 0, not
 *   `zeroDivision`);
 * - an ill-defined value becomes `zeroDivision` (`warn` means 0 plus a warning naming the classes; `nan` means NaN,
 *   which averages then skip, as scikit-learn's `_nanaverage` does);
 * - the weighted average weights by support, and falls back to the plain mean when every support is zero.
 */
import { GraftError } from '../errors';
import { ConfusionMatrix, classCounts } from './confusion';

/** What an ill-defined ratio becomes (scikit-learn's `zero_division`). */
export type ZeroDivision = 'warn' | 0 | 1 | 'nan';
/** Accepted spellings of `zeroDivision` (CLI strings and API values). */
export const ZERO_DIVISION_CHOICES = ['warn', '0', '1', 'nan'] as const;

/** Parses a `zeroDivision` option (`warn`, `0`, `1`, `nan`, or the numbers 0 and 1). */
export function zeroDivisionOption(value: unknown): ZeroDivision {
  if (value === undefined) return 'warn';
  if (value === 0 || value === 1) return value;
  const s = typeof value === 'number' && Number.isNaN(value) ? 'nan' : value;
  if (s === 'warn' || s === 'nan') return s;
  if (s === '0' || s === '1') return Number(s) as 0 | 1;
  throw new GraftError(`zeroDivision must be one of ${ZERO_DIVISION_CHOICES.join(', ')}; received ${JSON.stringify(value)}.`);
}

/** Scores of one class (or label). */
export interface ClassScores {
  /** Class name. */
  label: string;
  /** tp / (tp + fp). */
  precision: number;
  /** tp / (tp + fn). */
  recall: number;
  /** 2·tp / (2·tp + fp + fn). */
  f1: number;
  /** Number of true samples of the class. */
  support: number;
}

/** An averaged score row. */
export interface AverageScores {
  /** Averaged precision. */
  precision: number;
  /** Averaged recall. */
  recall: number;
  /** Averaged F1. */
  f1: number;
  /** Total support of the classes averaged over. */
  support: number;
}

/** Per-class counts: everything precision, recall and F1 need. */
export interface PrfCounts {
  /** Class names. */
  labels: string[];
  /** True positives per class. */
  tp: number[];
  /** Predicted positives per class (tp + fp). */
  predicted: number[];
  /** Actual positives per class (tp + fn), the support. */
  actual: number[];
}

/** Per-class scores and the macro, weighted and micro averages, with any zero-division warnings. */
export interface PrfResult {
  /** Per-class scores in label order. */
  classes: ClassScores[];
  /** Averages over the classes. */
  averages: { micro: AverageScores; macro: AverageScores; weighted: AverageScores };
  /** One line per kind of ill-defined score when `zeroDivision` is `warn` (scikit-learn's UndefinedMetricWarning). */
  warnings: string[];
}

/** Replaces a 0/0 with the zero-division value. */
function ratio(num: number, den: number, zd: ZeroDivision): number {
  if (den !== 0) return num / den;
  return zd === 'nan' ? NaN : zd === 1 ? 1 : 0;
}

/** Mean skipping NaN (weighted by `weights` when given, plain when every remaining weight is zero), NaN if nothing is left. */
export function nanAverage(values: readonly number[], weights?: readonly number[]): number {
  let sum = 0;
  let wsum = 0;
  let plain = 0;
  let n = 0;
  values.forEach((v, i) => {
    if (Number.isNaN(v)) return;
    const w = weights ? weights[i] : 1;
    sum += v * w;
    wsum += w;
    plain += v;
    n += 1;
  });
  if (n === 0) return NaN;
  return wsum === 0 ? plain / n : sum / wsum;
}

/** Precision, recall, F1 and their averages from per-class counts (the core of every report). */
export function precisionRecallF1(counts: PrfCounts, options: { zeroDivision?: ZeroDivision } = {}): PrfResult {
  const zd = zeroDivisionOption(options.zeroDivision);
  const { labels, tp, predicted, actual } = counts;
  const classes = labels.map((label, i) => ({
    label,
    precision: ratio(tp[i], predicted[i], zd),
    recall: ratio(tp[i], actual[i], zd),
    f1: ratio(2 * tp[i], predicted[i] + actual[i], zd),
    support: actual[i],
  }));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const support = sum(actual);
  const [tpAll, predAll] = [sum(tp), sum(predicted)];
  const average = (weights?: number[]): AverageScores => ({
    precision: nanAverage(classes.map((c) => c.precision), weights),
    recall: nanAverage(classes.map((c) => c.recall), weights),
    f1: nanAverage(classes.map((c) => c.f1), weights),
    support,
  });
  const micro = {
    precision: ratio(tpAll, predAll, zd),
    recall: ratio(tpAll, support, zd),
    f1: ratio(2 * tpAll, predAll + support, zd),
    support,
  };
  const warnings: string[] = [];
  if (zd === 'warn') {
    const where = (test: (i: number) => boolean) => labels.filter((_, i) => test(i));
    const noPred = where((i) => predicted[i] === 0);
    const noTrue = where((i) => actual[i] === 0);
    const neither = where((i) => predicted[i] === 0 && actual[i] === 0);
    const use = 'Use zeroDivision (0, 1 or nan) to choose the value and silence this.';
    if (noPred.length) warnings.push(`Precision is ill-defined and being set to 0.0 in labels with no predicted samples: ${noPred.join(', ')}. ${use}`);
    if (noTrue.length) warnings.push(`Recall is ill-defined and being set to 0.0 in labels with no true samples: ${noTrue.join(', ')}. ${use}`);
    if (neither.length) warnings.push(`F-score is ill-defined and being set to 0.0 in labels with no true nor predicted samples: ${neither.join(', ')}. ${use}`);
  }
  return { classes, averages: { micro, macro: average(), weighted: average(actual) }, warnings };
}

/** Options for `classificationMetrics`. */
export interface ClassificationMetricsOptions {
  /** What ill-defined ratios become (default `warn`: 0 and a warning). */
  zeroDivision?: ZeroDivision;
  /** Report only these classes, in this order (scikit-learn's `labels=`); default every class of the matrix. */
  labels?: string[];
}

/** Everything `classification_report` shows, plus accuracy and balanced accuracy. */
export interface ClassificationMetrics extends PrfResult {
  /** Classes reported, in order. */
  labels: string[];
  /** Number of samples counted. */
  samples: number;
  /** Fraction of samples predicted correctly (NaN with no samples). */
  accuracy: number;
  /** Mean recall over the classes that have true samples (scikit-learn's `balanced_accuracy_score`). */
  balancedAccuracy: number;
  /**
   * True when the micro average is the accuracy (the reported classes cover every class that occurs), so the text
   * report prints an `accuracy` row as scikit-learn does; otherwise a `micro avg` row.
   */
  microIsAccuracy: boolean;
  /** The zero-division setting used. */
  zeroDivision: ZeroDivision;
}

/** Scores a confusion matrix as scikit-learn's `classification_report` (with `labels=`) would. */
export function classificationMetrics(cm: ConfusionMatrix, options: ClassificationMetricsOptions = {}): ClassificationMetrics {
  const zeroDivision = zeroDivisionOption(options.zeroDivision);
  const all = classCounts(cm);
  const labels = options.labels ?? cm.labels;
  const index = labels.map((l) => {
    const i = cm.labels.indexOf(l);
    if (i < 0) throw new GraftError(`class ${JSON.stringify(l)} is not one of the model's classes (${cm.labels.join(', ')}); pick labels from those.`);
    return i;
  });
  const pick = (xs: number[]) => index.map((i) => xs[i]);
  const prf = precisionRecallF1({ labels, tp: pick(all.tp), predicted: pick(all.predicted), actual: pick(all.actual) }, { zeroDivision });
  const samples = all.actual.reduce((a, b) => a + b, 0);
  const correct = all.tp.reduce((a, b) => a + b, 0);
  const recalls = all.tp.map((t, i) => (all.actual[i] > 0 ? t / all.actual[i] : NaN));
  const occurring = cm.labels.filter((_, i) => all.actual[i] > 0 || all.predicted[i] > 0);
  return {
    ...prf,
    labels,
    samples,
    accuracy: samples ? correct / samples : NaN,
    balancedAccuracy: nanAverage(recalls),
    microIsAccuracy: occurring.every((l) => labels.includes(l)),
    zeroDivision,
  };
}

/** The scores of one class of a two-class problem (scikit-learn's `average='binary'` with `pos_label`). */
export function binaryScores(metrics: ClassificationMetrics, positiveLabel: string): ClassScores {
  const found = metrics.classes.find((c) => c.label === positiveLabel);
  if (!found) throw new GraftError(`positive label ${JSON.stringify(positiveLabel)} is not one of ${metrics.labels.join(', ')}; pass one of those.`);
  return found;
}
