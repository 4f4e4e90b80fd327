/**
 * `engines` (called `train-speed` until issue 13 took that name): how fast graft trains and runs convnets without
 * libtensorflow (issue 7). For each architecture at
 * its default input size, batch 16, with a new 10-class head and everything but the last stage and the head frozen:
 * inference images/s, training-step images/s (forward, gradients, SGD-momentum update) and one head-only epoch on
 * 1024 cached feature vectors; on wasm in one thread (graft's kernels), wasm on N threads in this process (graft
 * loads tfjs's threaded build), wasm in N worker threads (one model copy each), the cpu backend
 * (smaller batch, it is very slow), tensorflow when installed, and PyTorch CPU with 1 and N threads right after
 * each architecture, all in one invocation so the ratios compare like with like on a noisy machine.
 *
 * Environment knobs (for quick runs): GRAFT_BENCH_ARCHS (comma list), GRAFT_BENCH_BATCH (16),
 * GRAFT_BENCH_CPU_BATCH (2), GRAFT_BENCH_REPS (2), GRAFT_BENCH_THREADS (cores), GRAFT_BENCH_SIZE (override input
 * size), GRAFT_BENCH_SKIP (comma list of: threaded, onnx, cpu, workers, torch).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { coreCount, createGradientPool, createWorkerPredictor } from '../src/engine/workers';
import { saveModelFolder } from '../src/io/model-folder';
import { createClassifier } from '../src/models/classifier';
import { getArchitecture } from '../src/models/registry';
import { freezeTo, syncFrozenBatchNorm } from '../src/train/freeze';
import { splitModel } from '../src/models/split';
import { classificationLoss } from '../src/train/losses';
import { PACKAGE_ROOT } from '../src/version';
import { PYTHON, envList, envNumber, medianSeconds } from './harness';
import type { BenchSection } from './sections';

const CLASSES = 10;
const CACHED_FEATURES = 1024;

/** What one engine measured for one architecture (undefined: not measured). */
interface Speed {
  /** Inference images/s. */
  inference?: number;
  /** Training-step images/s. */
  train?: number;
  /** Seconds for one head-only epoch on cached features. */
  headEpoch?: number;
  /** How it was measured, when it differs from the others (e.g. a smaller batch). */
  note?: string;
}

interface Config {
  archs: string[];
  batch: number;
  cpuBatch: number;
  reps: number;
  threads: number;
  size?: number;
  skip: string[];
}

function config(): Config {
  return {
    archs: envList('GRAFT_BENCH_ARCHS', ['vgg16', 'resnet50', 'inception_v3', 'xception']),
    batch: envNumber('GRAFT_BENCH_BATCH', 16),
    cpuBatch: envNumber('GRAFT_BENCH_CPU_BATCH', 2),
    reps: envNumber('GRAFT_BENCH_REPS', 2),
    threads: envNumber('GRAFT_BENCH_THREADS', coreCount()),
    size: process.env.GRAFT_BENCH_SIZE ? envNumber('GRAFT_BENCH_SIZE', 0) : undefined,
    skip: envList('GRAFT_BENCH_SKIP'),
  };
}

// The warm-up compiles XNNPACK operators and packs weights.
const seconds = medianSeconds;

function inputSize(arch: string, cfg: Config): number {
  return cfg.size ?? getArchitecture(arch).defaultInputSize;
}

/** The benchmark model: trunk + new head, everything before the last group but one frozen; and the frozen prefix's last layer. */
async function benchModel(arch: string, cfg: Config): Promise<{ model: tf.LayersModel; boundary: string }> {
  const size = inputSize(arch, cfg);
  const { model, meta } = await createClassifier({
    arch,
    weights: null,
    inputShape: [size, size, 3],
    classNames: Array.from({ length: CLASSES }, (_, i) => `class${i}`),
  });
  freezeTo(model, meta.groups, -2);
  syncFrozenBatchNorm(model);
  const frozen = meta.groups[meta.groups.length - 3].layers;
  return { model, boundary: frozen[frozen.length - 1] };
}

function batchOf(model: tf.LayersModel, batch: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const x = tf.tidy(() => tf.randomNormal([batch, ...shape], 0, 1, 'float32', seed).dataSync() as Float32Array);
  return { x, labels: Int32Array.from({ length: batch }, (_, i) => i % CLASSES) };
}

/** Gradients by variable name in the list form every optimiser's `applyGradients` accepts. */
function named(grads: Record<string, tf.Tensor>): Array<{ name: string; tensor: tf.Tensor }> {
  return Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
}

/**
 * One training step in this thread: the frozen prefix forward outside the gradient tape (as PyTorch records no graph
 * for frozen layers), graft's loss, gradients of the trainable weights, SGD with momentum.
 */
function trainStep(prefix: tf.LayersModel, suffix: tf.LayersModel, optimizer: tf.Optimizer, x: tf.Tensor, labels: Int32Array): void {
  suffixStep(suffix, optimizer, tf.tidy(() => prefix.predict(x) as tf.Tensor), labels);
}

/** The trainable part of a step on the frozen prefix's outputs `features` (disposed here). */
function suffixStep(suffix: tf.LayersModel, optimizer: tf.Optimizer, features: tf.Tensor, labels: Int32Array): void {
  const vars = suffix.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => classificationLoss(suffix.apply(features, { training: true }) as tf.Tensor, labels, { outputActivation: 'softmax' }),
    vars,
  );
  features.dispose();
  try {
    optimizer.applyGradients(named(grads));
    value.dataSync();
  } finally {
    tf.dispose([value, ...Object.values(grads)]);
  }
}

/** Seconds for one epoch of the head alone (a dense softmax layer) over cached feature vectors. */
async function headEpoch(width: number, batch: number, reps: number): Promise<number> {
  // Cached features arrive batch by batch (as a feature cache serves them), not sliced from one big tensor.
  const features = Array.from({ length: Math.ceil(CACHED_FEATURES / batch) }, (_, i) =>
    tf.randomNormal([Math.min(batch, CACHED_FEATURES - i * batch), width], 0, 1, 'float32', i + 1),
  );
  const kernel = tf.variable(tf.randomNormal([width, CLASSES], 0, 0.01, 'float32', 2));
  const bias = tf.variable(tf.zeros([CLASSES]));
  const optimizer = tf.train.momentum(1e-3, 0.9);
  const labels = Int32Array.from({ length: CACHED_FEATURES }, (_, i) => i % CLASSES);
  try {
    return await seconds(async () => {
      for (const [b, x] of features.entries()) {
        const y = labels.subarray(b * batch, b * batch + x.shape[0]);
        tf.tidy(() => {
          const { value, grads } = tf.variableGrads(
            () => classificationLoss(tf.softmax(tf.add(tf.matMul(x, kernel), bias)), y, { outputActivation: 'softmax' }),
            [kernel, bias],
          );
          optimizer.applyGradients(named(grads));
          value.dataSync();
        });
      }
    }, reps);
  } finally {
    tf.dispose([...features, kernel, bias]);
    optimizer.dispose();
  }
}

/** Inference, training step and head epoch in this thread on the active backend. */
async function inThread(arch: string, cfg: Config, batch: number, reps: number, warmup: boolean): Promise<Speed> {
  const { model, boundary } = await benchModel(arch, cfg);
  const split = splitModel(model, boundary);
  const { x: values, labels } = batchOf(model, batch, 3);
  const x = tf.tensor(values, [batch, ...(model.inputs[0].shape.slice(1) as number[])]);
  const optimizer = tf.train.momentum(1e-3, 0.9);
  try {
    const infer = await seconds(
      async () => {
        tf.tidy(() => {
          (model.predict(x) as tf.Tensor).dataSync();
        });
      },
      reps,
      warmup,
    );
    const train = await seconds(async () => trainStep(split.prefix, split.suffix, optimizer, x, labels), reps, warmup);
    // The head's dense kernel is [feature width, classes].
    const width = model.layers[model.layers.length - 1].weights[0].shape[0] as number;
    const head = await headEpoch(width, cfg.batch, reps);
    return { inference: batch / infer, train: batch / train, headEpoch: head };
  } finally {
    tf.dispose(x);
    optimizer.dispose();
    split.dispose();
    model.dispose();
  }
}

/**
 * What `graft` itself does by default: everything that only runs forward (inference, the frozen prefix of a
 * training step) on onnxruntime, the trainable part on wasm; both on `threads` threads.
 */
async function graftDefault(arch: string, cfg: Config): Promise<Speed> {
  const { createOnnxModelRunner, createOnnxPrefixRunner } = await import('../src/engine/onnx-runners');
  const { model, boundary } = await benchModel(arch, cfg);
  const split = splitModel(model, boundary);
  const { x, labels } = batchOf(model, cfg.batch, 3);
  const optimizer = tf.train.momentum(1e-3, 0.9);
  const whole = await createOnnxModelRunner(model, { threads: cfg.threads, log: null });
  const prefix = await createOnnxPrefixRunner(model, boundary, { threads: cfg.threads, log: null });
  try {
    const infer = await seconds(async () => void (await whole.run(x, cfg.batch)), cfg.reps);
    const train = await seconds(async () => {
      suffixStep(split.suffix, optimizer, tf.tensor(await prefix.run(x, cfg.batch), [cfg.batch, ...prefix.outputShape]), labels);
    }, cfg.reps);
    return { inference: cfg.batch / infer, train: cfg.batch / train, note: `${whole.engine}; trainable part on wasm x${cfg.threads}` };
  } finally {
    await Promise.all([whole.dispose(), prefix.dispose()]);
    optimizer.dispose();
    split.dispose();
    model.dispose();
  }
}

/** Inference and training steps split across worker threads (wasm in each), the optimiser in this thread. */
async function inWorkers(arch: string, cfg: Config, scratch: string): Promise<Speed> {
  const { model, boundary } = await benchModel(arch, cfg);
  const dir = path.join(scratch, arch);
  const size = inputSize(arch, cfg);
  await saveModelFolder(dir, model, {
    architecture: arch, inputShape: [size, size, 3], preprocessing: 'none', classNames: [], outputActivation: 'softmax', groups: [],
  });
  const { x, labels } = batchOf(model, cfg.batch, 3);
  const optimizer = tf.train.momentum(1e-3, 0.9);
  const variables = new Map(model.trainableWeights.map((w) => [w.originalName, w.read() as tf.Variable]));
  try {
    const predictor = await createWorkerPredictor(dir, { threads: cfg.threads });
    let infer: number;
    try {
      infer = await seconds(async () => void (await predictor.predict(x, cfg.batch)), cfg.reps);
    } finally {
      await predictor.dispose();
    }
    const pool = await createGradientPool({ model, threads: cfg.threads, loss: { outputActivation: 'softmax' }, boundary });
    let train: number;
    try {
      train = await seconds(async () => {
        const step = await pool.grads({ x, labels, batch: cfg.batch });
        const byVariable: Record<string, tf.Tensor> = {};
        for (const [name, g] of Object.entries(step.grads)) byVariable[variables.get(name)!.name] = g;
        optimizer.applyGradients(named(byVariable));
        tf.dispose(Object.values(step.grads));
        await pool.setWeights(Object.fromEntries(variables));
      }, cfg.reps);
    } finally {
      await pool.dispose();
    }
    return { inference: cfg.batch / infer, train: cfg.batch / train };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

/** PyTorch's numbers for the same work on `archs`, keyed `arch/threads`; or why there are none. */
function torchSpeeds(cfg: Config, archs: string[]): { results: Record<string, { inference_ips: number; train_ips: number; head_epoch_s: number }>; version?: string; error?: string } {
  if (!fs.existsSync(PYTHON)) return { results: {}, error: `${PYTHON} not found` };
  const script = path.join(PACKAGE_ROOT, 'bench', 'train_speed_torch.py');
  const args = [
    script,
    '--archs', archs.join(','),
    '--sizes', archs.map((a) => inputSize(a, cfg)).join(','),
    '--batch', String(cfg.batch),
    '--threads', [...new Set([1, cfg.threads])].join(','),
    '--reps', String(cfg.reps),
  ];
  const run = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (run.status !== 0) return { results: {}, error: (run.stderr || run.error?.message || 'failed').trim().split('\n').slice(-1)[0] };
  const parsed = JSON.parse(run.stdout);
  return { results: parsed.results, version: `torch ${parsed.torch}, torchvision ${parsed.torchvision}` };
}

const ONE_THREAD = 'wasm, 1 thread (graft kernels)';
const GRAFT_DEFAULT = "graft's default: onnxruntime forward, wasm backward";
const threadedLabel = (cfg: Config) => `wasm, ${cfg.threads} threads in-process (threaded build)`;
const workersLabel = (cfg: Config) => `wasm, ${cfg.threads} worker threads`;

/** Fixed decimals, or two significant digits for small values (the cpu backend's images/s). */
const fmt = (v: number | undefined, digits = 2) =>
  v === undefined || !Number.isFinite(v) ? '-' : v !== 0 && Math.abs(v) < 0.1 ? v.toPrecision(2) : v.toFixed(digits);
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? a / b : undefined);

/** Pass/miss text for a ratio against its target. */
function verdict(r: number | undefined, target: number): string {
  if (r === undefined) return 'not measured';
  return r >= target ? `${fmt(r)}x (target ${target}x: met)` : `${fmt(r)}x (target ${target}x: missed by ${fmt(target / r)}x)`;
}

async function run(): Promise<string> {
  const cfg = config();
  const loadBefore = os.loadavg()[0];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-bench-speed-'));
  const rows: Record<string, Record<string, Speed>> = {};
  const notes: string[] = [];
  let torchVersion: string | undefined;
  try {
    for (const arch of cfg.archs) {
      rows[arch] = {};
      await initBackend({ backend: 'wasm', threads: 1, log: null });
      process.stderr.write(`engines: ${arch} wasm\n`);
      rows[arch][ONE_THREAD] = await inThread(arch, cfg, cfg.batch, cfg.reps, true);
      if (cfg.threads > 1 && !cfg.skip.includes('threaded')) {
        process.stderr.write(`engines: ${arch} wasm ${cfg.threads} threads\n`);
        await initBackend({ backend: 'wasm', threads: cfg.threads, log: null });
        rows[arch][threadedLabel(cfg)] = await inThread(arch, cfg, cfg.batch, cfg.reps, true);
        if (!cfg.skip.includes('onnx')) {
          process.stderr.write(`engines: ${arch} graft default (onnxruntime forward)\n`);
          rows[arch][GRAFT_DEFAULT] = await graftDefault(arch, cfg);
        }
        await initBackend({ backend: 'wasm', threads: 1, log: null });
      }
      if (!cfg.skip.includes('workers')) {
        process.stderr.write(`engines: ${arch} wasm workers\n`);
        rows[arch][workersLabel(cfg)] = await inWorkers(arch, cfg, scratch);
      }
      if (!cfg.skip.includes('cpu')) {
        process.stderr.write(`engines: ${arch} cpu\n`);
        await initBackend({ backend: 'cpu', log: null });
        // The pure-JS backend is 20-50x slower: one timed run of a small batch, no warm-up (it compiles nothing).
        rows[arch]['cpu (pure JS)'] = { ...(await inThread(arch, cfg, cfg.cpuBatch, 1, false)), note: `batch ${cfg.cpuBatch}, 1 run` };
      }
      // PyTorch right after the same architecture in Node, so load drift on a shared machine hits both alike.
      if (!cfg.skip.includes('torch')) {
        process.stderr.write(`engines: ${arch} PyTorch\n`);
        const torch = torchSpeeds(cfg, [arch]);
        torchVersion = torch.version ?? torchVersion;
        if (torch.error) notes.push(`PyTorch not measured for ${arch}: ${torch.error}`);
        for (const threads of [...new Set([1, cfg.threads])]) {
          const t = torch.results[`${arch}/${threads}`];
          if (t) rows[arch][`PyTorch CPU, ${threads} thread${threads > 1 ? 's' : ''}`] = { inference: t.inference_ips, train: t.train_ips, headEpoch: t.head_epoch_s };
        }
      }
      // Partial results as they come: a long run on a busy machine still leaves every finished architecture.
      for (const [engine, sp] of Object.entries(rows[arch])) {
        process.stderr.write(`engines: ${arch} | ${engine} | ${fmt(sp.inference)} | ${fmt(sp.train)} | ${fmt(sp.headEpoch, 3)} | ${sp.note ?? ''} | load ${os.loadavg()[0].toFixed(1)}\n`);
      }
    }
    const tfNode = await initBackend({ backend: 'tensorflow', log: null }).catch((err: Error) => err);
    if (tfNode instanceof Error) notes.push(`tensorflow backend not measured: ${tfNode.message}`);
    else notes.push('tensorflow backend is installed but this section does not measure it yet.');
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
    await initBackend({ backend: 'wasm', log: null });
  }


  const out: string[] = [
    '## engines: convnets on wasm vs cpu vs PyTorch',
    '',
    `Batch ${cfg.batch}, 10-class head, last stage + head trainable (the rest frozen, batch norm in inference mode), SGD with momentum; ` +
      `head epoch = ${CACHED_FEATURES} cached feature vectors. Medians of ${cfg.reps} runs after a warm-up. ` +
      `${torchVersion ?? 'PyTorch not measured'}. Threads available: ${cfg.threads}. Load average (1 min) ${loadBefore.toFixed(1)} at the start, ` +
      `${os.loadavg()[0].toFixed(1)} at the end: on a shared machine every number is a lower bound, and ratios taken minutes apart drift.`,
    '',
    '| arch (input) | engine | inference img/s | train step img/s | head epoch s | note |',
    '|---|---|---:|---:|---:|---|',
  ];
  for (const arch of cfg.archs) {
    const size = inputSize(arch, cfg);
    for (const [engine, s] of Object.entries(rows[arch])) {
      out.push(`| ${arch} (${size}) | ${engine} | ${fmt(s.inference)} | ${fmt(s.train)} | ${fmt(s.headEpoch, 3)} | ${s.note ?? ''} |`);
    }
  }
  out.push('', '### Ratios against the targets', '');
  const n = cfg.threads;
  out.push(
    `| arch | wasm 1 thread / PyTorch 1 thread: inference (>= 0.5) | train step (>= 0.33) | wasm ${n} threads in-process / PyTorch ${n}: inference | train step | ` +
      `wasm ${n} workers / PyTorch ${n}: inference | train step | wasm / cpu train step, 1 thread each (>= 20) | ` +
      `graft's default / PyTorch ${n}: inference | train step |`,
  );
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const arch of cfg.archs) {
    const r = rows[arch];
    const w1 = r[ONE_THREAD];
    const wt = r[threadedLabel(cfg)];
    const wn = r[workersLabel(cfg)];
    const t1 = r['PyTorch CPU, 1 thread'];
    const tn = r[`PyTorch CPU, ${n} thread${n > 1 ? 's' : ''}`];
    const cpu = r['cpu (pure JS)'];
    const graft = r[GRAFT_DEFAULT];
    out.push(
      `| ${arch} | ${verdict(ratio(w1?.inference, t1?.inference), 0.5)} | ${verdict(ratio(w1?.train, t1?.train), 0.33)} | ` +
        `${verdict(ratio(wt?.inference, tn?.inference), 0.5)} | ${verdict(ratio(wt?.train, tn?.train), 0.33)} | ` +
        `${verdict(ratio(wn?.inference, tn?.inference), 0.5)} | ${verdict(ratio(wn?.train, tn?.train), 0.33)} | ${verdict(ratio(w1?.train, cpu?.train), 20)} | ` +
        `${verdict(ratio(graft?.inference, tn?.inference), 0.5)} | ${verdict(ratio(graft?.train, tn?.train), 0.33)} |`,
    );
  }
  if (notes.length) out.push('', ...notes.map((n) => `- ${n}`));
  return out.join('\n') + '\n';
}

/** The `engines` bench section (issue 7's comparison of engines). */
export const enginesSection: BenchSection = { name: 'engines', run };
