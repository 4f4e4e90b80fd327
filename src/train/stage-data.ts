/**
 * What a training stage reads: images through the data pipeline, or, while a prefix of the model is frozen and
 * augmentation is off, that prefix's outputs computed once (in memory, or on disk keyed by the prefix weights, the
 * preprocessing and the images' bytes) with the rest of the model trained on them. With augmentation (every epoch
 * sees new images), a frozen prefix still runs outside the gradient tape, batch by batch, on the prefix engine.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AugmentSpec, parseAugmentation } from '../data/augment';
import { batches, countBatches } from '../data/batches';
import { Dataset } from '../data/dataset';
import { LayerGroup } from '../io/graft-json';
import { ModelMeta } from '../models/build';
import { cacheDir } from '../util/cache';
import type { ResolvedTrainOptions } from './fine-tune';
import { Batch, BatchSource } from './loop';
import { arraySource } from './sources';
import { splitModel } from '../models/split';
import { Runner } from '../models/runner';
import { TrainRuntime } from './runtime';

/** The options that decide what a stage reads. */
export type StageDataOptions = Pick<ResolvedTrainOptions, 'batchSize' | 'augment' | 'featureCache' | 'prefixEngine' | 'signal'>;

/** What a stage's data comes from: the model as staged, its metadata, the data, the options and the engines. */
export interface StageDataContext {
  /** The model with this stage's trainable flags. */
  model: tf.LayersModel;
  /** Its metadata (groups, input shape, preprocessing). */
  meta: ModelMeta;
  /** Training and validation data. */
  data: { train: Dataset; validation?: Dataset };
  /** The options that decide what a stage reads. */
  options: StageDataOptions;
  /** Seed of the shuffles and augmentation. */
  seed: string;
  /** Where notices go (null for silence). */
  log: ((line: string) => void) | null;
  /** The engines for the frozen prefix. */
  runtime: TrainRuntime;
}

const FEATURE_CACHE_LIMIT_BYTES = 2 * 1024 ** 3;

/** A BatchSource streaming a dataset through the data pipeline. */
export function datasetSource(ds: Dataset, meta: ModelMeta, o: { batchSize: number; augment?: AugmentSpec; shuffle: boolean; seed: string }): BatchSource {
  const [h, w, c] = meta.inputShape;
  // Keep decoded images between epochs while they fit comfortably in memory.
  const cache = ds.samples.length * h * w * c < 512 * 1024 ** 2;
  return {
    samples: ds.samples.length,
    steps: countBatches(ds, { batchSize: o.batchSize }),
    batches: (epoch) =>
      batches(ds, {
        inputShape: meta.inputShape,
        preprocessing: meta.preprocessing,
        augment: o.augment ?? null,
        batchSize: o.batchSize,
        shuffle: o.shuffle,
        seed: o.seed,
        epoch,
        cache,
      }),
  };
}

/** Number of leading groups whose layers are all frozen. */
function frozenPrefixGroups(model: tf.LayersModel, groups: LayerGroup[]): number {
  let n = 0;
  for (const g of groups.slice(0, -1)) {
    if (g.layers.some((name) => model.getLayer(name).trainable)) break;
    n += 1;
  }
  return n;
}

/** A key for cached features: prefix weights, boundary, input handling and every image's bytes. */
function featureKey(model: tf.LayersModel, groups: LayerGroup[], boundary: string, meta: ModelMeta, ds: Dataset): string {
  const hash = crypto.createHash('sha256');
  hash.update(JSON.stringify({ boundary, inputShape: meta.inputShape, preprocessing: meta.preprocessing, classNames: ds.classNames }));
  for (const g of groups) {
    for (const name of g.layers) {
      for (const w of model.getLayer(name).weights) {
        const values = w.read().dataSync();
        // A view: the backend may hand out part of a larger buffer.
        hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      }
    }
  }
  const seen = new Set<string>();
  for (const s of ds.samples) {
    hash.update(`${s.source}\0${s.label}\0`);
    const file = s.source.startsWith('idx:') ? s.source.slice(4).split('#')[0] : s.source;
    if (seen.has(file)) continue;
    seen.add(file);
    hash.update(fs.readFileSync(file));
  }
  return hash.digest('hex').slice(0, 32);
}

/** Runs the frozen prefix over a dataset once, in dataset order. */
async function computeFeatures(
  c: StageDataContext,
  prefix: { groups: LayerGroup[]; boundary: string },
  ds: Dataset,
): Promise<{ values: Float32Array; shape: number[]; engine: string } | null> {
  const { model, meta, options: o, log } = c;
  const { groups, boundary } = prefix;
  const diskFile = o.featureCache === 'disk' ? path.join(cacheDir(), 'features', `${featureKey(model, groups, boundary, meta, ds)}.f32`) : undefined;
  const runner = await c.runtime.prefixRunner(model, boundary, { engine: o.prefixEngine, log });
  try {
    const per = runner.outputShape.reduce((a, b) => a * b, 1);
    if (ds.samples.length * per * 4 > FEATURE_CACHE_LIMIT_BYTES) {
      log?.(`graft: trunk features of ${ds.samples.length} images would take ${((ds.samples.length * per * 4) / 1024 ** 3).toFixed(1)} GiB; training through the trunk instead`);
      return null;
    }
    if (diskFile && fs.existsSync(diskFile)) {
      const bytes = fs.readFileSync(diskFile);
      return { values: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), shape: runner.outputShape, engine: 'disk cache' };
    }
    const values = new Float32Array(ds.samples.length * per);
    let at = 0;
    for await (const batch of datasetSource(ds, meta, { batchSize: o.batchSize, shuffle: false, seed: '0' }).batches(0)) {
      // A stop request during the feature pass: give up the cache, so the loop stops (and checkpoints) at once.
      if (o.signal?.aborted) {
        batch.x.dispose();
        return null;
      }
      try {
        const n = batch.labels.length;
        values.set(await runner.run(batch.x.dataSync() as Float32Array, n), at * per);
        at += n;
      } finally {
        batch.x.dispose();
      }
    }
    if (diskFile) {
      fs.mkdirSync(path.dirname(diskFile), { recursive: true });
      fs.writeFileSync(`${diskFile}.tmp`, new Uint8Array(values.buffer));
      fs.renameSync(`${diskFile}.tmp`, diskFile);
    }
    return { values, shape: runner.outputShape, engine: runner.engine };
  } finally {
    await runner.dispose();
  }
}

/** What one stage trains on: the whole model on images, or the suffix on cached prefix outputs. */
export interface StagePlan {
  /** The model the loop trains (the suffix when training on features; shares layers with the full model). */
  model: tf.LayersModel;
  /** Its layer groups. */
  groups: LayerGroup[];
  /** Training batches. */
  train: BatchSource;
  /** Validation batches. */
  validation?: BatchSource;
  /** `images` or `features after <layer>`. */
  input: string;
  /** Frees the suffix model and the prefix engine (never the shared weights). */
  dispose(): void | Promise<void>;
}

/** Chooses what a stage trains on given the current trainable flags (cached features when a prefix is frozen). */
export async function planStageData(c: StageDataContext): Promise<StagePlan> {
  const { model, meta, data, options: o, seed } = c;
  const batchSize = o.batchSize;
  const groups = meta.groups;
  const frozen = frozenPrefixGroups(model, groups);
  const augmenting = parseAugmentation(o.augment).steps.length > 0;
  if (frozen > 0 && !augmenting && o.featureCache !== 'off') {
    const boundary = groups[frozen - 1].layers[groups[frozen - 1].layers.length - 1];
    const prefixGroups = groups.slice(0, frozen);
    const trainFeatures = await computeFeatures(c, { groups: prefixGroups, boundary }, data.train);
    if (!trainFeatures) return prefixedPlan(c, { suffixGroups: groups.slice(frozen), boundary });
    const valFeatures = trainFeatures && data.validation && (await computeFeatures(c, { groups: prefixGroups, boundary }, data.validation));
    if (trainFeatures && (valFeatures || !data.validation)) {
      const split = splitModel(model, boundary);
      split.prefix.dispose();
      const labels = (ds: Dataset) => Int32Array.from(ds.samples, (s) => s.label);
      return {
        model: split.suffix,
        groups: groups.slice(frozen),
        train: arraySource({ values: trainFeatures.values, shape: trainFeatures.shape, labels: labels(data.train), batchSize, seed }),
        validation:
          valFeatures && data.validation
            ? arraySource({ values: valFeatures.values, shape: valFeatures.shape, labels: labels(data.validation), batchSize, shuffle: false })
            : undefined,
        input: `features after ${boundary} (${trainFeatures.engine})`,
        dispose: () => {
          split.suffix.dispose();
        },
      };
    }
  }
  if (frozen > 0) {
    const boundary = groups[frozen - 1].layers[groups[frozen - 1].layers.length - 1];
    return prefixedPlan(c, { suffixGroups: groups.slice(frozen), boundary });
  }
  return {
    model,
    groups,
    train: datasetSource(data.train, meta, { batchSize, augment: o.augment, shuffle: true, seed }),
    validation: data.validation && datasetSource(data.validation, meta, { batchSize, shuffle: false, seed }),
    input: 'images',
    dispose: () => undefined,
  };
}

/** `source`'s image batches run through the frozen prefix: the batches the suffix trains on. */
function throughPrefix(source: BatchSource, runner: Runner): BatchSource {
  return {
    samples: source.samples,
    steps: source.steps,
    async *batches(epoch: number): AsyncIterable<Batch> {
      for await (const batch of source.batches(epoch)) {
        const n = batch.labels.length;
        let features: Float32Array;
        try {
          features = await runner.run((await batch.x.data()) as Float32Array, n);
        } finally {
          batch.x.dispose();
        }
        yield { x: tf.tensor(features, [n, ...runner.outputShape]), labels: batch.labels };
      }
    },
  };
}

/**
 * Trains the suffix after `boundary` on images that go through the frozen prefix batch by batch, outside the
 * gradient tape (as PyTorch records nothing for frozen layers): no tape memory for the prefix's activations, and the
 * prefix runs on onnxruntime when it can.
 */
async function prefixedPlan(c: StageDataContext, at: { suffixGroups: LayerGroup[]; boundary: string }): Promise<StagePlan> {
  const { model, meta, data, options: o, seed, log } = c;
  const { suffixGroups, boundary } = at;
  const batchSize = o.batchSize;
  const runner = await c.runtime.prefixRunner(model, boundary, { engine: o.prefixEngine, log });
  const split = splitModel(model, boundary);
  split.prefix.dispose();
  return {
    model: split.suffix,
    groups: suffixGroups,
    train: throughPrefix(datasetSource(data.train, meta, { batchSize, augment: o.augment, shuffle: true, seed }), runner),
    validation: data.validation && throughPrefix(datasetSource(data.validation, meta, { batchSize, shuffle: false, seed }), runner),
    input: `images through the frozen layers up to ${boundary} (${runner.engine}), outside the gradient tape`,
    dispose: async () => {
      split.suffix.dispose();
      await runner.dispose();
    },
  };
}
