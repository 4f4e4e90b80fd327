/**
 * The model folder, graft's one on-disk format: `model.json` + weight shards in the standard tfjs layers format
 * (loadable by stock `tf.loadLayersModel` anywhere), plus `graft.json`. Plain `fs`, no tfjs-node; every save is
 * staged in a sibling folder and swapped in by rename, so a crash leaves the previous folder whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { GRAFT_VERSION } from '../version';
import { GRAFT_JSON, GraftMeta, GraftMetaInit, readGraftMeta } from './graft-json';
import { stagingPath, writeFileSynced } from './atomic';
import { removeStaleStaging } from './stale';

/** tfjs, loaded when a model is saved or built: checking a folder (what onnxruntime runs need) does not load it. */
function tfjs(): typeof Tf {
  return require('@tensorflow/tfjs') as typeof Tf;
}

/** File name of the tfjs topology and weights manifest. */
export const MODEL_JSON = 'model.json';
const SHARD_PATTERN = /^group\d+-shard\d+of\d+\.bin$/;
const DEFAULT_SHARD_BYTES = 64 * 1024 * 1024;

/** A loaded model folder. */
export interface ModelFolder {
  /** The tfjs model. */
  model: Tf.LayersModel;
  /** Its graft.json. */
  meta: GraftMeta;
  /** The folder it came from. */
  dir: string;
}

/** Options for `saveModelFolder`. */
export interface SaveModelFolderOptions {
  /** More files (relative names) written in the same atomic swap: history, plots, reports. */
  files?: Record<string, string | Uint8Array>;
  /** Largest weight shard in bytes (default 64 MiB). */
  shardBytes?: number;
  /** Test hook: called after everything is staged and before the swap. */
  beforeSwap?: () => void | Promise<void>;
}

/** Fills in the fields graft owns (format, versions, creation time). */
export function completeMeta(meta: GraftMetaInit | GraftMeta): GraftMeta {
  return {
    ...meta,
    format: 'graft-model',
    formatVersion: 1,
    graftVersion: GRAFT_VERSION,
    createdAt: meta.createdAt ?? new Date().toISOString(),
  } as GraftMeta;
}

/** Serialises a model to tfjs artifacts without touching the disk. */
export async function modelArtifacts(model: Tf.LayersModel): Promise<Tf.io.ModelArtifacts> {
  let captured: Tf.io.ModelArtifacts | undefined;
  await model.save(
    tfjs().io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return captured!;
}

/** Saves a model, its graft.json and any extra files into `dir`, replacing what was there atomically. */
export async function saveModelFolder(
  dir: string,
  model: Tf.LayersModel,
  meta: GraftMetaInit | GraftMeta,
  options: SaveModelFolderOptions = {},
): Promise<GraftMeta> {
  const artifacts = await modelArtifacts(model);
  const full = completeMeta(meta);
  const weightData = new (tfjs().io.CompositeArrayBuffer)(artifacts.weightData);
  const shardBytes = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  const shardCount = Math.max(1, Math.ceil(weightData.byteLength / shardBytes));
  const shardNames = Array.from({ length: shardCount }, (_, i) => `group1-shard${i + 1}of${shardCount}.bin`);
  const modelJson: Tf.io.ModelJSON = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfjs().version.tfjs}`,
    convertedBy: `graft ${GRAFT_VERSION}`,
    modelTopology: artifacts.modelTopology as object,
    weightsManifest: [{ paths: shardNames, weights: artifacts.weightSpecs ?? [] }],
  };
  const files: Record<string, string | Uint8Array> = {
    ...options.files,
    [MODEL_JSON]: JSON.stringify(modelJson),
    [GRAFT_JSON]: JSON.stringify(full, null, 2) + '\n',
  };
  shardNames.forEach((name, i) => {
    files[name] = new Uint8Array(weightData.slice(i * shardBytes, Math.min((i + 1) * shardBytes, weightData.byteLength)));
  });
  await writeFolderAtomic(dir, files, (entry) => SHARD_PATTERN.test(entry), options.beforeSwap);
  return full;
}

/**
 * Writes `files` as the new content of `dir`: other entries already in `dir` are carried over (hard-linked, so the
 * old folder is never modified) unless `drop` says they belong to the content being replaced.
 */
export async function writeFolderAtomic(
  dir: string,
  files: Record<string, string | Uint8Array>,
  drop: (entry: string) => boolean = () => false,
  beforeSwap?: () => void | Promise<void>,
): Promise<void> {
  const target = path.resolve(dir);
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  recoverInterruptedSwap(target);
  removeStaleStaging(target);
  const tmp = stagingPath(target);
  try {
    await fs.promises.mkdir(tmp);
    if (fs.existsSync(target)) {
      if (!fs.statSync(target).isDirectory()) throw new GraftError(`${dir} exists and is not a folder; choose another --out.`);
      for (const entry of await fs.promises.readdir(target)) {
        if (entry in files || drop(entry)) continue;
        await linkTree(path.join(target, entry), path.join(tmp, entry));
      }
    }
    for (const [name, data] of Object.entries(files)) {
      const file = path.join(tmp, name);
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      await writeFileSynced(file, data);
    }
    await beforeSwap?.();
  } catch (err) {
    await fs.promises.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  if (fs.existsSync(target)) {
    const old = stagingPath(target, 'old');
    await fs.promises.rename(target, old);
    await fs.promises.rename(tmp, target);
    await fs.promises.rm(old, { recursive: true, force: true });
  } else {
    await fs.promises.rename(tmp, target);
  }
}

/** Copies a file or folder tree by hard links (falling back to copies across devices). */
async function linkTree(src: string, dest: string): Promise<void> {
  const stat = await fs.promises.lstat(src);
  if (stat.isDirectory()) {
    await fs.promises.mkdir(dest);
    for (const entry of await fs.promises.readdir(src)) await linkTree(path.join(src, entry), path.join(dest, entry));
  } else if (stat.isSymbolicLink()) {
    await fs.promises.symlink(await fs.promises.readlink(src), dest);
  } else {
    try {
      await fs.promises.link(src, dest);
    } catch {
      await fs.promises.copyFile(src, dest);
    }
  }
}

/**
 * A crash between the two renames of a swap leaves `dir` absent and its previous content in a `.old-` sibling;
 * put that back so the last complete save is what loads.
 */
export function recoverInterruptedSwap(dir: string): void {
  const target = path.resolve(dir);
  if (fs.existsSync(target)) return;
  const parent = path.dirname(target);
  if (!fs.existsSync(parent)) return;
  const prefix = `.${path.basename(target)}.old-`;
  const olds = fs
    .readdirSync(parent)
    .filter((e) => e.startsWith(prefix))
    .map((e) => path.join(parent, e))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (olds.length) fs.renameSync(olds[0], target);
}

/**
 * Checks a model folder's files without reading the weights: model.json parses and every weight file it names is
 * there with the bytes it describes. Engines call it first, so a damaged folder is reported as such, once, rather
 * than as one engine failing and the next one trying.
 */
export function checkModelFolderFiles(dir: string): void {
  const json = readModelJson(dir);
  let bytes = 0;
  const expected = (json.weightsManifest ?? []).flatMap((g) => g.weights).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * bytesPerElement(w.dtype), 0);
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) {
      const stat = fs.statSync(path.join(dir, p), { throwIfNoEntry: false });
      if (!stat) throw new GraftError(`${dir} is missing weight file ${p}; the folder is incomplete, restore it or save the model again.`);
      bytes += stat.size;
    }
  }
  if (bytes !== expected) throw new GraftError(`${dir}: weight files hold ${bytes} bytes but model.json describes ${expected}; the folder is damaged, restore it.`);
}

/** model.json of a folder, parsed (after putting back an interrupted swap and removing stale staging). */
function readModelJson(dir: string): Tf.io.ModelJSON {
  recoverInterruptedSwap(dir);
  removeStaleStaging(dir);
  const file = path.join(dir, MODEL_JSON);
  if (!fs.existsSync(file)) {
    throw new GraftError(
      fs.existsSync(dir)
        ? `${dir} has no ${MODEL_JSON}; it is not a saved model folder (save it with graft first).`
        : `model folder ${dir} does not exist; pass the folder graft train or graft import-keras wrote.`,
    );
  }
  let json: Tf.io.ModelJSON;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GraftError(`${file} is not valid JSON (${(err as Error).message}); restore the folder from a checkpoint.`);
  }
  return json;
}

/** Reads model.json and the weight shards of a folder as tfjs artifacts. */
export function readModelArtifacts(dir: string): Tf.io.ModelArtifacts {
  const json = readModelJson(dir);
  const weightSpecs: Tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      const shard = path.join(dir, p);
      if (!fs.existsSync(shard)) throw new GraftError(`${dir} is missing weight file ${p}; the folder is incomplete, restore it or save the model again.`);
      buffers.push(fs.readFileSync(shard));
    }
  }
  const all = Buffer.concat(buffers);
  const expected = weightSpecs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * bytesPerElement(w.quantization?.dtype ?? w.dtype), 0);
  if (all.byteLength !== expected) {
    throw new GraftError(`${dir}: weight files hold ${all.byteLength} bytes but model.json describes ${expected}; the folder is damaged, restore it.`);
  }
  return {
    modelTopology: json.modelTopology,
    weightSpecs,
    weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
}

function bytesPerElement(dtype: string): number {
  // Quantized weights (tfjs's uint8 / uint16 / float16 storage) are sized by their storage type.
  return dtype === 'float16' || dtype === 'uint16' ? 2 : dtype === 'bool' || dtype === 'uint8' ? 1 : 4;
}

/** Loads a model folder: the tfjs model and its graft.json. */
export async function loadModelFolder(dir: string): Promise<ModelFolder> {
  const artifacts = readModelArtifacts(dir);
  const meta = readGraftMeta(dir);
  const model = await tfjs().loadLayersModel(tfjs().io.fromMemory(artifacts));
  return { model, meta, dir };
}
