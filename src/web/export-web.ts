/**
 * `graft export --web`: a model folder as a static web page that classifies images in the browser. The site holds
 * the page (web/ in the package: index.html, graft-page.js, graft-pixels.js, style.css), the stock tfjs browser
 * bundles copied from node_modules (no CDN, so it works offline), and the model folder (model.json, weight shards,
 * graft.json), optionally with its weights quantized in tfjs's format.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraftError } from '../errors';
import { GRAFT_JSON, readGraftMeta } from '../io/graft-json';
import { MODEL_JSON, readModelArtifacts, writeFolderAtomic } from '../io/model-folder';
import { PACKAGE_ROOT } from '../version';
import { QuantizeDtype, quantizeDtype, quantizeWeights } from './quantize';

/** Options of `exportWebPage`. */
export interface ExportWebOptions {
  /** Folder to write the site into: missing, empty, or an earlier export (which is replaced whole). */
  out: string;
  /** Store float32 weights as uint8 or float16 (tfjs's weight quantization); default: as they are. */
  quantize?: QuantizeDtype | string;
}

/** What `exportWebPage` wrote. */
export interface ExportWebResult {
  /** The site folder. */
  out: string;
  /** Every file of the site (relative path) and its size in bytes, in the order written. */
  files: { path: string; bytes: number }[];
  /** Bytes of the model's weights as saved, and in the site. */
  weightBytes: { original: number; site: number };
  /** The quantization applied, if any. */
  quantize?: QuantizeDtype;
}

/** The page's own files, shipped in the package's web/ folder. */
export const PAGE_FILES = ['index.html', 'graft-page.js', 'graft-pixels.js', 'style.css'] as const;
/** The file that marks a folder as a graft web export (so re-exporting may replace it). */
const SITE_MARKER = 'graft-page.js';

/** The stock tfjs browser files copied into `tfjs/`: the union bundle (webgl and cpu backends) and the wasm backend. */
function tfjsFiles(): { from: string; to: string }[] {
  const dist = (pkg: string) => {
    try {
      return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'dist');
    } catch {
      throw new GraftError(`${pkg} is not installed, so there is no tfjs browser bundle to copy; reinstall graft with npm ci.`);
    }
  };
  const tfjs = dist('@tensorflow/tfjs');
  const wasm = dist('@tensorflow/tfjs-backend-wasm');
  const names: [string, string][] = [
    [tfjs, 'tf.min.js'],
    [wasm, 'tf-backend-wasm.min.js'],
    [wasm, 'tfjs-backend-wasm.wasm'],
    [wasm, 'tfjs-backend-wasm-simd.wasm'],
    [wasm, 'tfjs-backend-wasm-threaded-simd.wasm'],
  ];
  return names.map(([dir, name]) => ({ from: path.join(dir, name), to: `tfjs/${name}` }));
}

/** Checks everything `exportWebPage` needs, so a bad argument fails before anything is read or written. */
function checkArguments(modelDir: string, out: string): void {
  const model = fs.statSync(modelDir, { throwIfNoEntry: false });
  if (!model) throw new GraftError(`model folder ${modelDir} does not exist; pass the folder graft train or graft import-keras wrote.`);
  if (!model.isDirectory()) throw new GraftError(`${modelDir} is a file, not a model folder; pass the folder graft train or graft import-keras wrote.`);
  const site = fs.statSync(out, { throwIfNoEntry: false });
  if (site && !site.isDirectory()) throw new GraftError(`--out ${out} is a file; pass a folder for the site (missing, empty, or an earlier graft export --web).`);
  if (path.resolve(out) === path.resolve(modelDir)) throw new GraftError(`--out ${out} is the model folder itself; pass another folder for the site.`);
  if (site && !fs.existsSync(path.join(out, SITE_MARKER)) && fs.readdirSync(out).length > 0) {
    throw new GraftError(`--out ${out} is a folder with other files in it; pass a missing or empty folder, or an earlier graft export --web.`);
  }
  const parent = path.dirname(path.resolve(out));
  const above = fs.statSync(parent, { throwIfNoEntry: false });
  if (above && !above.isDirectory()) throw new GraftError(`--out ${out} is inside ${parent}, which is a file; pass a folder path.`);
}

/** Writes a static site that classifies images with the model in the browser (see the module comment). */
export async function exportWebPage(modelDir: string, options: ExportWebOptions): Promise<ExportWebResult> {
  const quantize = options.quantize === undefined ? undefined : quantizeDtype(options.quantize);
  const out = options.out;
  if (!out) throw new GraftError('export --web needs --out <folder> for the site.');
  checkArguments(modelDir, out);
  const meta = readGraftMeta(modelDir);
  const channels = meta.inputShape[2];
  if (channels !== 1 && channels !== 3) {
    throw new GraftError(`${modelDir} takes ${channels} input channels; the web page feeds images as grey (1) or RGB (3) only.`);
  }
  const artifacts = readModelArtifacts(modelDir);
  const pageDir = path.join(PACKAGE_ROOT, 'web');
  const copies = [...PAGE_FILES.map((name) => ({ from: path.join(pageDir, name), to: name })), ...tfjsFiles()];
  const missing = copies.find((c) => !fs.existsSync(c.from));
  if (missing) throw new GraftError(`${missing.from} is missing from this graft install; reinstall graft with npm ci.`);

  const files: Record<string, string | Uint8Array> = {};
  for (const c of copies) files[c.to] = fs.readFileSync(c.from);
  files[`model/${GRAFT_JSON}`] = fs.readFileSync(path.join(modelDir, GRAFT_JSON));
  const modelJson = JSON.parse(fs.readFileSync(path.join(modelDir, MODEL_JSON), 'utf8'));
  const original = (artifacts.weightData as ArrayBuffer).byteLength;
  let siteWeights = original;
  if (quantize) {
    const q = quantizeWeights(artifacts.weightSpecs ?? [], artifacts.weightData as ArrayBuffer, quantize);
    const shard = 'group1-shard1of1.bin';
    modelJson.weightsManifest = [{ paths: [shard], weights: q.specs }];
    files[`model/${shard}`] = q.data;
    siteWeights = q.data.byteLength;
  } else {
    for (const group of modelJson.weightsManifest ?? []) {
      for (const p of group.paths as string[]) files[`model/${p}`] = fs.readFileSync(path.join(modelDir, p));
    }
  }
  files[`model/${MODEL_JSON}`] = JSON.stringify(modelJson);
  // Replace an earlier export whole, so no stale shard or bundle survives.
  await writeFolderAtomic(out, files, () => true);
  return {
    out,
    files: Object.entries(files).map(([p, data]) => ({ path: p, bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength })),
    weightBytes: { original, site: siteWeights },
    ...(quantize ? { quantize } : {}),
  };
}
