import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraftError } from '../errors';

/** Keras `preprocess_input` modes; the mode travels in graft.json so prediction always uses the training one. */
export const PREPROCESS_MODES = ['caffe', 'tf', 'torch', 'none', 'unit'] as const;
/**
 * - `caffe`: RGB to BGR, subtract the ImageNet BGR means, no scaling (VGG, ResNet v1).
 * - `tf`: scale to [-1, 1] (Inception V3, Xception, ResNet v2).
 * - `torch`: scale to [0, 1], then ImageNet mean / std per channel.
 * - `unit`: scale to [0, 1] (graft's small CNNs).
 * - `none`: pixels as they are (0..255).
 */
export type PreprocessMode = (typeof PREPROCESS_MODES)[number];

/** File name of graft's metadata inside a model folder. */
export const GRAFT_JSON = 'graft.json';

/** A named run of layers, ordered from input to output; used for freezing and per-group learning rates. */
export interface LayerGroup {
  /** Group name, e.g. `stem`, `block3`, `conv4`, `head`. */
  name: string;
  /** Names of the layers in the group, in model order. */
  layers: string[];
}

/** Contents of graft.json: everything about a model that model.json does not say. */
export interface GraftMeta {
  /** Always `graft-model`. */
  format: 'graft-model';
  /** Version of this metadata layout. */
  formatVersion: 1;
  /** graft version that wrote the folder. */
  graftVersion: string;
  /** ISO time the folder was first created. */
  createdAt: string;
  /** Registry architecture name of the trunk (`vgg16`, `simple_cnn`, ...) or `custom`. */
  architecture: string;
  /** Model input size as [height, width, channels]. */
  inputShape: [number, number, number];
  /** Pixel preprocessing the model expects (Keras `preprocess_input` mode). */
  preprocessing: PreprocessMode;
  /** Class names in output order. */
  classNames: string[];
  /** `softmax`: one label per image; `sigmoid`: independent labels (multi-label or binary). */
  outputActivation: 'softmax' | 'sigmoid';
  /** Layer groups from input to head. */
  groups: LayerGroup[];
  /** Where the trunk weights came from (`imagenet`, a file, a model folder, or null for random). */
  weights?: string | null;
  /** simple_cnn's resolved shape options (width, depth, batch norm, top); absent in older folders, which are the defaults. */
  simpleCnn?: Record<string, unknown>;
  /** Summary of the last training run (written by the trainer). */
  training?: Record<string, unknown>;
  /** Validation / test metrics of the saved weights (written by the trainer or evaluator). */
  metrics?: Record<string, unknown>;
  /** Free-form fields from later versions are kept on round trip. */
  [extra: string]: unknown;
}

/** Fields a caller provides; the rest (`format`, versions, creation time) are filled in. */
export type GraftMetaInit = Omit<GraftMeta, 'format' | 'formatVersion' | 'graftVersion' | 'createdAt'> &
  Partial<Pick<GraftMeta, 'createdAt'>>;

/** Checks a parsed graft.json and returns it typed; every problem names the field and the file. */
export function validateGraftMeta(raw: unknown, source: string): GraftMeta {
  const bad = (what: string) => new GraftError(`${source}: ${what}; is this a graft model folder? (re-save it with graft)`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a JSON object');
  const m = raw as Record<string, unknown>;
  if (m.format !== 'graft-model') throw bad(`format is ${JSON.stringify(m.format)}, expected "graft-model"`);
  if (m.formatVersion !== 1) throw bad(`formatVersion ${JSON.stringify(m.formatVersion)} is not supported (expected 1)`);
  const shape = m.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw bad(`inputShape must be [height, width, channels]; received ${JSON.stringify(shape)}`);
  }
  if (!(PREPROCESS_MODES as readonly unknown[]).includes(m.preprocessing)) {
    throw bad(`preprocessing must be one of ${PREPROCESS_MODES.join(', ')}; received ${JSON.stringify(m.preprocessing)}`);
  }
  if (!Array.isArray(m.classNames) || !m.classNames.every((c) => typeof c === 'string')) {
    throw bad('classNames must be a list of strings');
  }
  if (m.outputActivation !== 'softmax' && m.outputActivation !== 'sigmoid') {
    throw bad(`outputActivation must be softmax or sigmoid; received ${JSON.stringify(m.outputActivation)}`);
  }
  if (!Array.isArray(m.groups) || !m.groups.every((g) => typeof g?.name === 'string' && Array.isArray(g?.layers))) {
    throw bad('groups must be a list of {name, layers}');
  }
  if (typeof m.architecture !== 'string') throw bad('architecture must be a string');
  return m as GraftMeta;
}

/** Reads and validates `graft.json` in a model folder. */
export function readGraftMeta(dir: string): GraftMeta {
  const file = path.join(dir, GRAFT_JSON);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    if (!fs.existsSync(dir)) throw new GraftError(`model folder ${dir} does not exist; pass the folder graft train or graft import-keras wrote.`);
    throw new GraftError(`${dir} has no ${GRAFT_JSON}; it is not a graft model folder (save or import the model with graft first).`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new GraftError(`${file} is not valid JSON (${(err as Error).message}); restore it from a checkpoint or re-save the model.`);
  }
  return validateGraftMeta(raw, file);
}
