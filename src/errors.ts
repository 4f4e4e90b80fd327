/**
 * Errors a user can act on. The CLI prints `message` alone (one line, no stack) and exits non-zero;
 * anything that is not a GraftError is a bug and is printed with its stack under --verbose.
 */
export class GraftError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'GraftError';
    this.exitCode = options.exitCode ?? 1;
  }
}

/**
 * Checks that `value` is one of `valid`, else throws an error that names the option, the value received and
 * the valid values. Every string option in graft goes through here so a typo is never silently ignored.
 */
export function oneOf<T extends string>(option: string, value: unknown, valid: readonly T[]): T {
  if (typeof value === 'string' && (valid as readonly string[]).includes(value)) return value as T;
  throw new GraftError(`${option} must be one of ${valid.join(', ')}; received ${JSON.stringify(value)}.`);
}

/** Parses a positive integer option, or throws naming the option and the value received. */
export function positiveInt(option: string, value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new GraftError(`${option} must be a positive whole number; received ${JSON.stringify(value)}.`);
  }
  return n;
}

/** Parses a finite number option (optionally within [min, max]), or throws naming the option and value. */
export function finiteNumber(option: string, value: unknown, range: { min?: number; max?: number } = {}): number {
  const n = typeof value === 'number' ? value : Number(value);
  const { min = -Infinity, max = Infinity } = range;
  if (typeof value === 'boolean' || value === '' || value === null || !Number.isFinite(n) || n < min || n > max) {
    const bounds = Number.isFinite(min) || Number.isFinite(max) ? ` between ${min} and ${max}` : '';
    throw new GraftError(`${option} must be a number${bounds}; received ${JSON.stringify(value)}.`);
  }
  return n;
}

/** Throws if `options` has keys outside `known`, naming the unknown key and the valid ones. */
export function rejectUnknownKeys(what: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new GraftError(`${what} has no option ${JSON.stringify(key)}; valid options are ${known.join(', ')}.`);
    }
  }
}
