import seedrandom from 'seedrandom';

/**
 * One seeded generator per run. Callers draw every random parameter from it first and apply them after,
 * so the same seed reproduces a run byte for byte whatever order the work is then done in.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Integer uniform in [0, n). */
  int(n: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** Standard normal draw (Box-Muller). */
  normal(): number;
  /** Fisher-Yates shuffle of a copy of `items`. */
  shuffle<T>(items: readonly T[]): T[];
  /** A new independent generator derived from this one (for per-epoch or per-worker streams). */
  fork(label: string | number): Rng;
}

/** Creates a generator from a seed; equal seeds give equal streams. */
export function createRng(seed: number | string): Rng {
  const base = String(seed);
  const prng = seedrandom(base);
  const rng: Rng = {
    next: () => prng.quick(),
    uniform: (lo, hi) => lo + (hi - lo) * prng.quick(),
    int: (n) => Math.floor(prng.quick() * n),
    chance: (p) => p >= 1 || (p > 0 && prng.quick() < p),
    normal: () => {
      const u = 1 - prng.quick();
      const v = prng.quick();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    shuffle: (items) => {
      const out = items.slice();
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(prng.quick() * (i + 1));
        [out[i], out[j]] = [out[j], out[i]];
      }
      return out;
    },
    fork: (label) => createRng(`${base}/${label}`),
  };
  return rng;
}
