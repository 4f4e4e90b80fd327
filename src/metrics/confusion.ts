/**
 * Confusion matrices: the sufficient statistics of single-label classification. Every score in a report is computed
 * from one, and matrices over disjoint samples add, which is what makes sharded evaluation exact.
 */
import { GraftError } from '../errors';

/** Counts of (true class, predicted class) pairs: `matrix[t][p]`, rows true, columns predicted (scikit-learn's layout). */
export interface ConfusionMatrix {
  /** Class names in index order. */
  labels: string[];
  /** `labels.length` rows of `labels.length` counts. */
  matrix: number[][];
}

/** An all-zero matrix over `labels`. */
export function emptyConfusionMatrix(labels: readonly string[]): ConfusionMatrix {
  return { labels: [...labels], matrix: labels.map(() => labels.map(() => 0)) };
}

/** Builds a confusion matrix from true and predicted class indices into `labels`. */
export function confusionMatrix(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, labels: readonly string[]): ConfusionMatrix {
  if (yTrue.length !== yPred.length) {
    throw new GraftError(`true and predicted labels differ in length (${yTrue.length} vs ${yPred.length}); pass one prediction per sample.`);
  }
  const cm = emptyConfusionMatrix(labels);
  for (let i = 0; i < yTrue.length; i++) addToConfusion(cm, yTrue[i], yPred[i]);
  return cm;
}

/** Counts one (true, predicted) pair into `cm` in place. */
export function addToConfusion(cm: ConfusionMatrix, trueIndex: number, predIndex: number): void {
  const n = cm.labels.length;
  for (const [what, v] of [['true label', trueIndex], ['predicted label', predIndex]] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= n) {
      throw new GraftError(`${what} index ${v} is outside the ${n} classes (0..${n - 1}); check the labels match the model's classes.`);
    }
  }
  cm.matrix[trueIndex][predIndex] += 1;
}

/** Sums matrices over the same classes (e.g. one per shard); the result scores exactly as the whole run would. */
export function addConfusionMatrices(matrices: readonly ConfusionMatrix[]): ConfusionMatrix {
  if (matrices.length === 0) throw new GraftError('no confusion matrices to add; pass at least one.');
  const out = emptyConfusionMatrix(matrices[0].labels);
  for (const cm of matrices) {
    assertSameLabels(out.labels, cm.labels);
    cm.matrix.forEach((row, t) => row.forEach((v, p) => (out.matrix[t][p] += v)));
  }
  return out;
}

/** Throws naming the differing classes when two class lists are not the same list. */
export function assertSameLabels(expected: readonly string[], received: readonly string[], what = 'confusion matrices'): void {
  if (expected.length === received.length && expected.every((l, i) => l === received[i])) return;
  const missing = expected.filter((l) => !received.includes(l));
  const extra = received.filter((l) => !expected.includes(l));
  const detail =
    missing.length || extra.length
      ? `only in the first: ${missing.join(', ') || 'none'}; only in the other: ${extra.join(', ') || 'none'}`
      : `same classes in a different order: ${JSON.stringify(expected)} vs ${JSON.stringify(received)}`;
  throw new GraftError(`${what} are over different classes (${detail}); combine results of the same model only.`);
}

/** Per-class sufficient statistics (true positives, predicted and true counts) read off a matrix. */
export function classCounts(cm: ConfusionMatrix): { tp: number[]; predicted: number[]; actual: number[] } {
  const n = cm.labels.length;
  const tp = cm.matrix.map((row, i) => row[i]);
  const actual = cm.matrix.map((row) => row.reduce((a, b) => a + b, 0));
  const predicted = Array.from({ length: n }, (_, j) => cm.matrix.reduce((a, row) => a + row[j], 0));
  return { tp, predicted, actual };
}

/** An off-diagonal cell of a confusion matrix: how often `actual` was predicted as `predicted`. */
export interface ConfusedPair {
  /** True class. */
  actual: string;
  /** Predicted class. */
  predicted: string;
  /** Number of samples. */
  count: number;
}

/** The largest off-diagonal cells, largest first (fastai's `most_confused`); ties keep matrix order. */
export function mostConfused(cm: ConfusionMatrix, options: { limit?: number; minCount?: number } = {}): ConfusedPair[] {
  const pairs: ConfusedPair[] = [];
  cm.matrix.forEach((row, t) =>
    row.forEach((count, p) => {
      if (t !== p && count >= Math.max(1, options.minCount ?? 1)) pairs.push({ actual: cm.labels[t], predicted: cm.labels[p], count });
    }),
  );
  return pairs.sort((a, b) => b.count - a.count).slice(0, options.limit ?? 10);
}
