/**
 * Learning-rate schedules as pure functions of training progress in [0, 1] returning a multiplier of the base rate
 * (fastai's `schedule.py` model): the loop multiplies each group's rate by `schedule(progress)`. Because they are
 * pure, resuming at step k only needs k.
 */
import { GraftError, finiteNumber, oneOf, rejectUnknownKeys } from '../errors';

/** A schedule: progress in [0, 1] -> learning-rate multiplier. */
export type Schedule = (progress: number) => number;

/** Schedule kinds graft knows. */
export const SCHEDULES = ['constant', 'step', 'cosine', 'one-cycle'] as const;
/** A schedule kind. */
export type ScheduleName = (typeof SCHEDULES)[number];

/** A schedule description (the form configs and the CLI use). */
export interface ScheduleConfig {
  /** Which shape. */
  type: ScheduleName;
  /** Fraction of training spent in a linear warm-up from 0 (composes with any type; default 0). */
  warmup?: number;
  /** step: progress points where the rate is multiplied by `gamma` (default [0.5, 0.75]). */
  milestones?: number[];
  /** step: factor applied at each milestone (default 0.1). */
  gamma?: number;
  /** cosine / one-cycle: final multiplier (default 0 for cosine, 1e-5 for one-cycle as fastai's div_final 1e5). */
  final?: number;
  /** one-cycle: fraction spent rising (default 0.25, fastai's pct_start). */
  pctStart?: number;
  /** one-cycle: start multiplier is 1/div (default 25). */
  div?: number;
}

const KEYS = ['type', 'warmup', 'milestones', 'gamma', 'final', 'pctStart', 'div'] as const;

/** Cosine interpolation from `start` to `end` as `p` goes 0 -> 1 (fastai `SchedCos`). */
export function cosineBetween(start: number, end: number, p: number): number {
  return start + ((1 + Math.cos(Math.PI * (1 - p))) * (end - start)) / 2;
}

/** Always 1. */
export function constantSchedule(): Schedule {
  return () => 1;
}

/** Multiplies by `gamma` at each milestone passed. */
export function stepSchedule(milestones: number[] = [0.5, 0.75], gamma = 0.1): Schedule {
  return (p) => gamma ** milestones.filter((m) => p >= m).length;
}

/** Cosine decay from 1 to `final`. */
export function cosineSchedule(final = 0): Schedule {
  return (p) => cosineBetween(1, final, p);
}

/** One cycle: cosine up from 1/div to 1 over `pctStart`, then cosine down to `final` (fastai `fit_one_cycle`). */
export function oneCycleSchedule(options: { pctStart?: number; div?: number; final?: number } = {}): Schedule {
  const { pctStart = 0.25, div = 25, final = 1e-5 } = options;
  return (p) => (p < pctStart ? cosineBetween(1 / div, 1, p / pctStart) : cosineBetween(1, final, (p - pctStart) / (1 - pctStart)));
}

/** Linear warm-up from 0 over the first `fraction` of training, multiplying `inner`. */
export function withWarmup(inner: Schedule, fraction: number): Schedule {
  if (!(fraction > 0)) return inner;
  return (p) => Math.min(1, p / fraction) * inner(p);
}

/** Validates a schedule config and builds the function. Accepts a bare name. */
export function makeSchedule(raw: ScheduleConfig | ScheduleName | string): Schedule {
  const config = scheduleConfig(raw);
  const inner = {
    constant: () => constantSchedule(),
    step: () => stepSchedule(config.milestones, config.gamma),
    cosine: () => cosineSchedule(config.final),
    'one-cycle': () => oneCycleSchedule(config),
  }[config.type]();
  return withWarmup(inner, config.warmup ?? 0);
}

/** Checks a schedule config (unknown keys and values are errors). */
export function scheduleConfig(raw: ScheduleConfig | string): ScheduleConfig {
  const config = (typeof raw === 'string' ? { type: raw } : raw) as ScheduleConfig;
  rejectUnknownKeys('schedule', config, KEYS);
  const type = oneOf('schedule', config.type, SCHEDULES);
  const frac = (key: 'warmup' | 'pctStart', v: unknown) => (v === undefined ? undefined : finiteNumber(`schedule ${key}`, v, { min: 0, max: 1 }));
  const milestones = config.milestones;
  if (milestones !== undefined && (!Array.isArray(milestones) || milestones.some((m) => !(m >= 0 && m <= 1)))) {
    throw new GraftError(`schedule milestones must be progress fractions in [0, 1]; received ${JSON.stringify(milestones)}.`);
  }
  return {
    ...config,
    type,
    warmup: frac('warmup', config.warmup),
    pctStart: frac('pctStart', config.pctStart),
    gamma: config.gamma === undefined ? undefined : finiteNumber('schedule gamma', config.gamma, { min: 0 }),
    div: config.div === undefined ? undefined : finiteNumber('schedule div', config.div, { min: 1 }),
    final: config.final === undefined ? undefined : finiteNumber('schedule final', config.final, { min: 0 }),
  };
}
