/**
 * Cleaning up after killed saves. Every atomic write stages `.<name>.tmp-<pid>-<host>-<random>` (and a swap parks
 * the previous folder as `.<name>.old-...`) beside its target; a process killed mid-save leaves them behind. They
 * are removed on the next save or load of that target once it is certain they are stale: written on this machine
 * by a process that no longer runs. Staging from another machine (a shared disk) is only removed after a day.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

/** A short tag of this machine's name, part of every staging name so other machines' live saves are recognised. */
export const HOST_TAG = createHash('sha1').update(os.hostname()).digest('hex').slice(0, 6);

/** Staging written by another machine is left alone for this long (its process cannot be checked from here). */
const FOREIGN_STALE_MS = 24 * 3600 * 1000;

/** Whether process `pid` runs on this machine (EPERM: it runs, as another user). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The staging siblings of `target` left by processes that are gone (full paths); none when unsure. */
export function staleStaging(target: string): string[] {
  const abs = path.resolve(target);
  const parent = path.dirname(abs);
  const prefix = `.${path.basename(abs)}.`;
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return [];
  }
  const pattern = /^(tmp|old)-(\d+)-(?:([0-9a-f]{6})-)?([0-9a-f]{8})$/;
  const out: string[] = [];
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const m = pattern.exec(e.slice(prefix.length));
    if (!m) continue;
    const full = path.join(parent, e);
    const host = m[3] ?? HOST_TAG;
    if (host === HOST_TAG) {
      if (!alive(Number(m[2]))) out.push(full);
    } else {
      const mtime = fs.statSync(full, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
      if (Date.now() - mtime > FOREIGN_STALE_MS) out.push(full);
    }
  }
  return out;
}

/** Removes the stale staging of `target` (see `staleStaging`); failures are ignored, the next call tries again. */
export function removeStaleStaging(target: string): string[] {
  const stale = staleStaging(target);
  for (const p of stale) {
    try {
      fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // Not ours to fail over: a read-only parent keeps its litter, and the save or load goes on.
    }
  }
  return stale;
}
