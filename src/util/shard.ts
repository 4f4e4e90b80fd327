/**
 * Splitting a job into shards any job runner can reproduce (a Kubernetes Indexed Job, a Slurm array): shard i of n
 * takes every n-th item from position i-1, so shards are disjoint, cover everything, and stay balanced.
 */
import { GraftError, positiveInt } from '../errors';

/** Parses `i/n` (1 <= i <= n) into a 0-based shard index and count. */
export function parseShard(value: string | { index: number; count: number }): { index: number; count: number } {
  if (typeof value === 'object') return { index: value.index, count: positiveInt('shard count', value.count) };
  const m = /^(\d+)\/(\d+)$/.exec(String(value).trim());
  if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) {
    throw new GraftError(`--shard must be i/n with 1 <= i <= n (e.g. 2/8 for the second of eight shards); received ${JSON.stringify(value)}.`);
  }
  return { index: Number(m[1]) - 1, count: Number(m[2]) };
}

/** Every `count`-th item from position `index`: a deterministic split any job runner can reproduce. */
export function shardItems<T>(items: readonly T[], shard: { index: number; count: number } | null): T[] {
  return shard ? items.filter((_, i) => i % shard.count === shard.index) : items.slice();
}


/** How many of `total` items shard `shard` takes (what `shardItems` would return the length of). */
export function shardCount(total: number, shard: { index: number; count: number }): number {
  return shard.index < total ? Math.floor((total - 1 - shard.index) / shard.count) + 1 : 0;
}
