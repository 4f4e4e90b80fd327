/**
 * Classification losses on the model's probabilities (the head ends in softmax or sigmoid): cross-entropy with
 * optional label smoothing, binary cross-entropy for sigmoid heads, and per-class weights. Weighted losses follow
 * Keras: each sample's loss is multiplied by its class weight and the batch mean is taken over samples.
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';

/** Options for `classificationLoss`. */
export interface LossOptions {
  /** `softmax`: categorical cross-entropy; `sigmoid`: binary cross-entropy per output. */
  outputActivation: 'softmax' | 'sigmoid';
  /** Label smoothing epsilon in [0, 1): targets become (1 - eps) * onehot + eps / K. */
  labelSmoothing?: number;
  /** Weight per class index (multiplies that class's samples' losses). */
  classWeights?: number[];
}

// Keras's epsilon for clipping probabilities before the log.
const EPS = 1e-7;

/** Mean loss of a batch of probabilities `[n, K]` (or `[n, 1]` for a one-unit sigmoid) against integer labels. */
export function classificationLoss(probs: tf.Tensor, labels: Int32Array, options: LossOptions): tf.Scalar {
  return tf.tidy(() => {
    const n = probs.shape[0];
    const units = probs.shape[1] ?? 1;
    const smoothing = options.labelSmoothing ?? 0;
    const p = probs.reshape([n, units]).clipByValue(EPS, 1 - EPS);
    let targets: tf.Tensor =
      units === 1 ? tf.tensor2d(Array.from(labels), [n, 1], 'float32') : tf.oneHot(tf.tensor1d(labels, 'int32'), units).toFloat();
    if (smoothing > 0) targets = targets.mul(1 - smoothing).add(smoothing / (units === 1 ? 2 : units));
    let perSample: tf.Tensor1D;
    if (options.outputActivation === 'softmax') {
      perSample = targets.mul(p.log()).sum(1).neg() as tf.Tensor1D;
    } else {
      const bce = targets.mul(p.log()).add(tf.scalar(1).sub(targets).mul(tf.scalar(1).sub(p).log())).neg();
      perSample = bce.mean(1) as tf.Tensor1D;
    }
    if (options.classWeights) {
      const w = Float32Array.from(labels, (label) => options.classWeights![label] ?? 1);
      perSample = perSample.mul(tf.tensor1d(w));
    }
    return perSample.mean() as tf.Scalar;
  });
}

/** scikit-learn's `class_weight='balanced'`: n_samples / (n_classes * count(class)); absent classes get 1. */
export function balancedClassWeights(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]] += 1;
  return counts.map((c) => (c ? labels.length / (numClasses * c) : 1));
}

/** Resolves `classWeights` as given by a user: `auto` (balanced), a list, or a map of class name -> weight. */
export function resolveClassWeights(
  spec: 'auto' | number[] | Record<string, number> | undefined,
  classNames: string[],
  labels: ArrayLike<number>,
): number[] | undefined {
  if (spec === undefined) return undefined;
  if (spec === 'auto') return balancedClassWeights(labels, classNames.length);
  if (Array.isArray(spec)) {
    if (spec.length !== classNames.length || spec.some((w) => !(w >= 0))) {
      throw new GraftError(`class weights must be ${classNames.length} non-negative numbers (one per class); received ${JSON.stringify(spec)}.`);
    }
    return spec;
  }
  if (typeof spec === 'object' && spec !== null) {
    for (const name of Object.keys(spec)) {
      if (!classNames.includes(name)) throw new GraftError(`class weights name class ${JSON.stringify(name)}; valid classes are ${classNames.join(', ')}.`);
    }
    return classNames.map((c) => spec[c] ?? 1);
  }
  throw new GraftError(`class weights must be "auto", a list or an object of class -> weight; received ${JSON.stringify(spec)}.`);
}

/** Number of correct predictions in a batch. */
export function countCorrect(probs: tf.Tensor, labels: Int32Array): number {
  const predicted = predictedClasses(probs);
  return predicted.reduce((n, c, i) => n + (c === labels[i] ? 1 : 0), 0);
}

/** Predicted class index per sample (argmax, or threshold 0.5 for a one-unit sigmoid). */
export function predictedClasses(probs: tf.Tensor): Int32Array {
  return tf.tidy(() => {
    const n = probs.shape[0];
    const units = probs.shape[1] ?? 1;
    const predicted = units === 1 ? probs.reshape([n]).greaterEqual(0.5).toInt() : probs.argMax(1).toInt();
    return Int32Array.from(predicted.dataSync());
  });
}
