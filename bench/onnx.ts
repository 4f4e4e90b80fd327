/**
 * `onnx`: graft on onnxruntime-node against graft on tfjs wasm and PyTorch CPU (issue 9), in one invocation.
 * 1. Pooled features of 48 JPEGs at 224x224 for ResNet50 and VGG16, each a whole cold process (start-up, model
 *    load, decoding, preprocessing, inference): graft `--engine onnx` (first run exports and caches the graph,
 *    later runs read the cache), graft `--engine tfjs` (wasm), PyTorch with 2 threads; plus the raw onnxruntime
 *    session on the same exported graph and batches, so graft's own overhead shows.
 * 2. A fine-tuning step, batch 16 @224, only the last stage and a new head trainable: graft with the frozen prefix
 *    on onnxruntime and the suffix in tfjs wasm, graft all in tfjs wasm, and PyTorch.
 *
 * MobileNetV2 and EfficientNetB0 (issue 17) run against torchvision's mobilenet_v2 / efficientnet_b0 the same way.
 *
 * Knobs: GRAFT_BENCH_ONNX_ARCHS (resnet50,vgg16,mobilenet_v2,efficientnet_b0), GRAFT_BENCH_ONNX_STEP_ARCHS (the same),
 * GRAFT_BENCH_REPS (2), GRAFT_BENCH_ONNX_SKIP (comma list of: features, tfjs, torch, step).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { saveModelFolder } from '../src/io/model-folder';
import { buildModel } from '../src/models/build';
import { createClassifier } from '../src/models/classifier';
import { classificationLoss } from '../src/train/losses';
import { createGradientPool } from '../src/engine/workers';
import { splitModel } from '../src/models/split';
import { createOnnxPrefixRunner } from '../src/engine/onnx-runners';
import { ONNX_CACHE_DIR, cachedOnnxModel, createOnnxPredictor, createOnnxSession, runSession, tryLoadOnnxRuntime } from '../src/engine/onnx-runtime';
import { createRng } from '../src/util/rng';
import { PACKAGE_ROOT } from '../src/version';
import type { BenchSection } from './sections';

const IMAGES = 48;
const SIZE = 224;
const BATCH = 16;
const TORCH_THREADS = 2;
const STEP_THREADS = Math.min(2, os.availableParallelism());
const PYTHON = '/usr/bin/python3';

interface Config {
  archs: string[];
  stepArchs: string[];
  reps: number;
  skip: string[];
}

function config(): Config {
  const env = process.env;
  const list = (v: string | undefined, d: string[]) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : d);
  return {
    archs: list(env.GRAFT_BENCH_ONNX_ARCHS, ['resnet50', 'vgg16', 'mobilenet_v2', 'efficientnet_b0']),
    stepArchs: list(env.GRAFT_BENCH_ONNX_STEP_ARCHS, ['resnet50', 'vgg16', 'mobilenet_v2', 'efficientnet_b0']),
    reps: Number(env.GRAFT_BENCH_REPS ?? 2),
    skip: list(env.GRAFT_BENCH_ONNX_SKIP, []),
  };
}

/** Best of `reps` timings of `fn` (seconds) after one warm-up: the least disturbed by other work on the machine. */
async function bestOf(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return Math.min(...times);
}

/**
 * Photo-like JPEGs (smooth colour fields plus noise, so they compress and decode like real photos): 48 at 224 unless
 * told otherwise.
 */
export async function makeJpegs(dir: string, o: { count?: number; size?: number; seed?: string } = {}): Promise<void> {
  const size = o.size ?? SIZE;
  fs.mkdirSync(dir, { recursive: true });
  const rng = createRng(o.seed ?? 'onnx-bench');
  for (let n = 0; n < (o.count ?? IMAGES); n++) {
    const [a, b, c] = [rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)];
    const raw = Buffer.alloc(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const i = (y * size + x) * 3;
        raw[i] = Math.max(0, Math.min(255, a * (x / size) + rng.uniform(-20, 20)));
        raw[i + 1] = Math.max(0, Math.min(255, b * (y / size) + rng.uniform(-20, 20)));
        raw[i + 2] = Math.max(0, Math.min(255, c + 60 * Math.sin((x + y) / 17) + rng.uniform(-20, 20)));
      }
    await sharp(raw, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 90 }).toFile(path.join(dir, `img${String(n).padStart(2, '0')}.jpg`));
  }
}

/** A whole child process: wall-clock seconds and its JSON output, or the error's last line. */
interface ProcessRun {
  seconds: number;
  out?: Record<string, unknown>;
  error?: string;
}

/** The fastest run, or the first failure. */
function best(runs: ProcessRun[]): ProcessRun | undefined {
  return runs.find((r) => r.error) ?? [...runs].sort((a, b) => a.seconds - b.seconds)[0];
}

/** Runs a child process to the end and times it. */
function timedProcess(cmd: string, args: string[]): ProcessRun {
  const t = process.hrtime.bigint();
  const run = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  if (run.status !== 0) return { seconds, error: (run.stderr || run.error?.message || 'failed').trim().split('\n').slice(-1)[0] };
  return { seconds, out: JSON.parse(run.stdout.trim().split('\n').slice(-1)[0]) };
}

function graftFeatures(modelDir: string, images: string, engine: string) {
  return timedProcess(process.execPath, [path.join(PACKAGE_ROOT, 'dist', 'bench', 'onnx-features.js'), modelDir, images, engine, String(BATCH)]);
}

let torchVersion: string | undefined;

function torch(args: string[]): ProcessRun {
  if (!fs.existsSync(PYTHON)) return { seconds: NaN, error: `${PYTHON} not found` };
  const result = timedProcess(PYTHON, [path.join(PACKAGE_ROOT, 'bench', 'onnx_torch.py'), '--threads', String(TORCH_THREADS), ...args]);
  if (result.out?.torch) torchVersion = String(result.out.torch);
  return result;
}

/** The same 3 batches of 16 through the raw session and through graft's onnx Predictor, in this process. */
async function inProcess(modelDir: string, reps: number): Promise<{ raw: number; predictor: number }> {
  const model = await cachedOnnxModel(modelDir);
  const input = tf.tidy(() => tf.randomNormal([BATCH, SIZE, SIZE, 3], 0, 60, 'float32', 1).dataSync() as Float32Array);
  const { session } = await createOnnxSession(model);
  let raw: number;
  try {
    raw = await bestOf(async () => {
      for (let i = 0; i < IMAGES / BATCH; i++) await runSession(session, input, [BATCH, SIZE, SIZE, 3]);
    }, reps);
  } finally {
    await session.release();
  }
  const predictor = await createOnnxPredictor(modelDir, { log: null });
  try {
    const viaGraft = await bestOf(async () => {
      for (let i = 0; i < IMAGES / BATCH; i++) await predictor.predict(input, BATCH);
    }, reps);
    return { raw, predictor: viaGraft };
  } finally {
    await predictor.dispose();
  }
}

/** Where a fine-tuning step runs its frozen prefix and its trainable suffix. */
type StepPlan = { prefix: 'onnx' | 'tfjs'; suffixThreads: number };

/** Seconds per fine-tuning step (last stage + head trainable): prefix forward, suffix forward + backward, update. */
async function graftStep(arch: string, plan: StepPlan, reps: number): Promise<number> {
  const { model, meta } = await createClassifier({ arch, inputShape: [SIZE, SIZE, 3], classNames: Array.from({ length: 10 }, (_, i) => `c${i}`) });
  // Groups end [..., last stage, head]: the boundary is the last layer before the last stage.
  const boundary = meta.groups[meta.groups.length - 3].layers.at(-1)!;
  const split = splitModel(model, boundary);
  const x = tf.tidy(() => tf.randomNormal([BATCH, SIZE, SIZE, 3], 0, 60, 'float32', 2));
  const pixels = x.dataSync() as Float32Array;
  const labels = Int32Array.from({ length: BATCH }, (_, i) => i % 10);
  const optimizer = tf.train.momentum(1e-3, 0.9);
  const variables = new Map(split.suffix.trainableWeights.map((w) => [w.originalName, w.read() as tf.Variable]));
  const runner = plan.prefix === 'onnx' ? await createOnnxPrefixRunner(model, boundary, { log: null }) : undefined;
  // Data-parallel suffix on worker threads (tfjs wasm is single-threaded in Node), as `graft train --threads N` does.
  const pool = plan.suffixThreads > 1 ? await createGradientPool({ model: split.suffix, threads: plan.suffixThreads, loss: { outputActivation: 'softmax' } }) : undefined;
  const apply = (grads: Record<string, tf.Tensor>) => optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
  try {
    return await bestOf(async () => {
      const features = runner ? await runner.run(pixels, BATCH) : tf.tidy(() => (split.prefix.predict(x) as tf.Tensor).dataSync() as Float32Array);
      const shape = [BATCH, ...(split.suffix.inputs[0].shape.slice(1) as number[])];
      if (pool) {
        const step = await pool.grads({ x: features, labels, batch: BATCH });
        apply(Object.fromEntries(Object.entries(step.grads).map(([name, g]) => [variables.get(name)!.name, g])));
        tf.dispose([...Object.values(step.grads), ...Object.values(step.state)]);
        await pool.setWeights(Object.fromEntries(variables));
        return;
      }
      tf.tidy(() => {
        const f = tf.tensor(features, shape);
        const { value, grads } = tf.variableGrads(
          () => classificationLoss(split.suffix.apply(f, { training: true }) as tf.Tensor, labels, { outputActivation: 'softmax' }),
          [...variables.values()],
        );
        apply(grads);
        value.dataSync();
      });
    }, reps);
  } finally {
    await pool?.dispose();
    await runner?.dispose();
    optimizer.dispose();
    tf.dispose(x);
    split.dispose();
    model.dispose();
  }
}

const f2 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(2));
const ips = (seconds: number | undefined, n = IMAGES) => (seconds ? n / seconds : undefined);

/** "x.xx s (y.y img/s)" or the error. */
function cell(r: { seconds: number; error?: string } | undefined, n = IMAGES): string {
  if (!r) return 'skipped';
  if (r.error) return `failed: ${r.error}`;
  return `${f2(r.seconds)} s (${(n / r.seconds).toFixed(1)} img/s)`;
}

function verdict(value: number | undefined, target: number, higherIsBetter: boolean): string {
  if (value === undefined || !Number.isFinite(value)) return 'not measured';
  const met = higherIsBetter ? value >= target : value <= target;
  return `${f2(value)}x (target ${higherIsBetter ? '>=' : '<='} ${target}x: ${met ? 'met' : `missed by ${f2(higherIsBetter ? target / value : value / target)}x`})`;
}

async function run(): Promise<string> {
  const cfg = config();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-bench-onnx-'));
  const images = path.join(scratch, 'images');
  const lines: string[] = [
    '## onnx: onnxruntime-node vs tfjs wasm vs PyTorch CPU (issue 9)',
    '',
    `${IMAGES} JPEGs ${SIZE}x${SIZE}, batch ${BATCH}, random weights, onnxruntime and PyTorch with ${TORCH_THREADS} threads, tfjs wasm. ` +
      'Whole process = a cold process doing everything (start-up, model load, JPEG decoding, preprocessing, pooled features). ' +
      `Engines alternate and each keeps its best of ${cfg.reps} runs, as other work on the machine drifts.`,
    '',
    '| model | graft onnx, first run (exports + caches) | graft onnx, cached graph | graft tfjs wasm | PyTorch CPU | raw onnxruntime session, same batches | graft onnx Predictor in-process |',
    '|---|---|---|---|---|---|---|',
  ];
  const ratios: string[] = [];
  try {
    await makeJpegs(images);
    await initBackend({ backend: 'wasm', log: null });
    for (const arch of cfg.skip.includes('features') ? [] : cfg.archs) {
      process.stderr.write(`onnx: ${arch} features\n`);
      const dir = path.join(scratch, arch);
      const { model, meta } = await buildModel({ arch, includeTop: false, pooling: 'avg', inputShape: [SIZE, SIZE, 3] });
      await saveModelFolder(dir, model, meta);
      model.dispose();
      fs.rmSync(path.join(dir, ONNX_CACHE_DIR), { recursive: true, force: true });
      const cold = graftFeatures(dir, images, 'onnx');
      // On a shared machine the load drifts: alternate the engines and keep each one's best run.
      const warmRuns: ProcessRun[] = [];
      const pyRuns: ProcessRun[] = [];
      for (let r = 0; r < cfg.reps; r++) {
        warmRuns.push(graftFeatures(dir, images, 'onnx'));
        if (!cfg.skip.includes('torch')) pyRuns.push(torch(['--mode', 'features', '--arch', arch, '--images', images, '--batch', String(BATCH)]));
      }
      const warm = best(warmRuns)!;
      const py = best(pyRuns);
      const tfjs = cfg.skip.includes('tfjs') ? undefined : graftFeatures(dir, images, 'tfjs');
      const inproc = await inProcess(dir, cfg.reps);
      lines.push(
        `| ${arch} | ${cell(cold)} | ${cell(warm)} | ${cell(tfjs)} | ${cell(py)} | ${f2(inproc.raw)} s (${ips(inproc.raw)!.toFixed(1)} img/s) | ${f2(inproc.predictor)} s (${ips(inproc.predictor)!.toFixed(1)} img/s) |`,
      );
      const warmIps = warm.error ? undefined : ips(warm.seconds);
      ratios.push(
        `- ${arch}: graft onnx (cached, whole process) vs PyTorch (whole process): ${verdict(py && !py.error ? warmIps! / ips(py.seconds)! : undefined, 3, true)}; ` +
          `vs graft tfjs wasm: ${f2(tfjs && !tfjs.error && warmIps ? warmIps / ips(tfjs.seconds)! : undefined)}x.`,
        `- ${arch}: raw onnxruntime / graft onnx: whole process ${verdict(warm.error ? undefined : warm.seconds / inproc.raw, 1.25, false)}; ` +
          `in-process Predictor vs raw session ${verdict(inproc.predictor / inproc.raw, 1.25, false)}; ` +
          `inference inside the whole process ${f2(Number(warm.out?.inference_s))} s of ${f2(warm.seconds)} s.`,
      );
    }
    lines.push('', ...ratios);

    if (!cfg.skip.includes('step')) {
      lines.push(
        '',
        `Fine-tuning step, batch ${BATCH} @${SIZE}, last stage + new 10-class head trainable (momentum SGD), best of ${cfg.reps} after a warm-up:`,
        '',
        `| model | graft: prefix onnxruntime, suffix tfjs wasm 1 thread | graft: prefix onnxruntime, suffix wasm on ${STEP_THREADS} worker threads | graft: all tfjs wasm, 1 thread | PyTorch CPU ${TORCH_THREADS} threads | best graft vs PyTorch |`,
        '|---|---|---|---|---|---|',
      );
      for (const arch of cfg.stepArchs) {
        process.stderr.write(`onnx: ${arch} step\n`);
        const onnx1 = await graftStep(arch, { prefix: 'onnx', suffixThreads: 1 }, cfg.reps);
        const onnxN = await graftStep(arch, { prefix: 'onnx', suffixThreads: STEP_THREADS }, cfg.reps);
        const tfjsStep = cfg.skip.includes('tfjs') ? undefined : await graftStep(arch, { prefix: 'tfjs', suffixThreads: 1 }, cfg.reps);
        const py = cfg.skip.includes('torch') ? undefined : torch(['--mode', 'step', '--arch', arch, '--batch', String(BATCH), '--reps', String(cfg.reps)]);
        const pyStep = py?.out ? Number(py.out.step_s) : undefined;
        const graftBest = Math.min(onnx1, onnxN);
        lines.push(
          `| ${arch} | ${f2(onnx1)} s | ${f2(onnxN)} s | ${tfjsStep === undefined ? 'skipped' : `${f2(tfjsStep)} s`} | ${!py ? 'skipped' : py.error ? `failed: ${py.error}` : `${f2(pyStep)} s`} | ` +
            `${verdict(pyStep ? pyStep / graftBest : undefined, 1, true)} |`,
        );
      }
    }
    const ortVersion = tryLoadOnnxRuntime().ort?.env.versions.common;
    lines.push('', `Engines: onnxruntime-node ${ortVersion}, tfjs ${tf.version.tfjs} wasm, PyTorch ${torchVersion ?? '(not run)'}; ${os.cpus().length} x ${os.cpus()[0]?.model}.`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return lines.join('\n') + '\n';
}

/** The `onnx` bench section. */
export const onnxSection: BenchSection = { name: 'onnx', run };
