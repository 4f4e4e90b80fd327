/**
 * Every output path a command writes is checked before any work starts, so a typo or an unwritable place costs a
 * second, not a training run: the path must not be the wrong kind of thing (a folder where a file goes, a file in
 * the way of a folder), and its nearest existing folder must really accept a new file (a probe is created and
 * removed: permission bits do not stop root, but a read-only mount, /proc or a full disk do).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraftError } from '../errors';
import { MODEL_JSON } from '../io/model-folder';
import { GRAFT_JSON } from '../io/graft-json';

/** fs.statSync that answers undefined for any path that cannot be a thing (missing, or under a file). */
function statOf(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/** The nearest existing ancestor of `p` (or `p` itself), and the first component below it that is not a folder. */
function nearestExisting(p: string): { existing: string; blocker?: string } {
  let dir = path.resolve(p);
  for (;;) {
    const stat = statOf(dir);
    if (stat) return stat.isDirectory() ? { existing: dir } : { existing: dir, blocker: dir };
    const parent = path.dirname(dir);
    if (parent === dir) return { existing: dir };
    dir = parent;
  }
}

/** Creates and removes a probe file in `dir`; throws a one-line error naming `flag` when that fails. */
function probeWritable(flag: string, target: string, dir: string): void {
  const probe = path.join(dir, `.graft-write-probe-${process.pid}-${Date.now()}`);
  try {
    fs.writeFileSync(probe, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'EROFS' ? 'is on a read-only file system' : code === 'ENOSPC' ? 'is on a full disk' : `cannot be written (${code})`;
    throw new GraftError(`${flag} ${target}: ${dir} ${why}; choose an output path you can write to.`, { cause: err });
  }
  fs.rmSync(probe, { force: true });
}

/** Checks that the parent folders of `target` exist or can be made, and that the nearest one accepts files. */
function checkParents(flag: string, target: string): void {
  const { existing, blocker } = nearestExisting(path.dirname(path.resolve(target)));
  if (blocker) throw new GraftError(`${flag} ${target}: ${blocker} is a file, not a folder; choose another path.`);
  probeWritable(flag, target, existing);
}

/** Checks a file output (`--out report.json`, `--plot lr.png`) before any work: not a folder, and writable. */
export function checkOutputFile(flag: string, file: string): void {
  const stat = statOf(file);
  if (stat?.isDirectory()) throw new GraftError(`${flag} ${file} is a folder; give a file name (e.g. ${path.join(file, 'out' + (path.extname(file) || '.csv'))}).`);
  checkParents(flag, file);
}

/** Checks a folder output (`--out model-folder`) before any work: not a file, and its parent accepts new entries. */
export function checkOutputFolder(flag: string, dir: string): void {
  const stat = statOf(dir);
  if (stat && !stat.isDirectory()) throw new GraftError(`${flag} ${dir} is a file, not a folder; choose another ${flag}.`);
  // Saves stage a sibling folder and swap it in by rename, so the parent must accept new entries.
  checkParents(flag, dir);
  if (stat) probeWritable(flag, dir, path.resolve(dir));
}

/** Whether `inner` is `outer` or lies inside it (after resolving symlinks of the parts that exist). */
export function isSameOrInside(inner: string, outer: string): boolean {
  const real = (p: string) => {
    const { existing } = nearestExisting(p);
    const rest = path.relative(existing, path.resolve(p));
    return path.join(fs.realpathSync(existing), rest);
  };
  const rel = path.relative(real(outer), real(inner));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Checks the model folder a command will write: beside the path checks, it must not be someone else's model (a
 * `model.json` without `graft.json`) nor the dataset or a folder inside it, unless `force` is given.
 */
export function checkModelOut(flag: string, out: string, options: { data?: readonly (string | undefined)[]; force?: boolean }): void {
  checkOutputFolder(flag, out);
  if (options.force) return;
  if (fs.existsSync(path.join(out, MODEL_JSON)) && !fs.existsSync(path.join(out, GRAFT_JSON))) {
    throw new GraftError(`${flag} ${out} holds a ${MODEL_JSON} that graft did not write (no ${GRAFT_JSON}); choose another ${flag}, or add --force to overwrite it.`);
  }
  for (const data of options.data ?? []) {
    // Image and IDX folders only: a CSV manifest names its images, so a model beside it is never read as one.
    if (typeof data !== 'string' || !statOf(data)?.isDirectory()) continue;
    if (isSameOrInside(out, data)) {
      throw new GraftError(`${flag} ${out} is inside the dataset ${data}; the model would be written into the data (and read as images). Choose a folder outside it, or add --force.`);
    }
  }
}
