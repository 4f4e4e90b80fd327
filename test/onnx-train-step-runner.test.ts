/**
 * @jest-environment ./test/helpers/onnx-environment.js
 *
 * The compiled training step's runner against the tfjs training path (localGradients + clipping + GroupOptimizer,
 * as train/loop.ts's trainStep does it): five steps of each optimiser with clipping, label smoothing, class weights,
 * two groups with their own learning rates and a short last batch give the same weights, BN statistics and optimiser
 * slots. Also: reproducible dropout, bit-exact resume through writeBack / readFrom, no tensor leak, and the loop's
 * error on a non-finite loss.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { GraftError } from '../src/errors';
import { createOnnxTrainStep, CompiledStep } from '../src/engine/onnx-train-step';
import { localGradients } from '../src/train/loop';
import { LossOptions } from '../src/train/losses';
import { OptimizerConfig, ParamGroup, buildParamGroups, optimizerConfig, variableOf } from '../src/train/optim';
import { syncFrozenBatchNorm } from '../src/train/freeze';
import { randomizeWeights } from './helpers/onnx-models';
import { randomBatch, relErr } from './helpers/train-step';

type T = tf.SymbolicTensor;
const L = tf.layers;
const GROUPS = [
  { name: 'trunk', layers: ['conv', 'bn', 'conv2'] },
  { name: 'head', layers: ['fc', 'predictions'] },
];
const LOSS: LossOptions = { outputActivation: 'softmax', labelSmoothing: 0.1, classWeights: [1, 2, 0.5] };
const CLIP = 0.5;
const SHAPE = [7, 6, 2];

function makeModel(options: { dropout?: boolean } = {}): tf.LayersModel {
  const input = tf.input({ shape: SHAPE });
  // No bias before the training-mode BN: its exact gradient is zero, so its rounding noise, which Adam and RMSprop
  // scale up to full-size steps, would differ between any two engines.
  let x = L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'conv' }).apply(input) as T;
  x = L.activation({ activation: 'relu', name: 'relu' }).apply(L.batchNormalization({ name: 'bn' }).apply(x)) as T;
  x = L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' }).apply(x) as T;
  x = L.globalAveragePooling2d({ name: 'gap' }).apply(x) as T;
  x = L.dense({ units: 6, activation: 'tanh', name: 'fc' }).apply(x) as T;
  if (options.dropout) x = L.dropout({ rate: 0.4, name: 'drop' }).apply(x) as T;
  const out = L.dense({ units: 3, activation: 'softmax', name: 'predictions' }).apply(x) as T;
  const model = tf.model({ inputs: input, outputs: out });
  randomizeWeights(model, 21);
  syncFrozenBatchNorm(model);
  return model;
}

const BATCHES = [4, 4, 4, 4, 3].map((n, i) => {
  const b = randomBatch([n, ...SHAPE], 3, 100 + i);
  return { ...b, shape: [n, ...SHAPE] };
});
const LR = { trunk: 0.02, head: 0.05 };

/** train/loop.ts's trainStep on the tfjs side: gradients, clip by global norm, each group's optimiser. */
function tfjsStep(model: tf.LayersModel, groups: ParamGroup[], batch: (typeof BATCHES)[number]): Promise<void> {
  const source = localGradients(model, LOSS);
  return (async () => {
    const x = tf.tensor(batch.x, batch.shape);
    const { probs, grads } = await source.compute({ x, labels: batch.labels } as never, groups);
    const names = Object.keys(grads);
    const clipped = tf.tidy(() => {
      const list = Object.values(grads);
      const norm = tf.addN(list.map((g) => g.square().sum())).sqrt();
      const scale = tf.minimum(tf.scalar(1), tf.scalar(CLIP).div(norm.add(1e-12)));
      return list.map((g) => g.mul(scale));
    });
    const byName = Object.fromEntries(names.map((n, i) => [n, clipped[i]]));
    for (const g of groups) {
      g.optimizer.apply(g.variables.map((v) => ({ key: v.originalName, variable: variableOf(v), grad: byName[v.originalName] })), LR[g.name as 'trunk']);
    }
    tf.dispose([x, probs, ...Object.values(grads), ...clipped]);
  })();
}

function snapshot(model: tf.LayersModel, groups: ParamGroup[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const w of model.weights) out.set(w.originalName, Float32Array.from(w.read().dataSync() as Float32Array));
  for (const g of groups) {
    const s = g.optimizer.getState();
    out.set(`${g.name}::step`, Float32Array.of(s.step));
    for (const [k, t] of Object.entries(s.slots)) out.set(k, Float32Array.from(t.dataSync() as Float32Array));
    tf.dispose(Object.values(s.slots));
  }
  return out;
}

async function onnxRun(config: OptimizerConfig, steps: number, options: { dropout?: boolean; seed?: number } = {}) {
  const model = makeModel(options);
  const groups = buildParamGroups(model, GROUPS, { lr: 0.05, optimizer: config });
  const step = await createOnnxTrainStep(model, { groups, optimizer: config, loss: LOSS, clipNorm: CLIP, batchSize: 4, threads: 1, log: null });
  return { model, groups, step, async run(from = 0, to = steps) {
    for (let i = from; i < to; i++) await step.step(BATCHES[i], LR, { step: i, dropoutSeed: (options.seed ?? 1) * 1000 + i });
  } };
}

beforeAll(() => initBackend({ backend: 'cpu', log: null }));

describe('five compiled steps match the tfjs training path', () => {
  const configs: Array<[string, Partial<OptimizerConfig>]> = [
    ['sgd', { type: 'sgd' }],
    ['sgd momentum', { type: 'sgd', momentum: 0.9, weightDecay: 1e-3 }],
    ['sgd nesterov', { type: 'sgd', momentum: 0.9, nesterov: true }],
    ['adam', { type: 'adam', weightDecay: 1e-3 }],
    ['adamw', { type: 'adamw' }],
    ['rmsprop', { type: 'rmsprop' }],
    ['rmsprop momentum', { type: 'rmsprop', momentum: 0.5 }],
  ];
  test.each(configs)('%s: weights, BN statistics and optimiser slots to 1e-4', async (_name, raw) => {
    const config = optimizerConfig(raw);
    const ref = makeModel();
    const refGroups = buildParamGroups(ref, GROUPS, { lr: 0.05, optimizer: config });
    for (const b of BATCHES) await tfjsStep(ref, refGroups, b);
    const expected = snapshot(ref, refGroups);

    const o = await onnxRun(config, 5);
    await o.run();
    o.step.writeBack(o.groups);
    const got = snapshot(o.model, o.groups);
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    const bad = [...expected].map(([k, v]) => [k, relErr(got.get(k)!, v)] as const).filter(([, e]) => !(e < 1e-4));
    expect(bad).toEqual([]);
    // The weights moved: the comparison is not between two untouched models.
    expect(relErr(got.get('conv/kernel')!, snapshot(makeModel(), []).get('conv/kernel')!)).toBeGreaterThan(1e-3);
    await o.step.dispose();
    ref.dispose();
    o.model.dispose();
  });
});

describe('runner state', () => {
  const adam = optimizerConfig({ type: 'adam' });

  test('dropout is reproducible: the same seeds give the same weights, other seeds others', async () => {
    const runs: Array<Map<string, Float32Array>> = [];
    for (const seed of [1, 1, 2]) {
      const o = await onnxRun(adam, 3, { dropout: true, seed });
      await o.run();
      o.step.writeBack(o.groups);
      runs.push(snapshot(o.model, o.groups));
      await o.step.dispose();
      o.model.dispose();
    }
    for (const [k, v] of runs[0]) expect(runs[1].get(k)).toEqual(v);
    expect(runs[2].get('fc/kernel')).not.toEqual(runs[0].get('fc/kernel'));
  });

  test('resume: writeBack after 3 steps, a new runner reading that state, 2 more steps: bit for bit the uninterrupted run', async () => {
    const whole = await onnxRun(adam, 5, { dropout: true });
    await whole.run();
    whole.step.writeBack(whole.groups);
    const expected = snapshot(whole.model, whole.groups);

    const first = await onnxRun(adam, 5, { dropout: true });
    await first.run(0, 3);
    first.step.writeBack(first.groups);
    await first.step.dispose();
    // A fresh runner on the same model and groups, as after a checkpoint load.
    const second: CompiledStep = await createOnnxTrainStep(first.model, { groups: first.groups, optimizer: adam, loss: LOSS, clipNorm: CLIP, batchSize: 4, threads: 1, log: null });
    for (let i = 3; i < 5; i++) await second.step(BATCHES[i], LR, { step: i, dropoutSeed: 1000 + i });
    second.writeBack(first.groups);
    const got = snapshot(first.model, first.groups);
    for (const [k, v] of expected) expect([k, got.get(k)]).toEqual([k, v]);
    await Promise.all([whole.step.dispose(), second.dispose()]);
    whole.model.dispose();
    first.model.dispose();
  });

  test('no tensor leak over steps, writeBack and readFrom', async () => {
    const o = await onnxRun(adam, 5);
    await o.run(0, 1);
    o.step.writeBack(o.groups);
    o.step.readFrom(o.groups);
    const before = tf.memory().numTensors;
    for (let i = 1; i < 5; i++) {
      const x = tf.tensor(BATCHES[i].x, BATCHES[i].shape);
      await o.step.step({ ...BATCHES[i], x }, LR, { step: i, dropoutSeed: i });
      x.dispose();
      o.step.writeBack(o.groups);
      o.step.readFrom(o.groups);
    }
    expect(tf.memory().numTensors).toBe(before);
    // What writeBack gave tfjs is a copy: later steps do not change it behind tfjs's back.
    o.step.writeBack(o.groups);
    const written = snapshot(o.model, o.groups);
    await o.step.step(BATCHES[0], LR, { step: 5, dropoutSeed: 5 });
    await o.step.step(BATCHES[1], LR, { step: 6, dropoutSeed: 6 });
    const later = snapshot(o.model, o.groups);
    for (const [k, v] of written) expect([k, later.get(k)]).toEqual([k, v]);
    await o.step.dispose();
    o.model.dispose();
  });

  test('a non-finite loss is the loop error, and the state is left as it was', async () => {
    const o = await onnxRun(adam, 1);
    await o.run(0, 1);
    o.step.writeBack(o.groups);
    const before = snapshot(o.model, o.groups);
    const bad = { ...BATCHES[1], x: BATCHES[1].x.map(() => NaN) };
    await expect(o.step.step(bad, LR, { step: 1, dropoutSeed: 1 })).rejects.toThrow(GraftError);
    await expect(o.step.step(bad, LR, { step: 1, dropoutSeed: 1 })).rejects.toThrow(/the training loss became NaN; lower the learning rate/);
    o.step.writeBack(o.groups);
    const after = snapshot(o.model, o.groups);
    for (const [k, v] of before) expect([k, after.get(k)]).toEqual([k, v]);
    await o.step.dispose();
    o.model.dispose();
  });

  test('a NaN reaching a tiled max pool is the same loop error (its gradient indices stay in range)', async () => {
    // MaxUnpool scatters the pool's gradient to window indices: a window holding a NaN must still name one of its own
    // pixels (an index out of range is an onnxruntime error, not the loss check's message).
    const input = tf.input({ shape: [8, 8, 1] });
    let x = L.conv2d({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }).apply(input) as T;
    x = L.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x) as T;
    const out = L.dense({ units: 3, activation: 'softmax', name: 'predictions' }).apply(L.flatten({ name: 'flat' }).apply(x)) as T;
    const model = tf.model({ inputs: input, outputs: out });
    const config = optimizerConfig({ type: 'sgd' });
    const groups = buildParamGroups(model, [{ name: 'all', layers: ['conv', 'predictions'] }], { lr: 0.05, optimizer: config });
    const step = await createOnnxTrainStep(model, { groups, optimizer: config, loss: { outputActivation: 'softmax' }, batchSize: 2, threads: 1, log: null });
    const x0 = Float32Array.from({ length: 2 * 64 }, (_, i) => (i % 7) / 7);
    x0[9] = NaN;
    await expect(step.step({ x: x0, shape: [2, 8, 8, 1], labels: Int32Array.of(0, 2) }, { all: 0.05 }, { step: 1, dropoutSeed: 1 })).rejects.toThrow(/the training loss became NaN/);
    await step.dispose();
    model.dispose();
  });
});
