/**
 * IDX files (the MNIST / Fashion-MNIST format): a big-endian header naming the element type and the dimensions,
 * then the raw values. Files may be gzipped. Decoded files are kept in memory once per process, since a dataset
 * refers to thousands of images inside one file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { GraftError } from '../errors';

/** A decoded IDX file: unsigned bytes only (the type every MNIST-style image and label file uses). */
export interface IdxArray {
  /** Dimensions, e.g. [60000, 28, 28] for images or [60000] for labels. */
  shape: number[];
  /** The values, row-major. */
  data: Uint8Array;
}

const UBYTE = 0x08;
const loaded = new Map<string, IdxArray>();

/** Parses IDX bytes (gzipped or not); `source` names the file in errors. */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? zlib.gunzipSync(bytes) : bytes;
  const bad = (what: string) =>
    new GraftError(`${source} is not a usable IDX file: ${what}; give the MNIST-format *-idx?-ubyte(.gz) files.`);
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) throw bad('no IDX magic number');
  if (raw[2] !== UBYTE) throw bad(`element type 0x${raw[2].toString(16)} received, only unsigned bytes (0x08) are supported`);
  const dims = raw[3];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (dims < 1 || raw.length < 4 + 4 * dims) throw bad(`${dims} dimensions but the header is cut short`);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const size = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * dims;
  if (raw.length - start < size) throw bad(`shape [${shape.join(', ')}] needs ${size} bytes, the file has ${raw.length - start}`);
  return { shape, data: raw.subarray(start, start + size) };
}

/** Reads and caches one IDX file. */
export function readIdx(file: string): IdxArray {
  const key = path.resolve(file);
  let arr = loaded.get(key);
  if (!arr) {
    arr = parseIdx(fs.readFileSync(key), key);
    loaded.set(key, arr);
  }
  return arr;
}

/** The image and label files of one split inside an IDX folder. */
export interface IdxPair {
  /** Path of the images file. */
  images: string;
  /** Path of the labels file. */
  labels: string;
}

/** MNIST naming: `train-images-idx3-ubyte(.gz)` / `t10k-labels-idx1-ubyte(.gz)`. */
const SPLIT_PREFIX = { train: 'train', test: 't10k' } as const;

/** Finds the images/labels files of `split` in an IDX folder, or throws saying which names were looked for. */
export function findIdxPair(dir: string, split: 'train' | 'test'): IdxPair {
  const prefix = SPLIT_PREFIX[split];
  const pick = (kind: string, n: number) => {
    const names = [`${prefix}-${kind}-idx${n}-ubyte`, `${prefix}-${kind}-idx${n}-ubyte.gz`, `${prefix}-${kind}.idx${n}-ubyte`];
    const found = names.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
    if (!found) {
      throw new GraftError(`${dir} has no ${split} ${kind} IDX file (looked for ${names.join(', ')}); give a folder with the MNIST-format files.`);
    }
    return found;
  };
  return { images: pick('images', 3), labels: pick('labels', 1) };
}

/** Source string of one image inside an IDX images file; `readSource` in image.ts understands it. */
export function idxSource(imagesFile: string, index: number): string {
  return `idx:${path.resolve(imagesFile)}#${index}`;
}

/** Splits an `idx:<file>#<index>` source, or returns null for ordinary file paths. */
export function parseIdxSource(source: string): { file: string; index: number } | null {
  if (!source.startsWith('idx:')) return null;
  const hash = source.lastIndexOf('#');
  const index = Number(source.slice(hash + 1));
  if (hash < 0 || !Number.isInteger(index) || index < 0) {
    throw new GraftError(`bad IDX sample reference ${JSON.stringify(source)}; expected idx:<images file>#<index>.`);
  }
  return { file: source.slice(4, hash), index };
}

/** One image of an IDX images file as raw single-channel pixels. */
export function idxImage(file: string, index: number): { data: Uint8Array; width: number; height: number; channels: 1 | 3 } {
  const arr = readIdx(file);
  const [n, height, width, channels = 1] = arr.shape;
  if (arr.shape.length < 3 || (channels !== 1 && channels !== 3)) {
    throw new GraftError(`${file} has shape [${arr.shape.join(', ')}]; an IDX images file needs [n, height, width] or [n, height, width, 3].`);
  }
  if (index >= n) throw new GraftError(`${file} has ${n} images; index ${index} is out of range.`);
  const size = height * width * channels;
  return { data: arr.data.subarray(index * size, (index + 1) * size), width, height, channels: channels as 1 | 3 };
}
