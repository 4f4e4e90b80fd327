/**
 * Top-k accuracy, ranking ties as scikit-learn's `top_k_accuracy_score` does (a stable ascending sort reversed, so
 * among equal scores the higher class index ranks first). Hit counts are integers and add across shards.
 */
import { GraftError } from '../errors';

/** Rank (0 = best) of class `label` in one row of scores. */
export function rankOf(scores: ArrayLike<number>, offset: number, classes: number, label: number): number {
  const s = scores[offset + label];
  let rank = 0;
  for (let j = 0; j < classes; j++) {
    const v = scores[offset + j];
    if (v > s || (v === s && j > label)) rank++;
  }
  return rank;
}

/** Counts, for each k in `ks`, the samples whose true class is among the k best-scored ones. */
export function topKHits(scores: ArrayLike<number>, labels: ArrayLike<number>, classes: number, ks: readonly number[]): number[] {
  if (scores.length !== labels.length * classes) {
    throw new GraftError(`top-k needs ${labels.length} x ${classes} scores; received ${scores.length}.`);
  }
  const hits = ks.map(() => 0);
  for (let i = 0; i < labels.length; i++) {
    const rank = rankOf(scores, i * classes, classes, labels[i]);
    ks.forEach((k, n) => (hits[n] += Number(rank < k)));
  }
  return hits;
}

/** The `k` best classes of one row, best first (same tie order as `rankOf`). */
export function topClasses(scores: ArrayLike<number>, offset: number, classes: number, k: number): number[] {
  const order = Array.from({ length: classes }, (_, j) => j);
  order.sort((a, b) => scores[offset + b] - scores[offset + a] || b - a);
  return order.slice(0, Math.min(k, classes));
}
