/**
 * Checking a dataset's files before any work starts. `header` reads each file's first bytes (a JavaScript header
 * reader, sharp's metadata for formats it does not know), which finds empty files, non-images and unsupported formats
 * in tens of microseconds per file; damage further into a file shows up when the file is decoded for its batch, and
 * `batches` skips it and reports it then. `decode` decodes every file up front (shrunk on load) as before.
 *
 * Verdicts are cached by path, size and modification time in one small JSON file per dataset under the cache folder,
 * so reopening a dataset costs a `stat` per file. A scan that takes more than a second says how far it is.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { cacheDir } from '../util/cache';
import { writeFileAtomic } from '../io/atomic';
import { parseImageHeader, readHead } from './image-header';
import { decodeFailureReason } from './decode-errors';

/** The checks a scan can run: headers only, or a full (shrunk) decode. */
export type CheckMode = 'header' | 'decode';

/** Options of `checkFiles`. */
export interface CheckFilesOptions {
  /** What to check. */
  mode: CheckMode;
  /** The dataset the files belong to (names the cache file). */
  root: string;
  /** Where the progress line goes after the first second; null for none. */
  log?: ((line: string) => void) | null;
  /** Use and update the verdict cache (default true; `GRAFT_CHECK_CACHE=0` turns it off). */
  cache?: boolean;
}

/** Cached verdicts: [size, mtime in ms, reason or null when the file is fine], by absolute path. */
type CacheEntries = Record<string, [number, number, string | null]>;

const CACHE_VERSION = 1;
/** Images up to this many pixels are verified by a plain decode. */
const SMALL_IMAGE = 256 * 256;
/** Seconds of silence before a scan says how far it is. */
const QUIET_SECONDS = 1;

/** Where a dataset's verdicts are kept. */
export function checkCacheFile(root: string, mode: CheckMode): string {
  const key = createHash('sha1').update(`${path.resolve(root)}\n${mode}`).digest('hex').slice(0, 20);
  return path.join(cacheDir(), 'checks', `${key}.json`);
}

/**
 * Checks every file; returns null for a usable file, else the reason it is not (see `decodeFailureReason`).
 * Reads are synchronous and small in `header` mode (a 4 KB read is cheaper than a promise per file); sharp's checks
 * run eight at a time on its threads.
 */
export async function checkFiles(files: readonly string[], options: CheckFilesOptions): Promise<Array<string | null>> {
  const useCache = options.cache ?? process.env.GRAFT_CHECK_CACHE !== '0';
  const cacheFile = checkCacheFile(options.root, options.mode);
  const cached: CacheEntries = useCache ? readCache(cacheFile) : {};
  const fresh: CacheEntries = {};
  const verdicts = new Array<string | null>(files.length);
  const stats = new Array<fs.Stats | undefined>(files.length);
  const needSharp: number[] = [];
  const started = performance.now();
  const progress = progressLine(files.length, started, options.log);
  for (let i = 0; i < files.length; i++) {
    if ((i & 255) === 255) progress(i);
    const file = files[i];
    const st = fs.statSync(file, { throwIfNoEntry: false });
    stats[i] = st;
    const hit = st && cached[file];
    if (hit && hit[0] === st.size && hit[1] === st.mtimeMs) {
      verdicts[i] = hit[2];
      continue;
    }
    if (options.mode === 'header' && st && st.size > 0) {
      try {
        if (parseImageHeader(readHead(file))) {
          verdicts[i] = null;
          continue;
        }
      } catch {
        // unreadable: sharp says why, in the words users already see
      }
    }
    needSharp.push(i);
  }
  let next = 0;
  let done = files.length - needSharp.length;
  const worker = async () => {
    while (next < needSharp.length) {
      const i = needSharp[next++];
      verdicts[i] = await sharpVerdict(files[i], options.mode);
      progress(++done);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  progress(files.length, true);
  if (useCache) {
    let changed = false;
    for (let i = 0; i < files.length; i++) {
      const st = stats[i];
      if (!st) continue;
      fresh[files[i]] = [st.size, st.mtimeMs, verdicts[i]];
      const old = cached[files[i]];
      if (!old || old[0] !== st.size || old[1] !== st.mtimeMs || old[2] !== verdicts[i]) changed = true;
    }
    if (changed || Object.keys(cached).length !== Object.keys(fresh).length) {
      // A cache that cannot be written only costs speed next time.
      await writeFileAtomic(cacheFile, JSON.stringify({ version: CACHE_VERSION, entries: fresh })).catch(() => undefined);
    }
  }
  return verdicts;
}

/** The scan sharp runs for files the header reader did not vouch for (and for every file in `decode` mode). */
async function sharpVerdict(source: string, mode: CheckMode): Promise<string | null> {
  try {
    const img = sharp(source, { failOn: 'warning' });
    const m = await img.metadata();
    if (!m.width || !m.height) throw new Error('no image size');
    if (mode === 'decode') {
      // Small images decode whole (a resize costs more than they do); large ones shrink on load so eight checks at
      // once never hold eight full-size photos.
      await (m.width * m.height <= SMALL_IMAGE ? img : img.resize(16, 16, { fit: 'fill', fastShrinkOnLoad: true })).raw().toBuffer();
    }
    return null;
  } catch (err) {
    return decodeFailureReason(err, source);
  }
}

function readCache(file: string): CacheEntries {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    return parsed?.version === CACHE_VERSION && parsed.entries && typeof parsed.entries === 'object' ? parsed.entries : {};
  } catch {
    return {};
  }
}

/** A progress reporter that stays silent for the first second, then writes a line every few seconds and at the end. */
function progressLine(total: number, started: number, log: ((line: string) => void) | null | undefined): (done: number, last?: boolean) => void {
  const write = log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : log;
  let lastShown = -Infinity;
  return (done, last = false) => {
    if (!write) return;
    const seconds = (performance.now() - started) / 1000;
    if (seconds < QUIET_SECONDS || (!last && seconds - lastShown < 3)) return;
    lastShown = seconds;
    write(`graft: checking images: ${done}/${total} files, ${seconds.toFixed(1)} s`);
  };
}
