/**
 * Turning one row of model scores into a predicted class: argmax (first index on ties, as numpy and tfjs do), or
 * for two-class problems "positive when its score is above the threshold" (Keras' and scikit-learn's `>`).
 */

/** How a prediction is decided from scores. */
export interface DecisionOptions {
  /** For two-class problems: index of the positive class; its score is compared with `threshold`. */
  positiveIndex?: number;
  /** Threshold for the positive class (default 0.5). */
  threshold?: number;
}

/** Predicted class of the row of `classes` scores starting at `offset`. */
export function predictedIndex(scores: ArrayLike<number>, offset: number, classes: number, options: DecisionOptions = {}): number {
  if (options.positiveIndex !== undefined && classes === 2) {
    return scores[offset + options.positiveIndex] > (options.threshold ?? 0.5) ? options.positiveIndex : 1 - options.positiveIndex;
  }
  let best = 0;
  for (let j = 1; j < classes; j++) if (scores[offset + j] > scores[offset + best]) best = j;
  return best;
}
