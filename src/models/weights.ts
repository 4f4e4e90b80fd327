/**
 * Where pretrained weights come from: `imagenet` resolves to the Keras file of the architecture (URL and md5 from
 * the family's table), downloaded once into `cacheDir()/keras/`, md5-checked, and reused; a URL is downloaded into
 * the same cache; a path is read as it is. Offline, the error says which file to place where.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { cacheDir } from '../util/cache';
import { stagingPath } from '../io/atomic';
import { ArchitectureSpec, KerasWeightsFile } from './spec';
import { KerasLoadReport, loadKerasWeights } from './keras-h5';

/** Download progress: bytes received so far and the total when the server says it. */
export type WeightsProgress = (received: number, total: number | undefined, file: string) => void;

/** Options for `fetchCached`. */
export interface FetchCachedOptions {
  /** Where to download from (http or https). */
  url: string;
  /** Expected md5 (hex); checked on download and on reuse of a cached file. */
  md5?: string;
  /** Expected SHA-256 (hex), for the files Keras checks by SHA-256; checked like `md5`. */
  sha256?: string;
  /** Cache subfolder (default `keras`). */
  subdir?: string;
  /** Progress callback. */
  onProgress?: WeightsProgress;
  /** Abort when no data arrives for this long (default 60 s). */
  timeoutMs?: number;
}

/** Cached location of a URL's file. */
export function cachedPath(url: string, subdir = 'keras'): string {
  const name = decodeURIComponent(new URL(url).pathname.split('/').pop() || 'download');
  return path.join(cacheDir(), subdir, name);
}

/** md5 of a file, streamed. */
export async function md5File(file: string): Promise<string> {
  return hashFile(file, 'md5');
}

/** A hash of a file, streamed. */
async function hashFile(file: string, algorithm: 'md5' | 'sha256'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The hash a file must have (md5 where Keras gives one, else SHA-256), or undefined when unchecked. */
function expectedHash(o: FetchCachedOptions): { algorithm: 'md5' | 'sha256'; value: string } | undefined {
  if (o.md5) return { algorithm: 'md5', value: o.md5 };
  if (o.sha256) return { algorithm: 'sha256', value: o.sha256 };
  return undefined;
}

/**
 * Returns the cached file for `url`, downloading it first when absent (or when the cached copy fails its md5).
 * The download is staged and renamed into place only after the md5 matches.
 */
export async function fetchCached(options: FetchCachedOptions): Promise<string> {
  const file = cachedPath(options.url, options.subdir);
  const expected = expectedHash(options);
  if (fs.existsSync(file)) {
    if (!expected || (await hashFile(file, expected.algorithm)) === expected.value) return file;
    await fs.promises.rm(file, { force: true });
  }
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = stagingPath(file);
  const placeHint = `to work offline, download it elsewhere and place it at ${file}${expected ? ` (${expected.algorithm} ${expected.value})` : ''}`;
  try {
    const got = await download(options.url, tmp, options, 0, expected?.algorithm ?? 'md5');
    if (expected && got !== expected.value) {
      throw new GraftError(`downloaded ${options.url} but its ${expected.algorithm} is ${got}, expected ${expected.value}; the download is corrupt or the server sent another file. Run again, or ${placeHint}.`);
    }
    await fs.promises.rename(tmp, file);
    return file;
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    if (err instanceof GraftError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new GraftError(`cannot download ${options.url} (${e.code ?? firstLine(e.message)}); ${placeHint}.`, { cause: err });
  }
}

function firstLine(s: string): string {
  return String(s).split('\n')[0].slice(0, 160);
}

/** Streams `url` into `dest`, following redirects; resolves to the hash of what was written. */
function download(url: string, dest: string, o: FetchCachedOptions, redirects: number, algorithm: 'md5' | 'sha256'): Promise<string> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects < 5) {
        res.resume();
        download(new URL(res.headers.location, url).toString(), dest, o, redirects + 1, algorithm).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(Object.assign(new Error(`HTTP ${status}`), { code: `HTTP ${status}` }));
        return;
      }
      const total = Number(res.headers['content-length']) || undefined;
      const hash = createHash(algorithm);
      const out = fs.createWriteStream(dest);
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
        o.onProgress?.(received, total, dest);
      });
      res.on('error', reject);
      out.on('error', reject);
      out.on('finish', () => {
        if (total !== undefined && received !== total) reject(Object.assign(new Error('connection closed early'), { code: `truncated at ${received} of ${total} bytes` }));
        else resolve(hash.digest('hex'));
      });
      res.pipe(out);
    });
    req.setTimeout(o.timeoutMs ?? 60_000, () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
}

/** The Keras ImageNet file of an architecture (with or without top). */
export function imagenetFile(spec: ArchitectureSpec, includeTop: boolean): KerasWeightsFile {
  if (!spec.imagenet) throw new GraftError(`${spec.name} has no ImageNet weights; use weights null or a Keras .h5 file.`);
  return includeTop ? spec.imagenet.top : spec.imagenet.notop;
}

/** Options for `resolveWeightsFile`. */
export interface ResolveWeightsOptions {
  /** Architecture (for `imagenet`). */
  spec: ArchitectureSpec;
  /** Whether the model has the Keras top (picks the top or notop file). */
  includeTop: boolean;
  /** Download progress. */
  onProgress?: WeightsProgress;
}

/** Turns `imagenet`, a URL or a path into a local .h5 file. */
export async function resolveWeightsFile(weights: string, o: ResolveWeightsOptions): Promise<string> {
  if (weights === 'imagenet') {
    const { url, md5, sha256 } = imagenetFile(o.spec, o.includeTop);
    return fetchCached({ url, md5, sha256, onProgress: o.onProgress });
  }
  if (/^https?:\/\//.test(weights)) return fetchCached({ url: weights, onProgress: o.onProgress });
  if (fs.existsSync(weights) && fs.statSync(weights).isDirectory()) {
    throw new GraftError(`weights ${weights} is a folder without graft.json; pass a graft model folder (one graft saved), a Keras .h5 file, imagenet or none.`);
  }
  if (!fs.existsSync(weights)) {
    throw new GraftError(`weights must be imagenet, a Keras .h5 file or URL, or none; received ${JSON.stringify(weights)}, which is not an existing file.`);
  }
  return weights;
}

/** Loads `imagenet`, a Keras .h5 URL or a path into a model built by `buildModel`. */
export async function loadPretrainedWeights(model: tf.LayersModel, weights: string, o: ResolveWeightsOptions): Promise<KerasLoadReport> {
  const file = await resolveWeightsFile(weights, o);
  return loadKerasWeights(model, file, { aliases: o.spec.legacyNames });
}
