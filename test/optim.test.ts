import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { freezeTo } from '../src/train/freeze';
import { fit } from '../src/train/loop';
import { GroupOptimizer, buildParamGroups, evenMults, optimizerConfig, variableOf } from '../src/train/optim';
import { arraySource } from '../src/train/sources';
import { blobs, mlp, weightValues } from './helpers/train-models';

/** Runs `steps` updates of one optimiser on a single weight with the given gradients; returns the weight after each. */
function run(config: Parameters<typeof optimizerConfig>[0], start: number[], grads: number[][], lr: number): number[][] {
  const opt = new GroupOptimizer(optimizerConfig(config));
  const p = tf.variable(tf.tensor1d(start));
  const out: number[][] = [];
  for (const g of grads) {
    const grad = tf.tensor1d(g);
    opt.apply([{ key: 'w', variable: p, grad }], lr);
    grad.dispose();
    out.push(Array.from(p.dataSync()));
  }
  opt.dispose();
  p.dispose();
  return out;
}

describe('optimisers', () => {
  beforeAll(() => initBackend({ backend: 'wasm', log: null }));

  test('SGD, momentum, Nesterov, Adam, AdamW and RMSprop match hand-computed PyTorch updates', () => {
    const close = (a: number[][], b: number[][]) => a.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(b[i][j], 5)));
    close(run({ type: 'sgd' }, [1], [[0.5], [0.5]], 0.1), [[0.95], [0.9]]);
    // Momentum 0.9: buf1 = g1 = 1, buf2 = 0.9 + 2 = 2.9.
    close(run({ type: 'sgd', momentum: 0.9 }, [0], [[1], [2]], 0.1), [[-0.1], [-0.39]]);
    // Nesterov: step uses g + mu * buf: 1 + 0.9 = 1.9, then 2 + 0.9 * 2.9 = 4.61.
    close(run({ type: 'sgd', momentum: 0.9, nesterov: true }, [0], [[1], [2]], 0.1), [[-0.19], [-0.651]]);
    // Adam step 1 moves by lr * sign(g) (bias-corrected m / sqrt(v) = g / |g|).
    const adam = run({ type: 'adam' }, [1, 1], [[0.3, -2], [0.1, -2]], 0.01);
    close([adam[0]], [[0.99, 1.01]]);
    // Step 2 by hand for the first coordinate.
    const m = 0.9 * 0.03 + 0.1 * 0.1;
    const v = 0.999 * 0.001 * 0.09 + 0.001 * 0.01;
    const step2 = (m / (1 - 0.81)) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-7);
    expect(adam[1][0]).toBeCloseTo(0.99 - 0.01 * step2, 6);
    // AdamW decays the weight directly (p * (1 - lr * wd)); Adam with weight decay adds it to the gradient instead.
    close(run({ type: 'adamw', weightDecay: 0.1 }, [2], [[0]], 0.1), [[2 * (1 - 0.01)]]);
    close(run({ type: 'adam', weightDecay: 0.1 }, [2], [[0]], 0.1), [[1.9]]);
    // RMSprop: sq = 0.1 * g^2, update g / sqrt(sq).
    close(run({ type: 'rmsprop' }, [1], [[2]], 0.01), [[1 - (0.01 * 2) / Math.sqrt(0.4)]]);
    expect(() => optimizerConfig({ type: 'adamm' } as never)).toThrow(/optimizer must be one of sgd, adam, adamw, rmsprop; received "adamm"/);
    expect(() => optimizerConfig({ type: 'sgd', nesterov: true })).toThrow(/nesterov needs momentum/);
    expect(() => optimizerConfig({ type: 'sgd', momentun: 0.9 } as never)).toThrow(/optimizer has no option "momentun"/);
  });

  test('state is keyed by weight name, survives a round trip, and updates leak no tensors', () => {
    const opt = new GroupOptimizer(optimizerConfig({ type: 'adam' }));
    const a = tf.variable(tf.ones([3]));
    const g = tf.ones([3]);
    opt.apply([{ key: 'a', variable: a, grad: g }], 0.1);
    const count = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) opt.apply([{ key: 'a', variable: a, grad: g }], 0.1);
    expect(tf.memory().numTensors).toBe(count);
    const state = opt.getState();
    expect(Object.keys(state.slots).sort()).toEqual(['a::m', 'a::v']);
    expect(state.step).toBe(6);
    const copy = new GroupOptimizer(optimizerConfig({ type: 'adam' }));
    copy.setState(state);
    tf.dispose(Object.values(state.slots));
    const init = a.clone();
    const b = tf.variable(init);
    init.dispose();
    opt.apply([{ key: 'a', variable: a, grad: g }], 0.1);
    copy.apply([{ key: 'a', variable: b, grad: g }], 0.1);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    opt.dispose();
    copy.dispose();
    tf.dispose([a, b, g]);
    expect(tf.memory().numTensors).toBe(count - 2 - 2);
  });

  test('discriminative rates: lr-mult spreads geometrically, group-lr names groups, and two groups move in the expected ratio under SGD', async () => {
    expect(evenMults(1e-4, 1e-2, 3).map((x) => +x.toPrecision(6))).toEqual([1e-4, 1e-3, 1e-2]);
    const { model, groups } = mlp(5);
    freezeTo(model, groups, 1);
    const built = buildParamGroups(model, groups, { lr: 0.1, lrMult: 10, optimizer: optimizerConfig({ type: 'sgd' }) });
    expect(built.map((g) => [g.name, +g.lr.toPrecision(6)])).toEqual([['mid', 0.01], ['head', 0.1]]);
    const named = buildParamGroups(model, groups, { lr: 0.1, groupLr: { mid: 0.5 }, optimizer: optimizerConfig({ type: 'sgd' }) });
    expect(named.map((g) => g.lr)).toEqual([0.5, 0.1]);
    expect(() => buildParamGroups(model, groups, { lr: 0.1, groupLr: { block5: 1 }, optimizer: optimizerConfig({ type: 'sgd' }) })).toThrow(
      /--group-lr names group "block5", which does not exist; valid groups are body, mid, head/,
    );

    // One full-batch SGD step: each weight moves by -lr_group * grad, so mid moves 10x less per unit gradient.
    const { values, labels } = blobs(32);
    const x = tf.tensor2d(values, [32, 6]);
    const vars = model.trainableWeights.map(variableOf);
    const { grads, value } = tf.variableGrads(() => {
      const p = (model.apply(x, { training: true }) as tf.Tensor).clipByValue(1e-7, 1 - 1e-7);
      return tf.oneHot(tf.tensor1d(labels, 'int32'), 3).mul(p.log()).sum(1).neg().mean() as tf.Scalar;
    }, vars);
    const before = weightValues(model);
    await fit({
      model, groups, epochs: 1, lr: 0.1, lrMult: 10, optimizer: 'sgd', loss: { outputActivation: 'softmax' },
      train: arraySource({ values, shape: [6], labels, batchSize: 32, shuffle: false }),
    });
    const after = weightValues(model);
    for (const [name, rate] of [['fc2/kernel', 0.01], ['predictions/kernel', 0.1]] as const) {
      const g = grads[vars.find((v) => v.name.startsWith(name))!.name].dataSync();
      const moved = after[name].map((v, i) => v - before[name][i]);
      moved.forEach((d, i) => expect(d).toBeCloseTo(-rate * g[i], 6));
    }
    expect(after['fc1/kernel']).toEqual(before['fc1/kernel']);
    tf.dispose([x, value, ...Object.values(grads)]);
    model.dispose();
  });
});
