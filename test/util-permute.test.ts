/**
 * permute (a row-major array in a new axis order) against tfjs's transpose on the cpu backend: ranks 1 to 6, the
 * kernel layouts graft converts, the identity, the same last axis on both sides, and size-1 axes.
 */
import * as tf from '@tensorflow/tfjs';
import { inversePermutation, permute } from '../src/util/permute';
import { createRng } from '../src/util/rng';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const cases: Array<[number[], number[]]> = [
  [[7], [0]],
  [[3, 5], [1, 0]],
  [[2, 3, 4], [2, 0, 1]],
  [[3, 3, 8, 16], [3, 2, 0, 1]], // a conv kernel HWIO -> OIHW
  [[3, 3, 8, 2], [2, 3, 0, 1]], // a depthwise kernel [kh, kw, in, mult] -> [in, mult, kh, kw]
  [[2, 3, 4, 5], [0, 3, 1, 2]], // NHWC -> NCHW
  [[2, 3, 1, 4, 5], [4, 1, 3, 0, 2]],
  [[2, 2, 3, 2, 3, 2], [5, 3, 1, 0, 4, 2]],
  [[4, 0, 3], [1, 2, 0]],
  // Kernel-sized and odd-sized shapes both ways, the identity, and size-1 axes.
  [[3, 3, 20, 37], [3, 2, 0, 1]],
  [[37, 20, 3, 3], [2, 3, 1, 0]],
  [[2, 5, 7, 33], [0, 3, 1, 2]],
  [[33, 17], [1, 0]],
  [[2, 3, 4, 5], [0, 1, 2, 3]],
  [[2, 3, 4, 5], [2, 3, 0, 1]],
  [[5, 1, 18, 1], [3, 2, 1, 0]],
];

test.each(cases)('shape %j, perm %j: equals tf.transpose, and the inverse restores the input', (shape, perm) => {
  const rng = createRng(3);
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1));
  const expected = tf.tidy(() => tf.transpose(tf.tensor(data, shape), perm).dataSync() as Float32Array);
  const out = permute(data, shape, perm);
  expect(Array.from(out)).toEqual(Array.from(expected));
  const back = permute(out, perm.map((p) => shape[p]), inversePermutation(perm));
  expect(Array.from(back)).toEqual(Array.from(data));
});

test('a wrong permutation or a wrong length is an error naming it', () => {
  expect(() => permute(new Float32Array(6), [2, 3], [0, 0])).toThrow('[0, 0] is not a permutation of the 2 axes of [2, 3]');
  expect(() => permute(new Float32Array(6), [2, 3], [1])).toThrow('is not a permutation');
  expect(() => permute(new Float32Array(5), [2, 3], [1, 0])).toThrow('5 values do not fill the shape [2, 3] (6)');
});

test('inversePermutation undoes the permutation', () => {
  expect(inversePermutation([2, 0, 3, 1])).toEqual([1, 3, 0, 2]);
  expect(inversePermutation([2, 0, 3, 1]).map((i) => [2, 0, 3, 1][i])).toEqual([0, 1, 2, 3]);
});
