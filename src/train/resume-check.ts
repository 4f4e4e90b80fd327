/**
 * What `--resume` must agree on: the settings that shape the model, the data order or the optimisation. They are
 * stored in the checkpoint, and a resumed run that differs in any of them is refused naming the flag, since it
 * would silently continue a different run (a resnet50 resumed under `--arch simple_cnn`, a new `--lr`).
 */
import { GraftError } from '../errors';
import { flagFor } from './options';

/** Options whose change makes a resumed run a different run. */
export const RESUME_KEYS = [
  'arch', 'weights', 'inputSize', 'inputShape', 'head', 'simpleCnn', 'val', 'valSplit', 'epochs', 'headEpochs', 'unfreeze',
  'gradual', 'lr', 'fineTuneLr', 'lrMult', 'groupLr', 'optimizer', 'momentum', 'nesterov', 'weightDecay', 'schedule', 'warmup',
  'augment', 'batchSize', 'seed', 'labelSmoothing', 'classWeights', 'clipNorm', 'earlyStopping', 'reduceOnPlateau', 'monitor',
  'saveBest', 'trainBn', 'stages',
] as const;

/** The resume-relevant settings of a run, as stored in its checkpoint (absent options as null). */
export function resumeSettings(options: object): Record<string, unknown> {
  const o = options as Record<string, unknown>;
  return Object.fromEntries(RESUME_KEYS.map((k) => [k, o[k] === undefined ? null : o[k]]));
}

const show = (v: unknown) => (v === null ? '(not given)' : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * Throws naming every flag whose value differs from the checkpoint's. `savedArch` (the checkpoint model's
 * architecture) also catches checkpoints written before settings were stored.
 */
export function checkResumeSettings(
  saved: Record<string, unknown> | undefined,
  options: object,
  context: { checkpoint: string; savedArch?: string },
): void {
  const now = resumeSettings(options);
  const diffs: string[] = [];
  const arch = now.arch;
  if (typeof arch === 'string' && context.savedArch && arch !== context.savedArch) {
    diffs.push(`--arch ${arch} (the checkpoint has ${context.savedArch})`);
  }
  if (saved) {
    for (const key of RESUME_KEYS) {
      if (key === 'arch' && diffs.length) continue;
      if (JSON.stringify(saved[key] ?? null) !== JSON.stringify(now[key])) diffs.push(`${flagFor(key)} ${show(now[key])} (the checkpoint has ${show(saved[key] ?? null)})`);
    }
  }
  if (diffs.length) {
    throw new GraftError(
      `--resume: this run differs from the checkpoint in ${context.checkpoint}: ${diffs.join('; ')}; resume with the same settings, or train without --resume to start afresh.`,
    );
  }
}
