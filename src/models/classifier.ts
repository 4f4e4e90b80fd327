/**
 * `createClassifier`: a pretrained (or random) trunk plus a new head for your classes. The trunk is a registry
 * architecture without its top (weights `imagenet`, a Keras .h5, or none), or the trunk of an existing graft model
 * folder (every group but `head`, with its weights, architecture and preprocessing).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraftError, rejectUnknownKeys } from '../errors';
import { GRAFT_JSON, LayerGroup } from '../io/graft-json';
import { loadModelFolder } from '../io/model-folder';
import { BuiltModel, ModelMeta, buildModel } from './build';
import { HeadOptions, applyHead, resolveHead } from './head';
import { Net, Sym } from './net';
import { getArchitecture } from './registry';
import { SimpleCnnOptions, resolveSimpleCnn } from './simple_cnn';
import { defaultHead } from './spec';
import { WeightsProgress } from './weights';

/** Options for `createClassifier`. */
export interface CreateClassifierOptions {
  /** Registry architecture of the trunk (not needed when `weights` is a graft model folder). */
  arch?: string;
  /** `imagenet`, a Keras .h5 path or URL, a graft model folder whose trunk to reuse, or null for random weights. */
  weights?: string | null;
  /** [height, width, channels]; default the architecture's (or the model folder's) input shape. */
  inputShape?: number[];
  /** Class names in output order. */
  classNames: string[];
  /** The new head (default: avg pooling + output; for `simple_cnn`, its flatten/dense/dropout top). */
  head?: HeadOptions;
  /** `simple_cnn` configuration when `arch` is `simple_cnn`. */
  simpleCnn?: SimpleCnnOptions;
  /** Download progress for `imagenet` / URL weights. */
  onProgress?: WeightsProgress;
  /** Seed of the new head's (and a random trunk's) initialisers, so the same seed builds the same model. */
  seed?: number | string;
}

const KEYS = ['arch', 'weights', 'inputShape', 'classNames', 'head', 'simpleCnn', 'onProgress', 'seed'];

/** Whether `weights` names a graft model folder rather than a file or `imagenet`. */
export function isModelFolder(weights: string | null | undefined): weights is string {
  return typeof weights === 'string' && weights !== 'imagenet' && fs.existsSync(path.join(weights, GRAFT_JSON));
}

/** Builds a classifier: trunk + new head; `meta.groups` ends with `head`. */
export async function createClassifier(options: CreateClassifierOptions): Promise<BuiltModel> {
  rejectUnknownKeys('createClassifier', options, KEYS);
  const classNames = options.classNames;
  if (!Array.isArray(classNames) || classNames.length === 0 || !classNames.every((c) => typeof c === 'string')) {
    throw new GraftError(`classNames must be a non-empty list of class names; received ${JSON.stringify(classNames)}.`);
  }
  if (new Set(classNames).size !== classNames.length) throw new GraftError(`classNames must be unique; received ${JSON.stringify(classNames)}.`);
  const trunk = await loadTrunk(options);
  try {
    const head = resolveHead(options.head, trunk.defaultHead);
    const net = new Net({ seed: options.seed === undefined ? undefined : `${options.seed}/head` });
    net.group('head');
    const out = applyHead(net, trunk.output, head, classNames.length);
    const model = tf.model({ inputs: trunk.input, outputs: out, name: `${trunk.meta.architecture}_classifier` });
    const meta: ModelMeta = {
      ...trunk.meta,
      classNames: [...classNames],
      outputActivation: head.outputActivation,
      groups: [...trunk.groups, ...net.groups],
      head,
    };
    return { model, meta };
  } catch (err) {
    trunk.dispose();
    throw err;
  }
}

/** A trunk ready for a head: its layers are shared with whatever model is built on `output`. */
export interface Trunk {
  /** The model input. */
  input: Sym;
  /** The trunk output (the last layer of the last trunk group). */
  output: Sym;
  /** Trunk groups, input first. */
  groups: LayerGroup[];
  /** What graft.json says about the trunk. */
  meta: Pick<ModelMeta, 'architecture' | 'inputShape' | 'preprocessing' | 'weights'> & { simpleCnn?: unknown };
  /** The head this trunk gets when the caller names none. */
  defaultHead: HeadOptions;
  /** Frees the trunk's weights (only when no model built on it will be disposed instead). */
  dispose(): void;
}

/** Options for `loadTrunk`. */
export type TrunkOptions = Omit<CreateClassifierOptions, 'classNames' | 'head'>;

/** A registry architecture without top (random, ImageNet or .h5 weights), or the trunk of a graft model folder. */
export async function loadTrunk(o: TrunkOptions): Promise<Trunk> {
  return isModelFolder(o.weights) ? folderTrunk(o.weights, o) : registryTrunk(o);
}

async function registryTrunk(o: TrunkOptions): Promise<Trunk> {
  if (o.arch === undefined) throw new GraftError('createClassifier needs arch (an architecture name) unless weights is a graft model folder.');
  const spec = getArchitecture(o.arch);
  const built = await buildModel({
    arch: spec.name,
    includeTop: false,
    inputShape: o.inputShape,
    weights: o.weights ?? null,
    simpleCnn: o.simpleCnn,
    onProgress: o.onProgress,
    seed: o.seed,
  });
  const head = defaultHead(spec, { simpleCnn: resolveSimpleCnn(o.simpleCnn) });
  return {
    input: built.model.inputs[0],
    output: built.model.outputs[0],
    groups: built.meta.groups,
    meta: {
      architecture: spec.name,
      inputShape: built.meta.inputShape,
      preprocessing: built.meta.preprocessing,
      weights: o.weights ?? null,
      ...(built.meta.simpleCnn ? { simpleCnn: built.meta.simpleCnn } : {}),
    },
    defaultHead: head,
    dispose: () => built.model.dispose(),
  };
}

/** The trunk of a saved graft model: every group before `head`, sharing its layers and weights. */
async function folderTrunk(dir: string, o: TrunkOptions): Promise<Trunk> {
  if (o.simpleCnn !== undefined) throw new GraftError('simpleCnn cannot reshape a trunk loaded from a model folder; drop the simpleCnn option.');
  const { model, meta } = await loadModelFolder(dir);
  const fail = (message: string): never => {
    model.dispose();
    throw new GraftError(message);
  };
  if (o.arch !== undefined && o.arch !== meta.architecture) {
    fail(`${dir} holds a ${meta.architecture} model but arch is ${o.arch}; drop arch or pick the matching folder.`);
  }
  if (o.inputShape !== undefined && JSON.stringify(o.inputShape) !== JSON.stringify(meta.inputShape)) {
    fail(`${dir} takes input ${JSON.stringify(meta.inputShape)}, received inputShape ${JSON.stringify(o.inputShape)}; a saved trunk keeps its input shape, so drop inputShape.`);
  }
  const headIndex = meta.groups.findIndex((g) => g.name === 'head');
  const groups = meta.groups.slice(0, headIndex < 0 ? meta.groups.length : headIndex);
  const boundary = groups.at(-1)?.layers.at(-1);
  if (headIndex !== meta.groups.length - 1 || !boundary) {
    fail(`${dir}/graft.json has no trunk groups followed by a final head group; it cannot donate a trunk (re-save it with graft).`);
  }
  const oldHead = model.layers.filter((l) => meta.groups[headIndex].layers.includes(l.name));
  const output = model.getLayer(boundary!).output as Sym;
  for (const layer of oldHead) layer.dispose();
  const spec = safeArchitecture(meta.architecture);
  // Folders written before simple_cnn's options were recorded hold the default simple_cnn.
  const savedCnn = (meta.simpleCnn ?? {}) as SimpleCnnOptions;
  const head = defaultHead(spec, { simpleCnn: resolveSimpleCnn(savedCnn) });
  return {
    input: model.inputs[0],
    output,
    groups,
    meta: {
      architecture: meta.architecture,
      inputShape: meta.inputShape,
      preprocessing: meta.preprocessing,
      weights: dir,
      ...(spec?.name === 'simple_cnn' ? { simpleCnn: resolveSimpleCnn(savedCnn) } : {}),
    },
    defaultHead: head,
    dispose: () => tf.model({ inputs: model.inputs, outputs: output }).dispose(),
  };
}

function safeArchitecture(name: string) {
  try {
    return getArchitecture(name);
  } catch {
    return undefined;
  }
}
