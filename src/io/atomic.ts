import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HOST_TAG, removeStaleStaging } from './stale';

/** A sibling path unique to this process and call, used to stage a write before it is renamed into place. */
export function stagingPath(target: string, kind: 'tmp' | 'old' = 'tmp'): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${kind}-${process.pid}-${HOST_TAG}-${randomBytes(4).toString('hex')}`);
}

/** Writes a file and flushes it to disk before returning, so a rename that follows never exposes a partial file. */
export async function writeFileSynced(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.promises.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a file so a reader (or a crash) only ever sees the old or the new content, never a part. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await fs.promises.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  removeStaleStaging(file);
  const tmp = stagingPath(file);
  try {
    await writeFileSynced(tmp, data);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}
