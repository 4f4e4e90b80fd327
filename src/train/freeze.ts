/**
 * Freezing that really freezes. Layers are chosen by group, name, pattern, index or "everything up to X"; a frozen
 * BatchNormalization layer runs in inference mode (normalises with its moving statistics and never updates them),
 * as Keras does since 2.1.3. tfjs's BN uses batch statistics whenever `training` is true, so a frozen BN layer gets an
 * instance-level `call` that forces `training: false`; the class is untouched, so model.json holds only stock layers
 * and the `trainable` flags it saves are what decides the mode again after loading (`syncFrozenBatchNorm`).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { LayerGroup } from '../io/graft-json';
import { LayerSummary, ModelSummary, summarizeModel } from '../models/summary';

/** Which layers an operation applies to; every field given adds layers (a union). */
export interface LayerSelection {
  /** Group names from graft.json `groups` (needs `groups` in the options). */
  groups?: string[];
  /** Exact layer names. */
  layers?: string[];
  /** Layers whose name matches this regular expression. */
  pattern?: RegExp | string;
  /** Indices into `model.layers`; negative ones count from the end. */
  indices?: number[];
  /** Everything before a layer: a count N means Keras `layers[:N]`; a name means up to and including that layer. */
  upTo?: number | string;
}

/** Options for `freeze`, `unfreeze` and `freezeTo`. */
export interface FreezeOptions {
  /** The model's layer groups (graft.json `groups`), needed to select by group. */
  groups?: LayerGroup[];
  /** Keep BatchNormalization layers trainable (batch statistics) while freezing the rest (fastai's default). */
  trainBn?: boolean;
}

const BN_CLASS = 'BatchNormalization';
const INFERENCE_MODE = Symbol('graft.bnInferenceMode');
const NO_SCALE_TRAINING = Symbol('graft.bnNoScaleTraining');

type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/** Resolves a selection to layers of `model`, in model order; unknown names are errors listing what exists. */
export function selectLayers(model: tf.LayersModel, selection: LayerSelection, options: FreezeOptions = {}): tf.layers.Layer[] {
  const layers = model.layers;
  const chosen = new Set<tf.layers.Layer>();
  const byName = new Map(layers.map((l) => [l.name, l]));
  const named = (name: string, what: string) => {
    const layer = byName.get(name);
    if (!layer) throw new GraftError(`${what} ${JSON.stringify(name)} is not a layer of model ${model.name}; run graft summary to see the layer names.`);
    return layer;
  };
  for (const groupName of selection.groups ?? []) {
    const group = options.groups?.find((g) => g.name === groupName);
    if (!group) {
      const valid = options.groups?.map((g) => g.name).join(', ') || 'none (the model has no groups)';
      throw new GraftError(`layer group ${JSON.stringify(groupName)} does not exist; valid groups are ${valid}.`);
    }
    for (const name of group.layers) chosen.add(named(name, `group ${group.name} lists layer`));
  }
  for (const name of selection.layers ?? []) chosen.add(named(name, 'layer'));
  if (selection.pattern !== undefined) {
    const re = typeof selection.pattern === 'string' ? new RegExp(selection.pattern) : selection.pattern;
    const hits = layers.filter((l) => re.test(l.name));
    if (!hits.length) throw new GraftError(`pattern ${re} matches no layer of model ${model.name}; run graft summary to see the layer names.`);
    hits.forEach((l) => chosen.add(l));
  }
  for (const index of selection.indices ?? []) {
    const i = index < 0 ? layers.length + index : index;
    if (!Number.isInteger(index) || i < 0 || i >= layers.length) {
      throw new GraftError(`layer index ${index} is out of range; the model has ${layers.length} layers (0..${layers.length - 1}, or negative from the end).`);
    }
    chosen.add(layers[i]);
  }
  if (selection.upTo !== undefined) {
    const end = typeof selection.upTo === 'number' ? selection.upTo : layers.indexOf(named(selection.upTo, 'upTo layer')) + 1;
    if (!Number.isInteger(end) || end < 0 || end > layers.length) {
      throw new GraftError(`upTo ${selection.upTo} is out of range; the model has ${layers.length} layers.`);
    }
    layers.slice(0, end).forEach((l) => chosen.add(l));
  }
  return layers.filter((l) => chosen.has(l));
}

/** Makes the selected layers non-trainable (BN layers stay trainable with `trainBn`); returns the layers changed. */
export function freeze(model: tf.LayersModel, selection: LayerSelection, options: FreezeOptions = {}): tf.layers.Layer[] {
  return setTrainable(model, selectLayers(model, selection, options), false, options);
}

/** Makes the selected layers trainable; returns the layers changed. */
export function unfreeze(model: tf.LayersModel, selection: LayerSelection, options: FreezeOptions = {}): tf.layers.Layer[] {
  return setTrainable(model, selectLayers(model, selection, options), true, options);
}

/**
 * fastai's `freeze_to(n)` over layer groups: groups before index `n` are frozen, the rest trainable. A negative `n`
 * counts from the end (`-1`: only the last group, the head, trains). Layers in no group keep their flag.
 */
export function freezeTo(model: tf.LayersModel, groups: LayerGroup[], n: number, options: Omit<FreezeOptions, 'groups'> = {}): void {
  if (!Number.isInteger(n) || Math.abs(n) > groups.length) {
    throw new GraftError(`freezeTo needs a group index between ${-groups.length} and ${groups.length}; received ${n}.`);
  }
  const split = n < 0 ? groups.length + n : n;
  const names = (gs: LayerGroup[]) => gs.map((g) => g.name);
  const opts = { ...options, groups };
  if (split > 0) freeze(model, { groups: names(groups.slice(0, split)) }, opts);
  if (split < groups.length) unfreeze(model, { groups: names(groups.slice(split)) }, opts);
}

/** Sets `trainable` on layers and brings the BN inference mode in line with the flags. */
function setTrainable(model: tf.LayersModel, layers: tf.layers.Layer[], trainable: boolean, options: FreezeOptions): tf.layers.Layer[] {
  const changed = layers.filter((l) => !(options.trainBn && !trainable && l.getClassName() === BN_CLASS));
  for (const layer of changed) layer.trainable = trainable;
  syncFrozenBatchNorm(model);
  return changed;
}

/** Every layer of a model, descending into nested models. */
export function allLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const out: tf.layers.Layer[] = [];
  for (const layer of model.layers) {
    out.push(layer);
    if (layer instanceof tf.LayersModel) out.push(...allLayers(layer));
  }
  return out;
}

/**
 * Puts every non-trainable BatchNormalization layer in inference mode and every trainable one back in normal mode;
 * a trainable one without gamma (`scale: false`, as in Keras's Inception V3) gets `gammaFreeCall`, since tfjs-layers
 * 4.22 reads the missing gamma in training mode. Idempotent. Call after loading a model whose saved topology has
 * frozen BN layers, and before training (freeze/unfreeze and the training loop call it themselves).
 */
export function syncFrozenBatchNorm(model: tf.LayersModel): void {
  for (const layer of allLayers(model)) {
    if (layer.getClassName() !== BN_CLASS) continue;
    const own = layer as unknown as Record<string | symbol, unknown>;
    const frozen = !layer.trainable;
    const noScale = !frozen && !(layer as unknown as BnLayer).scale;
    if (frozen && !own[INFERENCE_MODE]) {
      delete own[NO_SCALE_TRAINING];
      // Without gamma, tfjs's own inference call passes an undefined scale to batchNorm, which crashes under a
      // gradient tape (it saves every input for the backward pass); gammaFreeCall passes a constant 1.
      const base = (layer as unknown as BnLayer).scale ? (Object.getPrototypeOf(layer).call as CallFn) : gammaFreeCall();
      own.call = function (this: tf.layers.Layer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown> = {}) {
        return base.call(this, inputs, { ...kwargs, training: false });
      };
      own[INFERENCE_MODE] = true;
    } else if (noScale && !own[NO_SCALE_TRAINING]) {
      delete own[INFERENCE_MODE];
      own.call = gammaFreeCall();
      own[NO_SCALE_TRAINING] = true;
    } else if (!frozen && !noScale && (own[INFERENCE_MODE] || own[NO_SCALE_TRAINING])) {
      delete own.call;
      delete own[INFERENCE_MODE];
      delete own[NO_SCALE_TRAINING];
    }
  }
}

/** The fields of tfjs-layers' BatchNormalization (and its LayerVariables) that `gammaFreeCall` uses. */
interface BnVariable {
  read(): tf.Tensor;
  write(value: tf.Tensor): void;
}
interface BnLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  beta?: BnVariable;
  movingMean: BnVariable;
  movingVariance: BnVariable;
}

/**
 * BatchNormalization.call for a layer without gamma. Inference mode normalises with the moving statistics; training
 * mode mirrors tfjs-layers 4.22 (`normalizeBatchInTraining` and `doMovingAverage`) with gamma left out: batch moments
 * over every axis but the channel axis, normalised with the layer's epsilon and beta (if `center`), and
 * moving = moving - (moving - batch) * (1 - momentum) for the mean and the (biased) batch variance.
 */
function gammaFreeCall(): CallFn {
  return function (this: tf.layers.Layer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown> = {}) {
    const bn = this as unknown as BnLayer;
    return tf.tidy(() => {
      if (Array.isArray(inputs) && inputs.length !== 1) throw new GraftError(`BatchNormalization ${this.name} expects exactly one input tensor.`);
      const input = Array.isArray(inputs) ? inputs[0] : inputs;
      const ndim = input.rank;
      const axis = bn.axis >= 0 ? bn.axis : bn.axis + ndim;
      const reductionAxes = Array.from({ length: ndim }, (_, i) => i).filter((i) => i !== axis);
      const training = Boolean(kwargs.training);
      const { mean, variance } = training
        ? tf.moments(input, reductionAxes)
        : { mean: bn.movingMean.read(), variance: bn.movingVariance.read() };
      // tfjs's batchNorm gradient needs scale and offset tensors: a constant 1 stands in for the absent gamma (no
      // weight is added), a constant 0 for an absent beta.
      const gamma = tf.onesLike(mean);
      const beta = bn.center && bn.beta ? bn.beta.read() : tf.zerosLike(mean);
      // With the channel axis last this is tfjs's regularNormalizeBatchInTraining. Otherwise tfjs reshapes the
      // per-channel tensors and still calls batchNorm, whose kernels index them as if the channel axis were last (wrong
      // output), so broadcasting arithmetic is used instead.
      let normed: tf.Tensor;
      if (axis === ndim - 1) {
        normed = tf.batchNorm(input, mean, variance, beta, gamma, bn.epsilon);
      } else {
        const targetShape = input.shape.map((d, i) => (i === axis ? d : 1));
        const wide = (t: tf.Tensor) => tf.reshape(t, targetShape);
        normed = tf.add(tf.mul(tf.sub(input, wide(mean)), tf.rsqrt(tf.add(wide(variance), bn.epsilon))), wide(beta));
      }
      const doMovingAverage = (variable: BnVariable, value: tf.Tensor, momentum: number) => {
        tf.tidy(() => {
          const decay = 1 - momentum;
          const origValue = variable.read();
          const updateDelta = tf.mul(tf.sub(origValue, value), decay);
          variable.write(tf.sub(origValue, updateDelta));
        });
      };
      if (training) {
        doMovingAverage(bn.movingMean, mean, bn.momentum);
        doMovingAverage(bn.movingVariance, variance, bn.momentum);
      }
      return normed;
    });
  };
}

/** Whether a BN layer is currently forced into inference mode. */
export function isInInferenceMode(layer: tf.layers.Layer): boolean {
  return Boolean((layer as unknown as Record<symbol, unknown>)[INFERENCE_MODE]);
}

/** One layer's row in `describeTrainable`: the summary row, and for BN layers whether training leaves them alone. */
export interface LayerTrainability extends LayerSummary {
  /** For BN layers: whether they normalise with moving statistics during training (frozen). */
  inferenceMode?: boolean;
}

/** Frozen / trainable state of a whole model, for `graft summary` and progress lines. */
export interface TrainabilityReport extends ModelSummary {
  /** One row per top-level layer, in model order. */
  layers: LayerTrainability[];
}

/** `summarizeModel` plus which BN layers are frozen (they normalise with moving statistics while training). */
export function describeTrainable(model: tf.LayersModel, groups: LayerGroup[] = []): TrainabilityReport {
  const summary = summarizeModel(model, groups);
  const layers = summary.layers.map((row): LayerTrainability => (row.className === BN_CLASS ? { ...row, inferenceMode: !row.trainable } : row));
  return { ...summary, layers };
}

/** The state word `graft summary` shows for a layer. */
export function trainabilityLabel(row: LayerTrainability): string {
  return row.trainable ? 'yes' : row.inferenceMode ? 'no (BN uses moving stats)' : 'no';
}
