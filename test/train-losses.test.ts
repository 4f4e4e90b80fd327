import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { balancedClassWeights, classificationLoss, resolveClassWeights } from '../src/train/losses';

describe('losses', () => {
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));
  const probs = () => tf.tensor2d([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]);
  const value = (t: tf.Scalar) => {
    const v = t.dataSync()[0];
    t.dispose();
    return v;
  };

  test('cross-entropy, label smoothing and class weights against hand values, without leaks', () => {
    const p = probs();
    const labels = Int32Array.from([0, 2]);
    const start = tf.memory().numTensors;
    expect(value(classificationLoss(p, labels, { outputActivation: 'softmax' }))).toBeCloseTo(-(Math.log(0.7) + Math.log(0.6)) / 2, 6);
    // eps 0.3 over 3 classes: target 0.8 for the true class, 0.1 for the others.
    const smooth = -(0.8 * Math.log(0.7) + 0.1 * Math.log(0.2) + 0.1 * Math.log(0.1) + 0.1 * Math.log(0.1) + 0.1 * Math.log(0.3) + 0.8 * Math.log(0.6)) / 2;
    expect(value(classificationLoss(p, labels, { outputActivation: 'softmax', labelSmoothing: 0.3 }))).toBeCloseTo(smooth, 6);
    // Keras class weights: each sample's loss times its class weight, mean over samples.
    expect(value(classificationLoss(p, labels, { outputActivation: 'softmax', classWeights: [2, 1, 0.5] }))).toBeCloseTo(-(2 * Math.log(0.7) + 0.5 * Math.log(0.6)) / 2, 6);
    expect(tf.memory().numTensors).toBe(start);
    p.dispose();
  });

  test('binary cross-entropy for sigmoid heads (one unit and one-hot multi-unit)', () => {
    const one = tf.tensor2d([[0.9], [0.2]]);
    expect(value(classificationLoss(one, Int32Array.from([1, 0]), { outputActivation: 'sigmoid' }))).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8)) / 2, 6);
    const multi = tf.tensor2d([[0.9, 0.3]]);
    expect(value(classificationLoss(multi, Int32Array.from([0]), { outputActivation: 'sigmoid' }))).toBeCloseTo(-(Math.log(0.9) + Math.log(0.7)) / 2, 6);
    tf.dispose([one, multi]);
  });

  test('balanced weights follow scikit-learn; weight specs are checked', () => {
    expect(balancedClassWeights([0, 0, 0, 1], 2)).toEqual([4 / 6, 2]);
    expect(resolveClassWeights({ b: 3 }, ['a', 'b'], [0, 1])).toEqual([1, 3]);
    expect(() => resolveClassWeights({ c: 3 }, ['a', 'b'], [0])).toThrow(/class weights name class "c"; valid classes are a, b/);
    expect(() => resolveClassWeights([1], ['a', 'b'], [0])).toThrow(/must be 2 non-negative numbers/);
  });
});
