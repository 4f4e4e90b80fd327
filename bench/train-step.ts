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
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { localGradients } from '../src/train/loop';
import { OptimizerConfig, ParamGroup, optimizerConfig, variableOf } from '../src/train/optim';
import { medianSeconds, runTorchPeer } from './harness';
import { BENCH_LOSS, openStepWorkload } from './step-workload';
import type { BenchSection } from './sections';

/** The training loop's tfjs step: gradients with localGradients, then each group's optimiser. */
async function tfjsStep(model: tf.LayersModel, groups: ParamGroup[], x: tf.Tensor, labels: Int32Array): Promise<void> {
  const { probs, grads } = await localGradients(model, BENCH_LOSS).compute({ x, labels } as never, groups);
  try {
    for (const g of groups) g.optimizer.apply(g.variables.map((v) => ({ key: v.originalName, variable: variableOf(v), grad: grads[v.originalName] })), g.lr);
  } finally {
    tf.dispose([probs, ...Object.values(grads)]);
  }
}

interface Row {
  workload: string;
  engine: string;
  ips: number;
  note?: string;
}

async function simpleCnn(reps: number, threads: number, skip: string[]): Promise<Row[]> {
  const batch = 32;
  const w = await openStepWorkload({ arch: 'simple_cnn', inputShape: [28, 28, 1], batch, trainable: 'all', optimizer: optimizerConfig({ type: 'adam' }), threads });
  const rows: Row[] = [];
  const workload = 'simple_cnn 28x28, batch 32, Adam, all trainable';
  try {
    const { x, shape } = await w.input();
    // Alternate: compiled, tfjs, compiled, tfjs (each a median over reps) so load drift hits both.
    for (let round = 0; round < 2; round++) {
      const t = await medianSeconds(async () => void (await w.step()), reps * 4);
      rows.push({ workload, engine: `compiled step, ${w.compiled.engine}`, ips: batch / t, note: `round ${round + 1}` });
      if (!skip.includes('tfjs')) {
        const xt = tf.tensor(x, shape);
        const tt = await medianSeconds(() => tfjsStep(w.model, w.groups, xt, w.labels), reps);
        xt.dispose();
        rows.push({ workload, engine: `tfjs ${tf.getBackend()} x${threads}`, ips: batch / tt, note: `round ${round + 1}` });
      }
      if (!skip.includes('torch')) {
        const r = runTorchPeer('simple_cnn_torch.py', ['--batch', String(batch), '--threads', String(threads), '--steps', String(reps * 4)]) as { torch?: string; ips?: number; error?: string };
        rows.push({ workload, engine: `PyTorch ${r.torch ?? '?'} CPU x${threads}`, ips: r.ips ?? NaN, note: r.error ?? `round ${round + 1}` });
      }
    }
  } finally {
    await w.dispose();
  }
  return rows;
}

async function resnet50(reps: number, threads: number, skip: string[]): Promise<Row[]> {
  const batch = 16;
  const sgd: OptimizerConfig = optimizerConfig({ type: 'sgd', momentum: 0.9 });
  const w = await openStepWorkload({ arch: 'resnet50', inputShape: [224, 224, 3], batch, trainable: 'last', optimizer: sgd, threads, seed: 2 });
  const workload = 'ResNet50 last stage + head @224, batch 16, SGD momentum';
  const rows: Row[] = [];
  try {
    const { x: features, shape: fshape } = await w.input();
    for (let round = 0; round < 2; round++) {
      let tp = 0;
      const ts = await medianSeconds(async () => void (tp = (await w.step()).prefix), reps);
      rows.push({ workload, engine: `onnxruntime prefix + compiled suffix step, ${w.compiled.engine}`, ips: batch / ts, note: `round ${round + 1}; prefix ${(tp * 1000).toFixed(0)} ms, prefix + step ${(ts * 1000).toFixed(0)} ms` });
      if (!skip.includes('tfjs')) {
        const ft = tf.tensor(features, fshape);
        const tt = await medianSeconds(() => tfjsStep(w.model, w.groups, ft, w.labels), reps);
        ft.dispose();
        rows.push({ workload, engine: `onnxruntime prefix + tfjs ${tf.getBackend()} x${threads} suffix`, ips: batch / (tp + tt), note: `round ${round + 1}; suffix step ${(tt * 1000).toFixed(0)} ms` });
      }
      if (!skip.includes('torch')) {
        const r = runTorchPeer('train_speed_torch.py', ['--archs', 'resnet50', '--sizes', '224', '--batch', String(batch), '--threads', String(threads), '--reps', String(reps), '--train-only']) as {
          torch?: string;
          results?: Record<string, { train_ips: number }>;
          error?: string;
        };
        const t = r.results?.[`resnet50/${threads}`];
        rows.push({ workload, engine: `PyTorch ${r.torch ?? '?'} CPU x${threads}`, ips: t?.train_ips ?? NaN, note: r.error ?? `round ${round + 1}` });
      }
    }
  } finally {
    await w.dispose();
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
