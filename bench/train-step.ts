/**
 * `train-step`: the compiled training step (issue 13) against the tfjs wasm step and PyTorch, in one run with the
 * sides alternating. Two workloads:
 * - `simple_cnn` at 28x28, batch 32, everything trainable, Adam: the compiled step vs the tfjs path on wasm
 *   (localGradients + GroupOptimizer, as the training loop runs it);
 * - ResNet50's last stage + head at 224, batch 16, SGD with momentum, the frozen prefix on onnxruntime: the compiled
 *   suffix step vs the wasm suffix step vs PyTorch (bench/train_speed_torch.py, 2 threads, OMP_WAIT_POLICY=PASSIVE).
 *
 * Knobs: GRAFT_BENCH_REPS (5), GRAFT_BENCH_THREADS (cores), GRAFT_BENCH_SKIP (comma list of: simple_cnn, resnet50,
 * torch, tfjs).
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { createOnnxTrainStep } from '../src/engine/onnx-train-step';
import { createClassifier } from '../src/models/classifier';
import { freezeTo, syncFrozenBatchNorm } from '../src/train/freeze';
import { localGradients } from '../src/train/loop';
import { LossOptions } from '../src/train/losses';
import { OptimizerConfig, ParamGroup, buildParamGroups, optimizerConfig, variableOf } from '../src/train/optim';
import { splitModel } from '../src/models/split';
import { PACKAGE_ROOT } from '../src/version';
import type { BenchSection } from './sections';

const LOSS: LossOptions = { outputActivation: 'softmax' };

/** Median seconds of `reps` timed runs after one warm-up. */
async function median(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function randomBatch(shape: number[], classes: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const x = tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
  return { x, labels: Int32Array.from({ length: shape[0] }, (_, i) => i % classes) };
}

/** The training loop's tfjs step: gradients with localGradients, then each group's optimiser. */
async function tfjsStep(model: tf.LayersModel, groups: ParamGroup[], x: tf.Tensor, labels: Int32Array): Promise<void> {
  const { probs, grads } = await localGradients(model, LOSS).compute({ x, labels } as never, groups);
  try {
    for (const g of groups) g.optimizer.apply(g.variables.map((v) => ({ key: v.originalName, variable: variableOf(v), grad: grads[v.originalName] })), g.lr);
  } finally {
    tf.dispose([probs, ...Object.values(grads)]);
  }
}

/** Runs a PyTorch peer script (OpenMP spinning off, as every peer here) and parses its last stdout line. */
function torch(script: string, args: string[]): Record<string, unknown> {
  const r = spawnSync('/usr/bin/python3', [path.join(PACKAGE_ROOT, 'bench', script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) return { error: `PyTorch failed: ${(r.stderr ?? String(r.error)).trim().split('\n').slice(-1)[0]}` };
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

interface Row {
  workload: string;
  engine: string;
  ips: number;
  note?: string;
}

async function simpleCnn(reps: number, threads: number, skip: string[]): Promise<Row[]> {
  const batch = 32;
  const { model, meta } = await createClassifier({ arch: 'simple_cnn', weights: null, inputShape: [28, 28, 1], classNames: Array.from({ length: 10 }, (_, i) => `c${i}`) });
  const adam = optimizerConfig({ type: 'adam' });
  const { x, labels } = randomBatch([batch, 28, 28, 1], 10, 1);
  const rows: Row[] = [];
  const workload = 'simple_cnn 28x28, batch 32, Adam, all trainable';
  try {
    const groups = buildParamGroups(model, meta.groups, { lr: 1e-3, optimizer: adam });
    const compiled = await createOnnxTrainStep(model, { groups, optimizer: adam, loss: LOSS, batchSize: batch, threads, log: null });
    const lr = Object.fromEntries(groups.map((g) => [g.name, 1e-3]));
    let i = 0;
    // Alternate: compiled, tfjs, compiled, tfjs (each a median over reps) so load drift hits both.
    for (let round = 0; round < 2; round++) {
      const t = await median(async () => void (await compiled.step({ x, shape: [batch, 28, 28, 1], labels }, lr, { step: i++, dropoutSeed: i })), reps * 4);
      rows.push({ workload, engine: `compiled step, ${compiled.engine}`, ips: batch / t, note: `round ${round + 1}` });
      if (!skip.includes('tfjs')) {
        const xt = tf.tensor(x, [batch, 28, 28, 1]);
        const tt = await median(() => tfjsStep(model, groups, xt, labels), reps);
        xt.dispose();
        rows.push({ workload, engine: `tfjs ${tf.getBackend()} x${threads}`, ips: batch / tt, note: `round ${round + 1}` });
      }
      if (!skip.includes('torch')) {
        const r = torch('simple_cnn_torch.py', ['--batch', String(batch), '--threads', String(threads), '--steps', String(reps * 4)]) as { torch?: string; ips?: number; error?: string };
        rows.push({ workload, engine: `PyTorch ${r.torch ?? '?'} CPU x${threads}`, ips: r.ips ?? NaN, note: r.error ?? `round ${round + 1}` });
      }
    }
    await compiled.dispose();
  } finally {
    model.dispose();
  }
  return rows;
}

async function resnet50(reps: number, threads: number, skip: string[]): Promise<Row[]> {
  const { createOnnxPrefixRunner } = await import('../src/engine/onnx-runners');
  const batch = 16;
  const { model, meta } = await createClassifier({ arch: 'resnet50', weights: null, inputShape: [224, 224, 3], classNames: Array.from({ length: 10 }, (_, i) => `c${i}`) });
  freezeTo(model, meta.groups, -2);
  syncFrozenBatchNorm(model);
  const frozen = meta.groups[meta.groups.length - 3].layers;
  const boundary = frozen[frozen.length - 1];
  const split = splitModel(model, boundary);
  const sgd: OptimizerConfig = optimizerConfig({ type: 'sgd', momentum: 0.9 });
  const { x, labels } = randomBatch([batch, 224, 224, 3], 10, 2);
  const prefix = await createOnnxPrefixRunner(model, boundary, { threads, log: null });
  const workload = 'ResNet50 last stage + head @224, batch 16, SGD momentum';
  const rows: Row[] = [];
  try {
    const groups = buildParamGroups(split.suffix, meta.groups, { lr: 1e-3, optimizer: sgd });
    const compiled = await createOnnxTrainStep(split.suffix, { groups, optimizer: sgd, loss: LOSS, batchSize: batch, threads, log: null });
    const lr = Object.fromEntries(groups.map((g) => [g.name, 1e-3]));
    const features = await prefix.run(x, batch);
    const fshape = [batch, ...prefix.outputShape];
    let i = 0;
    for (let round = 0; round < 2; round++) {
      const tp = await median(async () => void (await prefix.run(x, batch)), reps);
      const ts = await median(async () => void (await compiled.step({ x: features, shape: fshape, labels }, lr, { step: i++, dropoutSeed: i })), reps);
      rows.push({ workload, engine: `onnxruntime prefix + compiled suffix step, ${compiled.engine}`, ips: batch / (tp + ts), note: `round ${round + 1}; prefix ${(tp * 1000).toFixed(0)} ms, suffix step ${(ts * 1000).toFixed(0)} ms` });
      if (!skip.includes('tfjs')) {
        const ft = tf.tensor(features, fshape);
        const tt = await median(() => tfjsStep(split.suffix, groups, ft, labels), reps);
        ft.dispose();
        rows.push({ workload, engine: `onnxruntime prefix + tfjs ${tf.getBackend()} x${threads} suffix`, ips: batch / (tp + tt), note: `round ${round + 1}; suffix step ${(tt * 1000).toFixed(0)} ms` });
      }
      if (!skip.includes('torch')) {
        const r = torch('train_speed_torch.py', ['--archs', 'resnet50', '--sizes', '224', '--batch', String(batch), '--threads', String(threads), '--reps', String(reps)]) as {
          torch?: string;
          results?: Record<string, { train_ips: number }>;
          error?: string;
        };
        const t = r.results?.[`resnet50/${threads}`];
        rows.push({ workload, engine: `PyTorch ${r.torch ?? '?'} CPU x${threads}`, ips: t?.train_ips ?? NaN, note: r.error ?? `round ${round + 1}` });
      }
    }
    await compiled.dispose();
  } finally {
    await prefix.dispose();
    split.dispose();
    model.dispose();
  }
  return rows;
}

async function run(): Promise<string> {
  const reps = Number(process.env.GRAFT_BENCH_REPS ?? 5);
  const threads = Number(process.env.GRAFT_BENCH_THREADS ?? os.availableParallelism());
  const skip = (process.env.GRAFT_BENCH_SKIP ?? '').split(',').filter(Boolean);
  await initBackend({ backend: 'wasm', threads, log: null });
  const loadBefore = os.loadavg();
  const rows: Row[] = [];
  if (!skip.includes('simple_cnn')) rows.push(...(await simpleCnn(reps, threads, skip)));
  if (!skip.includes('resnet50')) rows.push(...(await resnet50(reps, threads, skip)));
  const loadAfter = os.loadavg();
  for (const r of rows) process.stderr.write(`train-step: ${r.workload} | ${r.engine} | ${r.ips.toPrecision(3)} img/s | ${r.note ?? ''}\n`);
  return [
    '## train-step: the compiled training step (onnxruntime) vs tfjs wasm vs PyTorch',
    '',
    `${threads} threads, medians of ${reps} (simple_cnn: ${reps * 4}) steps after a warm-up, two alternating rounds. ` +
      `Load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} at the start, ${loadAfter.map((l) => l.toFixed(1)).join(' ')} at the end: the machine is shared, figures are lower bounds.`,
    '',
    '| workload | engine | train step img/s | note |',
    '|---|---|---:|---|',
    ...rows.map((r) => `| ${r.workload} | ${r.engine} | ${r.ips.toPrecision(3)} | ${r.note ?? ''} |`),
    '',
  ].join('\n');
}

/** The `train-step` bench section. */
export const trainStepSection: BenchSection = { name: 'train-step', run };

if (require.main === module) {
  run().then((md) => process.stdout.write(md), (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = 1;
  });
}
