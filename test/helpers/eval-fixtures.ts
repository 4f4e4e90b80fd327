/** A tiny saved model and PNG folder for evaluation tests: the model predicts the brightest colour channel. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { saveModelFolder } from '../../src/io/model-folder';
import { GraftMetaInit } from '../../src/io/graft-json';

export const CLASSES = ['blue', 'green', 'red'];

/** A small CNN that predicts the channel with the highest mean (set weights), so predictions are varied but not perfect. */
export function colourModel(activation: 'softmax' | 'sigmoid' = 'softmax'): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const conv = tf.layers.conv2d({ name: 'conv1', filters: 3, kernelSize: 3, padding: 'same' });
  const dense = tf.layers.dense({ name: 'predictions', units: 3, activation });
  let x = conv.apply(input) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: dense.apply(x) as tf.SymbolicTensor });
  const kernel = new Float32Array(3 * 3 * 3 * 3);
  for (let c = 0; c < 3; c++) kernel[((1 * 3 + 1) * 3 + c) * 3 + c] = 1;
  tf.tidy(() => {
    conv.setWeights([tf.tensor4d(kernel, [3, 3, 3, 3]), tf.zeros([3])]);
    // A sigmoid head gets a bias so its scores spread around 0.5 instead of all saturating.
    dense.setWeights([tf.eye(3).mul(12), tf.fill([3], activation === 'sigmoid' ? -5 : 0)]);
  });
  return model;
}

export const META: GraftMetaInit = {
  architecture: 'custom',
  inputShape: [8, 8, 3],
  preprocessing: 'unit',
  classNames: CLASSES,
  outputActivation: 'softmax',
  groups: [{ name: 'head', layers: ['conv1', 'pool', 'predictions'] }],
  weights: null,
};

export async function pngFolder(root: string, classes: string[], perClass: number): Promise<void> {
  let seed = 1;
  for (const [ci, name] of classes.entries()) {
    fs.mkdirSync(path.join(root, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = Buffer.alloc(8 * 8 * 3);
      for (let p = 0; p < px.length; p++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        // The class's channel is brighter by a per-image margin that is sometimes negative: some images are misread.
        const margin = ((i * 53 + ci * 17) % 100) - 30;
        px[p] = Math.max(0, Math.min(255, (seed % 200) + (p % 3 === ci ? margin : 0)));
      }
      await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(root, name, `${String(i).padStart(2, '0')}.png`));
    }
  }
}

/** Saves the colour model into `dir` (a sigmoid head makes it a multi-label model). */
export async function saveColourModel(dir: string, activation: 'softmax' | 'sigmoid' = 'softmax'): Promise<void> {
  const model = colourModel(activation);
  await saveModelFolder(dir, model, { ...META, outputActivation: activation });
  model.dispose();
}
