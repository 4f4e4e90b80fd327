/**
 * One training-step workload for the benchmarks: a classifier with a 10-class head, either everything trainable or
 * only the last trunk group + head (the frozen prefix then runs forward on onnxruntime, as `graft train` runs it
 * without a feature cache), and its compiled step (`createOnnxTrainStep`) on a fixed random batch.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createOnnxPrefixRunner } from '../src/engine/onnx-runners';
import { CompiledStep, createOnnxTrainStep } from '../src/engine/onnx-train-step';
import { createClassifier } from '../src/models/classifier';
import type { SimpleCnnOptions } from '../src/models/simple_cnn';
import type { LayerGroup } from '../src/io/graft-json';
import type { Runner } from '../src/models/runner';
import { SplitModel, splitModel } from '../src/models/split';
import { freezeTo, syncFrozenBatchNorm } from '../src/train/freeze';
import type { LossOptions } from '../src/train/losses';
import { OptimizerConfig, ParamGroup, buildParamGroups } from '../src/train/optim';
import { randomBatch } from './harness';
import type { ProfileEvent } from './step-profile';

/** The loss every bench step uses. */
export const BENCH_LOSS: LossOptions = { outputActivation: 'softmax' };
const CLASSES = 10;

/** Options for `openStepWorkload`. */
export interface StepWorkloadOptions {
  /** Registry architecture. */
  arch: string;
  /** Input shape [h, w, c]. */
  inputShape: number[];
  /** Batch size. */
  batch: number;
  /** `last`: last trunk group + head train, the rest frozen (BN in inference mode); `all`: everything trains. */
  trainable: 'last' | 'all';
  /** Optimiser of every group. */
  optimizer: OptimizerConfig;
  /** onnxruntime intra-op threads. */
  threads: number;
  /** Seed of the random batch. */
  seed?: number;
  /** `simple_cnn` options (widths, depth, batch norm), as a recipe's `simpleCnn`. */
  simpleCnn?: SimpleCnnOptions;
}

/** An opened workload: the model, its compiled step and a fixed batch. */
export interface StepWorkload {
  /** The layers that train, for reports: `conv5 (conv5_block1_0_conv ... conv5_block3_out, 32 layers) + head`. */
  trains: string;
  /** The model the step trains (the suffix after the frozen prefix, or the whole model). */
  model: tf.LayersModel;
  /** Its parameter groups. */
  groups: ParamGroup[];
  /** The compiled step. */
  compiled: CompiledStep;
  /** Labels of the batch. */
  labels: Int32Array;
  /** The step's input (prefix outputs for `last`, the batch itself for `all`) and its shape. */
  input(): Promise<{ x: Float32Array; shape: number[] }>;
  /** One timed training step: the frozen prefix forward (0 without one), then the compiled step; seconds of each. */
  step(): Promise<{ prefix: number; step: number }>;
  /**
   * onnxruntime's profile of `runs` steps (after a warm-up step) of a second, profiled copy of the compiled step on
   * the same input: profiling costs a little per operator, so the timed step is never the profiled one.
   */
  profile(runs: number): Promise<ProfileEvent[]>;
  /** Frees sessions and models. */
  dispose(): Promise<void>;
}

const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;

function describe(group: LayerGroup): string {
  return `${group.name} (${group.layers[0]} ... ${group.layers[group.layers.length - 1]}, ${group.layers.length} layers)`;
}

/** Builds the model, freezes it as asked, opens the prefix runner and compiles the step. */
export async function openStepWorkload(o: StepWorkloadOptions): Promise<StepWorkload> {
  const { model, meta } = await createClassifier({
    arch: o.arch,
    weights: null,
    inputShape: o.inputShape,
    classNames: Array.from({ length: CLASSES }, (_, i) => `c${i}`),
    simpleCnn: o.simpleCnn,
  });
  const { x, labels } = randomBatch([o.batch, ...o.inputShape], CLASSES, o.seed ?? 1);
  let split: SplitModel | undefined;
  let prefix: Runner | undefined;
  try {
    let trained = model;
    let trains = 'everything';
    if (o.trainable === 'last') {
      freezeTo(model, meta.groups, -2);
      syncFrozenBatchNorm(model);
      const frozen = meta.groups[meta.groups.length - 3].layers;
      const boundary = frozen[frozen.length - 1];
      split = splitModel(model, boundary);
      prefix = await createOnnxPrefixRunner(model, boundary, { threads: o.threads, log: null });
      trained = split.suffix;
      trains = `${describe(meta.groups[meta.groups.length - 2])} + head, after ${boundary}`;
    }
    const groups = buildParamGroups(trained, meta.groups, { lr: 1e-3, optimizer: o.optimizer });
    const stepOptions = { groups, optimizer: o.optimizer, loss: BENCH_LOSS, batchSize: o.batch, threads: o.threads, log: null };
    const compiled = await createOnnxTrainStep(trained, stepOptions);
    const lr = Object.fromEntries(groups.map((g) => [g.name, 1e-3]));
    const inputShape = [o.batch, ...(prefix?.outputShape ?? o.inputShape)];
    const input = async () => ({ x: prefix ? await prefix.run(x, o.batch) : x, shape: inputShape });
    let i = 0;
    return {
      trains,
      model: trained,
      groups,
      compiled,
      labels,
      input,
      async step() {
        let t = process.hrtime.bigint();
        const features = prefix ? await prefix.run(x, o.batch) : x;
        const tPrefix = prefix ? since(t) : 0;
        t = process.hrtime.bigint();
        i += 1;
        await compiled.step({ x: features, shape: inputShape, labels }, lr, { step: i, dropoutSeed: i });
        return { prefix: tPrefix, step: since(t) };
      },
      async profile(runs) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-bench-profile-'));
        try {
          const profiled = await createOnnxTrainStep(trained, { ...stepOptions, profile: path.join(dir, 'step') });
          try {
            const { x: features } = await input();
            for (let r = 0; r <= runs; r++) await profiled.step({ x: features, shape: inputShape, labels }, lr, { step: r + 1, dropoutSeed: r + 1 });
          } finally {
            await profiled.dispose();
          }
          const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
          if (!file) throw new Error(`onnxruntime wrote no profile in ${dir}`);
          return JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as ProfileEvent[];
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
      async dispose() {
        await compiled.dispose();
        await prefix?.dispose();
        split?.dispose();
        model.dispose();
      },
    };
  } catch (err) {
    await prefix?.dispose();
    split?.dispose();
    model.dispose();
    throw err;
  }
}
