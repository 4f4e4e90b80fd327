/**
 * Per-label metrics for sigmoid (multi-label) heads at a threshold, as scikit-learn scores label-indicator
 * matrices: each label is its own binary problem, plus micro, macro, weighted and samples averages.
 * The counts are integers (sample-wise ratios are kept as exact fraction histograms), so counts from shards add up
 * to exactly the counts of the whole run.
 */
import { GraftError } from '../errors';
import { assertSameLabels } from './confusion';
import { AverageScores, ClassScores, PrfResult, ZeroDivision, nanAverage, precisionRecallF1, zeroDivisionOption } from './classification';

/** Sample-wise ratio numerators/denominators, as `"num/den"` -> number of samples (den 0 = ill-defined). */
export type FractionHistogram = Record<string, number>;

/** Sufficient statistics of a multi-label evaluation. */
export interface MultilabelCounts {
  /** Label names in output order. */
  labels: string[];
  /** A label is predicted when its score is above this. */
  threshold: number;
  /** Samples counted. */
  samples: number;
  /** True positives per label. */
  tp: number[];
  /** Predicted positives per label. */
  predicted: number[];
  /** Actual positives per label. */
  actual: number[];
  /** Samples whose whole predicted label set is right. */
  exactMatches: number;
  /** Per-sample precision, recall and F1 fractions, for the samples average. */
  perSample: { precision: FractionHistogram; recall: FractionHistogram; f1: FractionHistogram };
}

/** Empty counts over `labels`. */
export function emptyMultilabelCounts(labels: readonly string[], threshold: number): MultilabelCounts {
  const zeros = () => labels.map(() => 0);
  return {
    labels: [...labels],
    threshold,
    samples: 0,
    tp: zeros(),
    predicted: zeros(),
    actual: zeros(),
    exactMatches: 0,
    perSample: { precision: {}, recall: {}, f1: {} },
  };
}

function bump(h: FractionHistogram, num: number, den: number): void {
  const key = `${num}/${den}`;
  h[key] = (h[key] ?? 0) + 1;
}

/** Counts one sample: `truth[j]` says whether label j applies, `scores[j]` is the model's score for it. */
export function addMultilabelSample(counts: MultilabelCounts, truth: ArrayLike<number | boolean>, scores: ArrayLike<number>): void {
  const n = counts.labels.length;
  if (truth.length !== n || scores.length !== n) {
    throw new GraftError(`a multi-label sample needs ${n} truth values and ${n} scores; received ${truth.length} and ${scores.length}.`);
  }
  let tp = 0;
  let pred = 0;
  let act = 0;
  let exact = true;
  for (let j = 0; j < n; j++) {
    const t = Boolean(truth[j]);
    const p = scores[j] > counts.threshold;
    if (p) counts.predicted[j] += 1;
    if (t) counts.actual[j] += 1;
    if (p && t) counts.tp[j] += 1;
    tp += Number(p && t);
    pred += Number(p);
    act += Number(t);
    exact &&= p === t;
  }
  counts.samples += 1;
  counts.exactMatches += Number(exact);
  bump(counts.perSample.precision, tp, pred);
  bump(counts.perSample.recall, tp, act);
  bump(counts.perSample.f1, 2 * tp, pred + act);
}

/** Adds counts over the same labels and threshold (e.g. one per shard). */
export function addMultilabelCounts(list: readonly MultilabelCounts[]): MultilabelCounts {
  if (list.length === 0) throw new GraftError('no multi-label counts to add; pass at least one.');
  const out = emptyMultilabelCounts(list[0].labels, list[0].threshold);
  for (const c of list) {
    assertSameLabels(out.labels, c.labels, 'multi-label counts');
    if (c.threshold !== out.threshold) throw new GraftError(`multi-label counts use different thresholds (${out.threshold} and ${c.threshold}); evaluate every shard with the same --threshold.`);
    out.samples += c.samples;
    out.exactMatches += c.exactMatches;
    c.tp.forEach((v, j) => (out.tp[j] += v));
    c.predicted.forEach((v, j) => (out.predicted[j] += v));
    c.actual.forEach((v, j) => (out.actual[j] += v));
    for (const key of ['precision', 'recall', 'f1'] as const) {
      for (const [f, k] of Object.entries(c.perSample[key])) out.perSample[key][f] = (out.perSample[key][f] ?? 0) + k;
    }
  }
  return out;
}

/** Mean of a fraction histogram, ill-defined fractions taking the zero-division value (NaN ones skipped). */
function histogramMean(h: FractionHistogram, zd: ZeroDivision): number {
  const values: number[] = [];
  const weights: number[] = [];
  // Sorted keys so the sum is done in the same order whatever order the shards were merged in.
  for (const key of Object.keys(h).sort()) {
    const [num, den] = key.split('/').map(Number);
    values.push(den === 0 ? (zd === 'nan' ? NaN : zd === 1 ? 1 : 0) : num / den);
    weights.push(h[key]);
  }
  return nanAverage(values, weights);
}

/** Per-label scores and averages of a multi-label evaluation. */
export interface MultilabelMetrics extends PrfResult {
  /** Label names. */
  labels: string[];
  /** Threshold used. */
  threshold: number;
  /** Samples counted. */
  samples: number;
  /** Fraction of samples whose predicted label set is exactly right (scikit-learn's `accuracy_score` on indicators). */
  subsetAccuracy: number;
  /** Fraction of (sample, label) decisions that are wrong. */
  hammingLoss: number;
  /** Averages, including scikit-learn's `samples` average. */
  averages: PrfResult['averages'] & { samples: AverageScores };
}

/** Scores multi-label counts as scikit-learn's `classification_report` does for label-indicator input. */
export function multilabelMetrics(counts: MultilabelCounts, options: { zeroDivision?: ZeroDivision } = {}): MultilabelMetrics {
  const zd = zeroDivisionOption(options.zeroDivision);
  const prf = precisionRecallF1(counts, { zeroDivision: zd });
  const support = counts.actual.reduce((a, b) => a + b, 0);
  const wrong = counts.predicted.reduce((a, p, j) => a + p + counts.actual[j] - 2 * counts.tp[j], 0);
  const samples: AverageScores = {
    precision: histogramMean(counts.perSample.precision, zd),
    recall: histogramMean(counts.perSample.recall, zd),
    f1: histogramMean(counts.perSample.f1, zd),
    support,
  };
  return {
    ...prf,
    classes: prf.classes as ClassScores[],
    labels: counts.labels,
    threshold: counts.threshold,
    samples: counts.samples,
    subsetAccuracy: counts.samples ? counts.exactMatches / counts.samples : NaN,
    hammingLoss: counts.samples ? wrong / (counts.samples * counts.labels.length) : NaN,
    averages: { ...prf.averages, samples },
  };
}
