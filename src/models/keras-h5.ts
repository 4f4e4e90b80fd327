/**
 * Keras 2 HDF5 weight files, read and written in Node with h5wasm (no Python converter). Layout: weights at the file
 * root or under `model_weights`, a `layer_names` attribute listing layers, a `weight_names` attribute per layer
 * (Keras splits either into `name0`, `name1`, ... when it exceeds the 64 KB HDF5 header limit), one dataset per
 * weight in `weight_names` order (kernel, bias; gamma, beta, moving_mean, moving_variance; depthwise_kernel,
 * pointwise_kernel, bias), which is also tfjs's order for the same layers.
 *
 * Loading matches layers by name where Keras names them, and Keras's automatically named layers (`conv2d_7`, ...) by
 * creation order with shape checks. Everything is validated and read before the first weight is assigned, so a bad
 * file changes nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as H5 from 'h5wasm';
import { GraftError } from '../errors';
import { writeFileAtomic } from '../io/atomic';

type H5Module = typeof H5;
let h5Loading: Promise<H5Module> | undefined;

/** Finds h5wasm's self-contained IIFE build (its package exports only ESM, which CommonJS and jest cannot require). */
function h5wasmScript(): string {
  for (const dir of require.resolve.paths('h5wasm') ?? []) {
    const file = path.join(dir, 'h5wasm', 'dist', 'iife', 'h5wasm.js');
    if (fs.existsSync(file)) return file;
  }
  throw new GraftError('the h5wasm package is missing; reinstall graft with npm ci.');
}

/** Loads h5wasm once per process. */
export function loadH5wasm(): Promise<H5Module> {
  h5Loading ??= (async () => {
    const code = (await fs.promises.readFile(h5wasmScript(), 'utf8')).replace(
      '({ noInitialRun: true })',
      // HDF5 prints its diagnostic stack on stderr for every failed call; graft reports one line instead.
      '({ noInitialRun: true, printErr: globalThis.__graftH5PrintErr })',
    );
    const g = globalThis as { __graftH5PrintErr?: (line: string) => void };
    g.__graftH5PrintErr = (line) => {
      if (process.env.GRAFT_DEBUG_HDF5) process.stderr.write(`${line}\n`);
    };
    const h5 = new Function(`${code}\nreturn h5wasm;`)() as H5Module;
    await h5.ready;
    return h5;
  })();
  return h5Loading;
}

let fileCounter = 0;

/** Opens a file through h5wasm's in-memory file system; `use` must finish with it before this returns. */
async function withH5File<T>(file: string, use: (f: H5.File, h5: H5Module) => T): Promise<T> {
  const h5 = await loadH5wasm();
  const bytes = await fs.promises.readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new GraftError(`cannot read weights file ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}. Check the path.`);
  });
  const mem = `/graft-read-${process.pid}-${++fileCounter}.h5`;
  h5.FS!.writeFile(mem, bytes);
  let f: H5.File | undefined;
  try {
    try {
      f = new h5.File(mem, 'r');
    } catch (err) {
      throw new GraftError(`${file} is not a readable HDF5 file (${firstLine(err)}); it may be truncated or not a Keras .h5 file. Download it again.`);
    }
    try {
      return use(f, h5);
    } catch (err) {
      if (err instanceof GraftError) throw err;
      throw new GraftError(`cannot read ${file} (${firstLine(err)}); it is truncated or damaged. Download it again.`, { cause: err });
    }
  } finally {
    f?.close();
    h5.FS!.unlink(mem);
  }
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0].slice(0, 200);
}

/** Reads a string-list attribute, joining Keras's numbered chunks (`name0`, `name1`, ...) when it was split. */
function readStringList(obj: H5.Group, name: string): string[] | undefined {
  const attrs = obj.attrs;
  const decode = (v: unknown): string[] => {
    const list = Array.isArray(v) ? v : ArrayBuffer.isView(v) ? [] : [v];
    return list.map((s) => (s instanceof Uint8Array ? Buffer.from(s).toString('utf8') : String(s)).replace(/\0+$/, ''));
  };
  if (name in attrs) return decode(attrs[name].value);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...decode(attrs[`${name}${i}`].value));
  return out;
}

/** One weight of a layer in a Keras file. */
export interface KerasH5Weight {
  /** Its name in `weight_names` (e.g. `conv1/kernel:0`). */
  name: string;
  /** Its shape. */
  shape: number[];
}

/** One layer with weights in a Keras file. */
export interface KerasH5Layer {
  /** Layer name (for a layer of a nested model, its own name inside that model). */
  name: string;
  /** The file group holding its datasets: the entry in `layer_names` (the nested model's, for its layers). */
  group: string;
  /** Its weights, in `weight_names` order. */
  weights: KerasH5Weight[];
}

/** Where the layers sit in a Keras file. */
function weightsRoot(f: H5.File, file: string): { root: H5.Group; names: string[] } {
  const mw = f.get('model_weights');
  const root = mw instanceof Object && 'keys' in mw ? (mw as H5.Group) : (f as H5.Group);
  const names = readStringList(root, 'layer_names');
  if (!names) {
    throw new GraftError(
      `${file} has no layer_names attribute, so it is not a Keras 2 weights file (Keras 3 .weights.h5 is not supported); save it from Keras with model.save_weights("x.h5") or model.save("x.h5").`,
    );
  }
  return { root, names };
}

/** Lists the layers with weights in a Keras file, in file order (no weight data is read). */
export async function readKerasH5Layers(file: string): Promise<KerasH5Layer[]> {
  return withH5File(file, (f) => listLayers(f, file));
}

function listLayers(f: H5.File, file: string): KerasH5Layer[] {
  const { root, names } = weightsRoot(f, file);
  const layers: KerasH5Layer[] = [];
  for (const name of names) {
    const g = root.get(name) as H5.Group | null;
    if (!g) throw new GraftError(`${file} lists layer ${name} in layer_names but has no group for it; the file is damaged. Download it again.`);
    const weightNames = readStringList(g, 'weight_names') ?? [];
    if (weightNames.length === 0) continue;
    const weights = weightNames.map((w) => {
      const ds = g.get(w) as H5.Dataset | null;
      if (!ds || !('shape' in ds)) throw new GraftError(`${file}: layer ${name} lists weight ${w} but the file has no dataset for it; the file is damaged. Download it again.`);
      return { name: w, shape: [...(ds.shape ?? [])] };
    });
    layers.push(...splitNested(name, weights).map(normalizationAsBatchNorm));
  }
  return layers;
}

/**
 * Keras's Normalization layer (EfficientNet's stem) stores `mean`, `variance` and a scalar sample `count`; graft's
 * stand-in is a BatchNormalization without gamma and beta, so the file layer offers it mean and variance only, flat.
 */
function normalizationAsBatchNorm(layer: KerasH5Layer): KerasH5Layer {
  const base = (w: KerasH5Weight) => w.name.split('/').pop()!.replace(/:0$/, '');
  if (layer.weights.map(base).join(',') !== 'mean,variance,count') return layer;
  const flat = (w: KerasH5Weight) => ({ ...w, shape: [w.shape.reduce((a, b) => a * b, 1)] });
  return { ...layer, weights: layer.weights.slice(0, 2).map(flat) };
}

/**
 * A model used as a layer (e.g. `Sequential([VGG16(include_top=False), Dense(...)])` saved from Keras) is one entry in
 * `layer_names` whose weights are named `<inner layer>/<weight>:0`; it is split into its inner layers so they match by
 * name like the layers of a flat file.
 */
function splitNested(group: string, weights: KerasH5Weight[]): KerasH5Layer[] {
  const owner = (w: KerasH5Weight) => w.name.split('/').slice(0, -1).join('/');
  const owners = [...new Set(weights.map(owner))];
  if (owners.length < 2) return [{ name: group, group, weights }];
  return owners.map((o) => ({ name: o.split('/').pop()!, group, weights: weights.filter((w) => owner(w) === o) }));
}

/** What `loadKerasWeights` matched. */
export interface KerasLoadReport {
  /** Model layers matched by name. */
  byName: number;
  /** Model layers matched by creation order (Keras's automatically named layers). */
  byOrder: number;
  /** File layers the model has no place for (e.g. the top of a top file loaded into a no-top model). */
  unused: string[];
}

/** Keras's automatic layer-name stems; only layers named like this may be matched by order rather than by name. */
const AUTO_NAME = /^(conv2d|batch_normalization|separable_conv2d|depthwise_conv2d|dense|convolution2d|batchnormalization|normalization)(?:_(\d+))?$/;

/** Creation index of an automatic name (`conv2d` is 0 in a fresh session; Keras 1 files start at `_1`). */
function autoIndex(name: string): number {
  const m = AUTO_NAME.exec(name);
  return m?.[2] ? Number(m[2]) : 0;
}

/**
 * TF-Keras 2 named MobileNetV3's layers with slashes (`Conv/BatchNorm`, `expanded_conv_3/squeeze_excite/Conv_1`,
 * `Logits`), and Keras's ImageNet files carry those names; Keras 3 (and graft) name the same layers `conv_bn`,
 * `expanded_conv_3_squeeze_excite_conv_1`, `logits`. Keras 3 loads such files by order; graft maps the names.
 */
function kerasThreeName(name: string): string {
  return name.includes('/') || /^(Conv(_\d)?|Logits)$/.test(name) ? name.replace(/\/BatchNorm/g, '_bn').replace(/\//g, '_').toLowerCase() : name;
}

/** A layer's weight signature: how many weights and their ranks, which tells a conv from a batch norm. */
function signature(ranks: number[]): string {
  return ranks.join(',');
}

/** Pairs model layers with file layers: by name first, then automatically named layers by creation order. */
function matchLayers(model: tf.LayersModel, fileLayers: KerasH5Layer[], file: string): { pairs: Array<[tf.layers.Layer, KerasH5Layer, 'name' | 'order']>; unused: string[] } {
  const modelLayers = model.layers.filter((l) => l.weights.length > 0);
  const byName = new Map(fileLayers.map((l) => [l.name, l]));
  for (const l of fileLayers) {
    const alias = kerasThreeName(l.name);
    if (!byName.has(alias)) byName.set(alias, l);
  }
  const pairs: Array<[tf.layers.Layer, KerasH5Layer, 'name' | 'order']> = [];
  const usedFile = new Set<string>();
  const pendingModel: tf.layers.Layer[] = [];
  for (const layer of modelLayers) {
    // An automatic name is a counter, not an identity (files from older sessions count from another start).
    const hit = AUTO_NAME.test(layer.name) ? undefined : byName.get(layer.name);
    if (hit) {
      pairs.push([layer, hit, 'name']);
      usedFile.add(hit.name);
    } else if (AUTO_NAME.test(layer.name)) {
      pendingModel.push(layer);
    } else {
      throw new GraftError(
        `${file} has no weights for layer ${layer.name} (${layer.weights.map((w) => `[${w.shape}]`).join(' ')}); the file was saved from a different architecture. Check --arch and --top.`,
      );
    }
  }
  const pendingFile = fileLayers.filter((l) => !usedFile.has(l.name));
  const bySig = <T>(items: T[], ranks: (t: T) => number[]) => {
    const m = new Map<string, T[]>();
    for (const it of items) {
      const key = signature(ranks(it));
      m.set(key, [...(m.get(key) ?? []), it]);
    }
    return m;
  };
  const modelSig = bySig(pendingModel, (l) => l.weights.map((w) => w.shape.length));
  const fileSig = bySig(pendingFile, (l) => l.weights.map((w) => w.shape.length));
  const unused: string[] = [];
  for (const [key, fileGroup] of fileSig) {
    if (!modelSig.has(key)) unused.push(...fileGroup.map((l) => l.name));
  }
  for (const [key, modelGroup] of modelSig) {
    const fileGroup = fileSig.get(key) ?? [];
    if (fileGroup.length !== modelGroup.length) {
      throw new GraftError(
        `${file} has ${fileGroup.length} unnamed layers like ${modelGroup[0].name} (weights ${modelGroup[0].weights.map((w) => `[${w.shape}]`).join(' ')}) but the model has ${modelGroup.length}; the file was saved from a different architecture. Check --arch and --top.`,
      );
    }
    // A stable sort by creation index: Keras numbers automatic names in creation order, in old and new sessions alike.
    const order = <T extends { name: string }>(xs: T[]) => xs.map((x, i) => ({ x, i })).sort((a, b) => autoIndex(a.x.name) - autoIndex(b.x.name) || a.i - b.i).map((e) => e.x);
    const f = order(fileGroup);
    order(modelGroup).forEach((layer, i) => pairs.push([layer, f[i], 'order']));
  }
  return { pairs, unused };
}

/** Options for `loadKerasWeights`. */
export interface LoadKerasWeightsOptions {
  /** Fail when the file has layers the model does not use (default false: a top file may feed a no-top model). */
  strict?: boolean;
  /** File layer names to read as other model layer names (old name -> current name), e.g. an architecture's `legacyNames`. */
  aliases?: Record<string, string>;
}

/** Renames file layers by `aliases`, unless the file also has a layer under the new name (then that one is used). */
function applyAliases(layers: KerasH5Layer[], aliases: Record<string, string> | undefined): KerasH5Layer[] {
  if (!aliases) return layers;
  const present = new Set(layers.map((l) => l.name));
  return layers.map((l) => {
    const to = Object.hasOwn(aliases, l.name) ? aliases[l.name] : undefined;
    return to && !present.has(to) ? { ...l, name: to } : l;
  });
}

/**
 * Loads a Keras 2 .h5 weight file into `model`. Every mismatch is a GraftError naming the layer and both shapes;
 * all data is read and checked before any weight is assigned.
 */
export async function loadKerasWeights(model: tf.LayersModel, file: string, options: LoadKerasWeightsOptions = {}): Promise<KerasLoadReport> {
  const staged = await withH5File(file, (f) => {
    const fileLayers = applyAliases(listLayers(f, file), options.aliases);
    const { pairs, unused } = matchLayers(model, fileLayers, file);
    if (options.strict && unused.length) {
      throw new GraftError(`${file} has layers the model does not use: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', ...' : ''}; check --arch and --top.`);
    }
    for (const [layer, fl] of pairs) {
      if (fl.weights.length !== layer.weights.length) {
        throw new GraftError(`${file}: layer ${fl.name} has ${fl.weights.length} weights but model layer ${layer.name} has ${layer.weights.length}; the file was saved from a different architecture.`);
      }
      layer.weights.forEach((w, i) => {
        const got = fl.weights[i].shape;
        if (got.length !== w.shape.length || got.some((d, k) => d !== w.shape[k])) {
          throw new GraftError(
            `${file}: layer ${layer.name} weight ${fl.weights[i].name} has shape [${got}] in the file but the model expects [${w.shape}]; use the architecture, input size and class count the file was saved with.`,
          );
        }
      });
    }
    const { root } = weightsRoot(f, file);
    const values: Array<{ layer: tf.layers.Layer; data: Float32Array[] }> = [];
    for (const [layer, fl] of pairs) {
      const g = root.get(fl.group) as H5.Group;
      const data = fl.weights.map((w, i) => {
        const expected = (layer.weights[i].shape as number[]).reduce((a, b) => a * b, 1);
        let value: unknown;
        try {
          value = (g.get(w.name) as H5.Dataset).value;
        } catch (err) {
          throw new GraftError(`${file}: cannot read weight ${w.name} of layer ${fl.name} (${firstLine(err)}); the file is truncated or damaged. Download it again.`);
        }
        if (!ArrayBuffer.isView(value) || (value as Float32Array).length !== expected) {
          throw new GraftError(`${file}: weight ${w.name} of layer ${fl.name} holds ${ArrayBuffer.isView(value) ? (value as Float32Array).length : 'no'} values, expected ${expected}; the file is truncated or damaged. Download it again.`);
        }
        return value instanceof Float32Array ? value : Float32Array.from(value as unknown as ArrayLike<number>);
      });
      values.push({ layer, data });
    }
    return { values, unused, byName: pairs.filter((p) => p[2] === 'name').length, byOrder: pairs.filter((p) => p[2] === 'order').length };
  });
  for (const { layer, data } of staged.values) {
    const tensors = data.map((d, i) => tf.tensor(d, layer.weights[i].shape as number[], 'float32'));
    try {
      layer.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
  }
  return { byName: staged.byName, byOrder: staged.byOrder, unused: staged.unused };
}

/** Keras's limit for one attribute in the HDF5 object header; longer lists are split into numbered chunks. */
const HDF5_OBJECT_HEADER_LIMIT = 64512;

/** Options for `writeKerasWeights`. */
export interface WriteKerasWeightsOptions {
  /** `model_weights` (as `model.save`) or `root` (as `model.save_weights`); default root. */
  layout?: 'root' | 'model_weights';
  /** Attribute size above which string lists are split into numbered chunks (Keras: 64512 bytes). */
  chunkBytes?: number;
  /** Renames layers in the file (e.g. to write the automatic names an older Keras session gave). */
  rename?: (layerName: string) => string;
}

/** Writes a string list the way Keras does: fixed-length byte strings, split into chunks above the header limit. */
function writeStringList(obj: H5.Group, name: string, list: string[], chunkBytes: number): void {
  const width = Math.max(1, ...list.map((s) => Buffer.byteLength(s)));
  const chunks = Math.max(1, Math.ceil((width * list.length) / chunkBytes));
  if (chunks === 1) {
    obj.create_attribute(name, list, [list.length], `S${width}`);
    return;
  }
  const per = Math.ceil(list.length / chunks);
  for (let i = 0; i * per < list.length; i++) {
    const part = list.slice(i * per, (i + 1) * per);
    obj.create_attribute(`${name}${i}`, part, [part.length], `S${width}`);
  }
}

/** The group at `path` under `parent`, creating it and any missing parents (h5py does so for Keras 2 names like `conv1/conv`). */
function groupAt(parent: H5.Group, path: string): H5.Group {
  let g = parent;
  for (const part of path.split('/')) {
    g = g.keys().includes(part) ? (g.get(part) as H5.Group) : g.create_group(part);
  }
  return g;
}

/** Writes `model`'s weights as a Keras 2 .h5 file (atomically), readable by Keras `load_weights` and by graft. */
export async function writeKerasWeights(file: string, model: tf.LayersModel, options: WriteKerasWeightsOptions = {}): Promise<void> {
  const h5 = await loadH5wasm();
  const rename = options.rename ?? ((n: string) => n);
  const chunkBytes = options.chunkBytes ?? HDF5_OBJECT_HEADER_LIMIT;
  const mem = `/graft-write-${process.pid}-${++fileCounter}.h5`;
  const f = new h5.File(mem, 'w');
  try {
    const root: H5.Group = options.layout === 'model_weights' ? f.create_group('model_weights') : f;
    writeStringList(root, 'layer_names', model.layers.map((l) => rename(l.name)), chunkBytes);
    root.create_attribute('backend', 'tensorflow');
    root.create_attribute('keras_version', '2.15.0');
    for (const layer of model.layers) {
      const name = rename(layer.name);
      const g = groupAt(root, name);
      const values = layer.getWeights();
      const weightNames = layer.weights.map((w) => `${name}/${w.originalName.split('/').pop()}:0`);
      writeStringList(g, 'weight_names', weightNames, chunkBytes);
      if (weightNames.length) groupAt(g, name);
      weightNames.forEach((wn, i) => {
        g.create_dataset({ name: wn, data: values[i].dataSync() as Float32Array, shape: values[i].shape, dtype: '<f' });
      });
    }
  } finally {
    f.close();
  }
  try {
    await writeFileAtomic(file, h5.FS!.readFile(mem));
  } finally {
    h5.FS!.unlink(mem);
  }
}
