/**
 * Finding the images of a dataset: an image folder (one subfolder per class), a CSV manifest (`path,label`) or
 * IDX files. Opening a dataset only lists and checks files; pixels are decoded later, batch by batch.
 * Nothing is ever written into the dataset's folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { GraftError, oneOf, rejectUnknownKeys } from '../errors';
import { createRng } from '../util/rng';
import { findIdxPair, idxSource, readIdx } from './idx';
import { firstLine } from './image';
import { checkFiles } from './file-checks';

/** One image and its class index. */
export interface Sample {
  /** File path, or `idx:<images file>#<index>` for an image inside an IDX file. */
  source: string;
  /** Index into the dataset's `classNames`. */
  label: number;
}

/** A file that was left out, and why. */
export interface SkippedFile {
  /** The file (or class folder) left out. */
  source: string;
  /** Why, in a few words. */
  reason: string;
}

/** A list of labelled images. */
export interface Dataset {
  /** The folder, manifest or IDX file the dataset came from. */
  root: string;
  /** Which form `root` is. */
  kind: DatasetKind;
  /** Class names in label order (sorted, unless the caller fixed the order). */
  classNames: string[];
  /** The usable images. */
  samples: Sample[];
  /** Files and class folders left out. */
  skipped: SkippedFile[];
}

/** The dataset forms `openDataset` reads. */
export const DATASET_KINDS = ['folder', 'csv', 'idx'] as const;
/** One of `DATASET_KINDS`. */
export type DatasetKind = (typeof DATASET_KINDS)[number];

/** How thoroughly files are checked when a dataset is opened. */
export const VERIFY_MODES = ['decode', 'header', 'none'] as const;
/**
 * `header` (the default) reads each file's header: empty files, non-images and unsupported formats are skipped up
 * front, and a file damaged further in is skipped (and reported) when its batch decodes it. `decode` decodes every
 * file up front (shrunk on load), so the report is complete before any work starts. `none` trusts the listing.
 */
export type VerifyMode = (typeof VERIFY_MODES)[number];

/** Options of `openDataset`. */
export interface OpenDatasetOptions {
  /** Make skipped files and empty class folders an error instead of a warning. */
  strict?: boolean;
  /** Fix the classes and their order (e.g. a trained model's classes); classes not listed are an error. */
  classNames?: string[];
  /** How files are checked (default `header`; `decode` finds truncated images before any work starts). */
  verify?: VerifyMode;
  /** For IDX folders: which split to read (default `train`). */
  split?: 'train' | 'test';
  /** Where the one warning about skipped files goes; null silences it. Default: stderr. */
  log?: ((line: string) => void) | null;
}

const OPEN_KEYS = ['strict', 'classNames', 'verify', 'split', 'log'];

/** File name endings treated as images in a folder (everything sharp decodes here). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heif', '.heic', '.bmp'];

/** Files that are never images and never worth a warning (OS litter, notes). */
const IGNORED = /^(\.|thumbs\.db$|desktop\.ini$|readme|licen[cs]e)/i;

/**
 * Opens a dataset from an image folder, a CSV manifest (`path,label`; paths relative to the CSV) or IDX files
 * (a folder holding `train-images-idx3-ubyte(.gz)` etc., or one images file). Unreadable files and empty class
 * folders are skipped and reported in one warning (`strict` makes that an error); fewer than two classes is an error.
 */
export async function openDataset(spec: string, options: OpenDatasetOptions = {}): Promise<Dataset> {
  rejectUnknownKeys('openDataset', options, OPEN_KEYS);
  const verify = oneOf('verify', options.verify ?? 'header', VERIFY_MODES);
  const split = oneOf('split', options.split ?? 'train', ['train', 'test'] as const);
  const root = path.resolve(spec);
  const stat = await fs.promises.stat(root).catch(() => null);
  if (!stat) throw new GraftError(`dataset ${spec} does not exist; give an image folder (one subfolder per class), a CSV manifest or IDX files.`);
  let ds: Dataset;
  if (stat.isDirectory()) {
    ds = isIdxFolder(root) ? openIdx(findIdxPair(root, split).images, root, options.classNames) : await openFolder(root, options.classNames);
  } else if (root.toLowerCase().endsWith('.csv')) {
    ds = await openCsv(root, options.classNames);
  } else if (/idx3-ubyte(\.gz)?$/i.test(root)) {
    ds = openIdx(root, root, options.classNames);
  } else {
    throw new GraftError(`dataset ${spec} is a file but not a .csv manifest or an *-idx3-ubyte(.gz) IDX file; give a folder, a CSV or IDX files.`);
  }
  if (ds.kind !== 'idx' && verify !== 'none') await verifyFiles(ds, verify, options.log);
  reportStates.set(ds.skipped, { strict: Boolean(options.strict), log: options.log, pending: false });
  finishChecks(ds, options);
  return ds;
}

function isIdxFolder(dir: string): boolean {
  return fs.readdirSync(dir).some((f) => /-idx3-ubyte(\.gz)?$/.test(f));
}

async function openFolder(root: string, fixed?: string[]): Promise<Dataset> {
  const entries = (await fs.promises.readdir(root, { withFileTypes: true })).filter((e) => !IGNORED.test(e.name));
  // A symlinked class folder is a class like any other.
  const folders = entries.filter((e) => isFolder(root, e)).map((e) => e.name).sort();
  const loose = entries.filter((e) => !isFolder(root, e) && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase()));
  if (!folders.length) {
    throw new GraftError(`dataset folder ${root} has no class subfolders; put each class's images in its own subfolder (e.g. ${root}/cat/1.jpg).`);
  }
  const classNames = fixedClasses(folders, fixed, root);
  const ds: Dataset = { root, kind: 'folder', classNames, samples: [], skipped: [] };
  for (const e of loose) ds.skipped.push({ source: path.join(root, e.name), reason: 'image outside any class folder' });
  for (const name of folders) {
    const files = await listImages(path.join(root, name), ds.skipped, new Set([fs.realpathSync(root)]));
    if (!files.length) ds.skipped.push({ source: path.join(root, name), reason: 'empty class folder' });
    for (const f of files) ds.samples.push({ source: f, label: classNames.indexOf(name) });
  }
  return ds;
}

/** Whether a folder entry is a folder, following a symlink (a dangling link is not). */
function isFolder(dir: string, e: fs.Dirent): boolean {
  if (e.isDirectory()) return true;
  return e.isSymbolicLink() && (fs.statSync(path.join(dir, e.name), { throwIfNoEntry: false })?.isDirectory() ?? false);
}

/**
 * Lists images under a class folder (nested folders included, sorted so the order never depends on the disk),
 * following symlinked folders; `ancestors` holds the real paths above, so a link back up is skipped, not looped.
 */
async function listImages(dir: string, skipped: SkippedFile[], ancestors: Set<string>): Promise<string[]> {
  const out: string[] = [];
  const real = fs.realpathSync(dir);
  if (ancestors.has(real)) {
    skipped.push({ source: dir, reason: `symlink loop (back to ${real})` });
    return out;
  }
  const below = new Set(ancestors).add(real);
  const entries = (await fs.promises.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    if (IGNORED.test(e.name)) continue;
    const full = path.join(dir, e.name);
    if (isFolder(dir, e)) out.push(...(await listImages(full, skipped, below)));
    else if (IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) out.push(full);
    else skipped.push({ source: full, reason: 'not an image file name' });
  }
  return out;
}

function fixedClasses(found: string[], fixed: string[] | undefined, root: string): string[] {
  if (!fixed) return found;
  const unknown = found.filter((c) => !fixed.includes(c));
  if (unknown.length) {
    throw new GraftError(`dataset ${root} has classes ${unknown.join(', ')} that are not among ${fixed.join(', ')}; use data with the model's classes.`);
  }
  return fixed.slice();
}

async function openCsv(file: string, fixed?: string[]): Promise<Dataset> {
  let rows: string[][];
  try {
    rows = parseCsv(await fs.promises.readFile(file), { skip_empty_lines: true, trim: true, relax_column_count: true }) as string[][];
  } catch (err) {
    throw new GraftError(`cannot parse CSV manifest ${file}: ${firstLine(err)}; expected lines of path,label.`, { cause: err });
  }
  const dir = path.dirname(file);
  // A first row naming columns (path,label or e.g. filename,class) is a header: it does not name an image file.
  const first = rows[0];
  const isHeader =
    first &&
    ((first[0]?.toLowerCase() === 'path' && first[1]?.toLowerCase() === 'label') ||
      (!IMAGE_EXTENSIONS.includes(path.extname(first[0] ?? '').toLowerCase()) && !fs.existsSync(path.resolve(dir, first[0] ?? ''))));
  if (isHeader) rows = rows.slice(1);
  const bad = rows.findIndex((r) => r.length < 2 || !r[0] || !r[1]);
  if (bad >= 0) {
    throw new GraftError(`CSV manifest ${file} row ${bad + 1} is ${JSON.stringify(rows[bad].join(','))}; every row needs path,label.`);
  }
  const classNames = fixedClasses([...new Set(rows.map((r) => r[1]))].sort(), fixed, file);
  const ds: Dataset = { root: file, kind: 'csv', classNames, samples: [], skipped: [] };
  const lineOf = (i: number) => i + 1 + (isHeader ? 1 : 0);
  const firstRow = new Map<string, number>();
  const conflicts: string[] = [];
  rows.forEach(([p, label], i) => {
    const source = path.resolve(dir, p);
    const seen = firstRow.get(source);
    if (seen !== undefined) {
      // The same image twice would land in both train and validation; under two labels it is a contradiction.
      if (rows[seen][1] !== label) conflicts.push(`${p} is ${rows[seen][1]} on line ${lineOf(seen)} and ${label} on line ${lineOf(i)}`);
      else ds.skipped.push({ source, reason: `listed again on line ${lineOf(i)} (first on line ${lineOf(seen)}); the repeat is dropped` });
      return;
    }
    firstRow.set(source, i);
    if (!fs.existsSync(source)) ds.skipped.push({ source, reason: 'file listed in the manifest does not exist' });
    else ds.samples.push({ source, label: classNames.indexOf(label) });
  });
  if (conflicts.length) {
    const shown = conflicts.slice(0, 5).join('; ') + (conflicts.length > 5 ? `; and ${conflicts.length - 5} more` : '');
    throw new GraftError(`CSV manifest ${file} gives ${conflicts.length} image${conflicts.length > 1 ? 's' : ''} two labels: ${shown}. Keep one label per image (multi-label data needs its own format).`);
  }
  return ds;
}

function openIdx(imagesFile: string, root: string, fixed?: string[]): Dataset {
  const labelsFile = imagesFile.replace(/images([-.])idx3/, 'labels$1idx1');
  if (labelsFile === imagesFile || !fs.existsSync(labelsFile)) {
    throw new GraftError(`IDX images file ${imagesFile} has no labels file beside it (expected ${labelsFile}).`);
  }
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  if (labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
    throw new GraftError(`${labelsFile} has shape [${labels.shape.join(', ')}] but ${imagesFile} holds ${images.shape[0]} images; the files do not belong together.`);
  }
  const numClasses = labels.data.reduce((m, v) => Math.max(m, v), 0) + 1;
  const classNames = fixed ?? Array.from({ length: numClasses }, (_, i) => String(i));
  if (numClasses > classNames.length) {
    throw new GraftError(`${labelsFile} has labels up to ${numClasses - 1} but ${classNames.length} class names were given; give one name per label.`);
  }
  const samples = Array.from(labels.data, (label, i) => ({ source: idxSource(imagesFile, i), label }));
  return { root, kind: 'idx', classNames, samples, skipped: [] };
}

/** Checks every file (see `checkFiles`) and moves failures to `skipped`. */
async function verifyFiles(ds: Dataset, mode: 'header' | 'decode', log: OpenDatasetOptions['log']): Promise<void> {
  const verdicts = await checkFiles(ds.samples.map((s) => s.source), { mode, root: ds.root, log });
  verdicts.forEach((reason, i) => {
    if (reason !== null) ds.skipped.push({ source: ds.samples[i].source, reason });
  });
  ds.samples = ds.samples.filter((_, i) => verdicts[i] === null);
}

/** How a dataset reports files that fail later, when their batch decodes them. Keyed by the `skipped` array, which
 * every view of a dataset (a split's training part, evaluate's relabelled copy) shares. */
interface ReportState {
  strict: boolean;
  log: OpenDatasetOptions['log'];
  /** Files were skipped at batch time since the last report. */
  pending: boolean;
}
const reportStates = new WeakMap<SkippedFile[], ReportState>();

/** The one-line list of skipped files the warning and the strict error share. */
function skippedList(ds: Dataset): string {
  const list = ds.skipped.map((s) => `${s.source} (${s.reason})`);
  return list.slice(0, 10).join('; ') + (list.length > 10 ? `; and ${list.length - 10} more` : '');
}

function strictError(ds: Dataset): GraftError {
  return new GraftError(`dataset ${ds.root}: ${ds.skipped.length} files or folders are unusable: ${skippedList(ds)}. Fix or remove them, or drop --strict to skip them.`);
}

/**
 * Records a file that failed to decode when its batch was built. It joins `skipped` (once, however many epochs
 * meet it) and is reported by `reportLateSkips` in the same warning as the files skipped when the dataset was
 * opened; a strict dataset throws here instead, naming the file. Returns whether the file was new.
 */
export function skipLate(ds: Dataset, source: string, reason: string): boolean {
  if (ds.skipped.some((s) => s.source === source)) return false;
  const state = reportStates.get(ds.skipped) ?? { strict: false, log: undefined, pending: false };
  reportStates.set(ds.skipped, state);
  if (state.strict) {
    throw new GraftError(`dataset ${ds.root}: 1 files or folders are unusable: ${source} (${reason}). Fix or remove them, or drop --strict to skip them.`);
  }
  ds.skipped.push({ source, reason });
  state.pending = true;
  return true;
}

/** Sets where files skipped at batch time are reported, for a dataset built by hand rather than opened. */
export function setLateLog(ds: Dataset, log: ((line: string) => void) | null | undefined, options: { strict?: boolean } = {}): void {
  reportStates.set(ds.skipped, { strict: Boolean(options.strict), log, pending: false });
}

/** Writes the skipped-files warning again, now complete, if files were skipped at batch time since the last one. */
export function reportLateSkips(ds: Dataset): void {
  const state = reportStates.get(ds.skipped);
  if (!state?.pending) return;
  state.pending = false;
  const log = state.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : state.log;
  log?.(skipWarning(ds));
}

function skipWarning(ds: Dataset): string {
  return `graft: warning: skipped ${ds.skipped.length} unusable files or folders in ${ds.root}: ${skippedList(ds)}`;
}

function finishChecks(ds: Dataset, options: OpenDatasetOptions): void {
  if (ds.skipped.length) {
    if (options.strict) throw strictError(ds);
    const log = options.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : options.log;
    log?.(skipWarning(ds));
  }
  const used = new Set(ds.samples.map((s) => s.label));
  if (!options.classNames && used.size < ds.classNames.length) {
    // A class whose folder is empty (or whose files all failed) is not a class of this dataset: drop it and
    // renumber, rather than train an output that can never be right. With fixed classes the order is the contract.
    const kept = ds.classNames.filter((_, l) => used.has(l));
    const relabel = new Map([...used].map((l) => [l, kept.indexOf(ds.classNames[l])]));
    ds.samples = ds.samples.map((s) => ({ ...s, label: relabel.get(s.label)! }));
    ds.classNames = kept;
  }
  if (used.size < 2) {
    throw new GraftError(
      `dataset ${ds.root} has ${used.size} class${used.size === 1 ? '' : 'es'} with images (${[...used].map((l) => ds.classNames[l]).join(', ') || 'none'}); a classifier needs at least two.`,
    );
  }
}

/** Options of `splitDataset`. */
export interface SplitDatasetOptions {
  /** Fraction of each class held out for validation, in (0, 1). */
  validationFraction?: number;
  /** Seed of the split (the same seed always holds out the same files). */
  seed?: number | string;
  /** An explicit validation set (folder, manifest or IDX); overrides the fraction and keeps all of `ds` for training. */
  validation?: string | Dataset;
  /** Options used to open `validation` when it is a path (its classes are fixed to `ds.classNames`). */
  open?: Omit<OpenDatasetOptions, 'classNames'>;
}

/** Per-class (stratified) train / validation split by fraction and seed, or an explicit validation set. */
export async function splitDataset(ds: Dataset, options: SplitDatasetOptions): Promise<{ train: Dataset; validation: Dataset }> {
  rejectUnknownKeys('splitDataset', options, ['validationFraction', 'seed', 'validation', 'open']);
  if (options.validation !== undefined) {
    const validation =
      typeof options.validation === 'string'
        ? await openDataset(options.validation, { ...options.open, classNames: ds.classNames })
        : options.validation;
    if (validation.classNames.join('\n') !== ds.classNames.join('\n')) {
      throw new GraftError(`validation set ${validation.root} has classes ${validation.classNames.join(', ')}; expected ${ds.classNames.join(', ')}.`);
    }
    return { train: ds, validation };
  }
  const fraction = options.validationFraction;
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1)) {
    throw new GraftError(`validationFraction must be a number between 0 and 1 (exclusive); received ${JSON.stringify(fraction)}. Or give a validation folder.`);
  }
  const rng = createRng(options.seed ?? 0);
  const train: Sample[] = [];
  const validation: Sample[] = [];
  for (let label = 0; label < ds.classNames.length; label++) {
    const members = ds.samples.filter((s) => s.label === label);
    if (!members.length) continue;
    const shuffled = rng.fork(ds.classNames[label]).shuffle(members);
    const nVal = Math.round(members.length * fraction);
    if (nVal === 0 || nVal === members.length) {
      const empty = nVal === 0 ? 'validation' : 'training';
      throw new GraftError(
        `a validation fraction of ${fraction} leaves class ${ds.classNames[label]} (${members.length} images) with no ${empty} images; add images, change the fraction or give a validation folder.`,
      );
    }
    validation.push(...shuffled.slice(0, nVal));
    train.push(...shuffled.slice(nVal));
  }
  const part = (samples: Sample[]): Dataset => ({ ...ds, samples: sortBySource(samples), skipped: [] });
  const held = part(validation);
  // Late failures in the validation part report (and are strict) the way the whole dataset's do.
  const state = reportStates.get(ds.skipped);
  if (state) reportStates.set(held.skipped, { ...state, pending: false });
  return { train: { ...part(train), skipped: ds.skipped }, validation: held };
}

/** Keeps dataset order independent of the shuffle used to pick the split (samples stay grouped as listed). */
function sortBySource(samples: Sample[]): Sample[] {
  return samples.slice().sort((a, b) => a.label - b.label || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
}
