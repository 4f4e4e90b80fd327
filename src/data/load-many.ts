/**
 * Loading a list of loose image files for commands that take them one by one (predict, features): an unreadable
 * file is skipped and named with the same wording as the dataset scan, never the end of the run.
 */
import { GraftError } from '../errors';
import { decodeFailureReason, skippedFilesLine } from './decode-errors';
import { InputShape, loadImage } from './image';

/** A file that could not be used, and why. */
export interface UnusableFile {
  /** The file. */
  source: string;
  /** Why, in a few words ("truncated JPEG", "empty file"). */
  reason: string;
}

/** Loads each file (raw 0..255 HWC pixels) in parallel; a file that fails gives null and an entry in `skipped`. */
export async function loadImagesSkipping(files: readonly string[], inputShape: InputShape, skipped: UnusableFile[]): Promise<Array<Float32Array | null>> {
  return Promise.all(
    files.map((f) =>
      loadImage(f, { inputShape }).catch((err: unknown) => {
        skipped.push({ source: f, reason: decodeFailureReason((err as GraftError)?.cause ?? err, f) });
        return null;
      }),
    ),
  );
}

/** After a run over loose files: an error naming them under `strict`, else one warning line (when any were skipped). */
export function reportUnusable(skipped: readonly UnusableFile[], options: { strict?: boolean; log?: ((line: string) => void) | null }): void {
  if (!skipped.length) return;
  if (options.strict) throw new GraftError(`${skippedFilesLine('', skipped).replace(/^skipped/, 'cannot use')}. Fix or remove them, or drop --strict to skip them.`);
  const log = options.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : options.log;
  log?.(`graft: warning: ${skippedFilesLine('', skipped)}`);
}
