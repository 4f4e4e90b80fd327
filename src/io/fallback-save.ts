/**
 * The last line of defence for a finished training run: when the model folder cannot be written where it was
 * asked for (the disk filled up, the folder vanished or turned read-only during the run), the model goes to a
 * fallback folder instead and the error says where, so hours of training are never lost to a path.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { GraftError } from '../errors';

/**
 * Where a model that could not be saved to `target` is tried instead, in order: beside the target, in the working
 * folder, in the temp folder.
 */
export function fallbackFolders(target: string, now = new Date()): string[] {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const name = `${path.basename(path.resolve(target))}.rescued-${stamp}`;
  return [path.join(path.dirname(path.resolve(target)), name), path.resolve(`graft-${name}`), path.join(os.tmpdir(), `graft-${name}`)];
}

/**
 * Runs `save(target)`; if it throws, runs `save` on the first fallback folder that works and throws one error
 * naming the failure and where the model is now (or both failures, when no fallback could be written either).
 */
export async function saveWithFallback(target: string, save: (dir: string) => Promise<unknown>, what = 'model'): Promise<void> {
  try {
    await save(target);
    return;
  } catch (err) {
    const reason = firstLine(err);
    for (const dir of fallbackFolders(target)) {
      try {
        await save(dir);
      } catch {
        continue;
      }
      throw new GraftError(`could not write the ${what} to ${target} (${reason}); it was saved to ${dir} instead: move that folder where you want it.`, { cause: err });
    }
    throw new GraftError(`could not write the ${what} to ${target} (${reason}), nor to a fallback folder; free some space or fix the permissions and run again.`, { cause: err });
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0].trim();
}
