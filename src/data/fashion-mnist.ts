/**
 * Fashion-MNIST (Zalando Research, MIT licence) as PNG class folders, from the IDX files of Debian's
 * `dataset-fashion-mnist` package or any folder with the same files. Class folders are named `<label>-<name>`
 * (`5-Sandal`) so that sorting the folder names, which is how graft orders classes, keeps the original label order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { GraftError, oneOf, positiveInt, rejectUnknownKeys } from '../errors';
import { writeFolderAtomic } from '../io/model-folder';
import { findIdxPair, idxImage, readIdx } from './idx';

/** Fashion-MNIST class names by label; `/` in "T-shirt/top" becomes `_` to be a folder name. */
export const FASHION_MNIST_CLASSES = ['T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle_boot'];

/** Where Debian's dataset-fashion-mnist package puts the IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Folder name of a class: `<label>-<name>`. */
export function fashionMnistFolder(label: number): string {
  return `${label}-${FASHION_MNIST_CLASSES[label]}`;
}

/** Options of `exportFashionMnist`. */
export interface ExportFashionMnistOptions {
  /** Folder to create (must not exist or be empty); one subfolder per class is written inside. */
  out: string;
  /** Images per class, the first ones in file order (default: all). */
  perClass?: number;
  /** Classes to write, as labels (5), ranges (`5-9`) or names (`Sandal`, `5-Sandal`); default all ten. */
  classes?: Array<number | string>;
  /** Which IDX split (default `train`). */
  split?: 'train' | 'test';
  /** Folder with the IDX files (default /usr/share/datasets/fashion-mnist). */
  idx?: string;
}

/** What was written. */
export interface ExportFashionMnistResult {
  /** The output folder. */
  out: string;
  /** Class folder names written, in label order. */
  classFolders: string[];
  /** Images written per class folder. */
  counts: Record<string, number>;
}

/** Resolves class selectors (labels or names) to sorted labels, or throws listing the valid ones. */
export function fashionMnistLabels(classes: Array<number | string> | undefined): number[] {
  if (!classes?.length) return FASHION_MNIST_CLASSES.map((_, i) => i);
  const labels = classes.flatMap((c) => {
    const text = String(c).trim();
    const span = /^(\d)-(\d)$/.exec(text);
    if (span && Number(span[1]) <= Number(span[2])) {
      return Array.from({ length: Number(span[2]) - Number(span[1]) + 1 }, (_, i) => Number(span[1]) + i);
    }
    const byName = FASHION_MNIST_CLASSES.findIndex((n, i) => n.toLowerCase() === text.toLowerCase() || fashionMnistFolder(i).toLowerCase() === text.toLowerCase());
    if (byName >= 0) return byName;
    const n = Number(text);
    if (/^\d+$/.test(text) && n < FASHION_MNIST_CLASSES.length) return n;
    throw new GraftError(
      `Fashion-MNIST has no class ${JSON.stringify(c)}; use labels 0-9, a range like 5-9, or names ${FASHION_MNIST_CLASSES.join(', ')}.`,
    );
  });
  return [...new Set(labels)].sort((a, b) => a - b);
}

/** Writes Fashion-MNIST images as PNGs in `<label>-<name>` class folders, atomically (all or nothing). */
export async function exportFashionMnist(options: ExportFashionMnistOptions): Promise<ExportFashionMnistResult> {
  rejectUnknownKeys('exportFashionMnist', options, ['out', 'perClass', 'classes', 'split', 'idx']);
  const split = oneOf('split', options.split ?? 'train', ['train', 'test'] as const);
  const perClass = options.perClass === undefined ? Infinity : positiveInt('perClass', options.perClass);
  const labels = fashionMnistLabels(options.classes);
  const idxDir = options.idx ?? FASHION_MNIST_DIR;
  if (!fs.existsSync(idxDir)) {
    throw new GraftError(`IDX folder ${idxDir} does not exist; install Debian's dataset-fashion-mnist package or give --idx <folder>.`);
  }
  const out = path.resolve(options.out);
  if (fs.existsSync(out) && (!fs.statSync(out).isDirectory() || fs.readdirSync(out).length)) {
    throw new GraftError(`${out} already exists and is not an empty folder; choose a new --out folder.`);
  }
  const pair = findIdxPair(idxDir, split);
  const labelData = readIdx(pair.labels).data;
  const files: Record<string, Uint8Array> = {};
  const counts: Record<string, number> = Object.fromEntries(labels.map((l) => [fashionMnistFolder(l), 0]));
  const digits = String(labelData.length - 1).length;
  for (let i = 0; i < labelData.length; i++) {
    const folder = fashionMnistFolder(labelData[i]);
    if (!(folder in counts) || counts[folder] >= perClass) continue;
    counts[folder]++;
    const img = idxImage(pair.images, i);
    // The file name keeps the index in the IDX file so a picture can always be traced back to its source.
    files[`${folder}/${split}-${String(i).padStart(digits, '0')}.png`] = await sharp(img.data, {
      raw: { width: img.width, height: img.height, channels: img.channels },
    })
      // Without this sharp writes raw grey input as RGB, tripling the files for no information.
      .toColourspace(img.channels === 1 ? 'b-w' : 'srgb')
      .png({ compressionLevel: 9 })
      .toBuffer();
  }
  await writeFolderAtomic(out, files);
  return { out, classFolders: Object.keys(counts), counts };
}
