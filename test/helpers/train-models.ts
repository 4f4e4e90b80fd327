/** Tiny models and data for the training tests (dense-only, so they train on the wasm backend too). */
import * as tf from '@tensorflow/tfjs';
import { LayerGroup } from '../../src/io/graft-json';
import { arraySource } from '../../src/train/sources';
import { BatchSource } from '../../src/train/loop';
import { createRng } from '../../src/util/rng';

/** dense -> BN -> relu (`body`), dense -> relu (`mid`), dense softmax (`head`). */
export function mlp(seed = 1, inputs = 6, classes = 3, dropout = 0): { model: tf.LayersModel; groups: LayerGroup[] } {
  const init = (s: number) => tf.initializers.glorotUniform({ seed: seed * 10 + s });
  const input = tf.input({ shape: [inputs], name: 'in' });
  let x = tf.layers.dense({ name: 'fc1', units: 8, kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ name: 'relu1', activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'fc2', units: 8, activation: 'relu', kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  if (dropout) x = tf.layers.dropout({ name: 'drop', rate: dropout }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'predictions', units: classes, activation: 'softmax', kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  return {
    model: tf.model({ inputs: input, outputs: out, name: `mlp${seed}` }),
    groups: [
      { name: 'body', layers: ['fc1', 'bn1', 'relu1'] },
      { name: 'mid', layers: ['fc2'] },
      { name: 'head', layers: dropout ? ['drop', 'predictions'] : ['predictions'] },
    ],
  };
}

/** A learnable synthetic problem: the class is the argmax of three fixed projections of the input. */
export function blobs(n: number, options: { inputs?: number; classes?: number; seed?: number; batchSize?: number } = {}): {
  source: BatchSource;
  values: Float32Array;
  labels: Int32Array;
} {
  const { inputs = 6, classes = 3, seed = 3, batchSize = 16 } = options;
  const rng = createRng(seed);
  const values = Float32Array.from({ length: n * inputs }, () => rng.normal());
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const score = values[i * inputs + (c % inputs)] * 2 + values[i * inputs + ((c + 1) % inputs)];
      if (score > bestScore) [best, bestScore] = [c, score];
    }
    labels[i] = best;
  }
  return { source: arraySource({ values, shape: [inputs], labels, batchSize, seed }), values, labels };
}

/** Every weight's values by name. */
export function weightValues(model: tf.LayersModel): Record<string, Float32Array> {
  return Object.fromEntries(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
}
