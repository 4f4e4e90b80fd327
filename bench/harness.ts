/**
 * What the training benchmarks (`train-speed`, `train-step`, `engines`) share: timing, the PyTorch peers, the load
 * average, random batches and the environment knobs.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PACKAGE_ROOT } from '../src/version';

/** The Python that has Debian's torch and torchvision. */
export const PYTHON = '/usr/bin/python3';

/** Median seconds of `reps` runs of `fn`, after one warm-up run unless `warmup` is false. */
export async function medianSeconds(fn: () => Promise<void>, reps: number, warmup = true): Promise<number> {
  if (warmup) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** The 1, 5 and 15 minute load averages as printed in reports, e.g. `1.4 1.9 2.7`. */
export function loadAverage(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** A comma list from the environment (trimmed, empties dropped), or `fallback` when unset. */
export function envList(name: string, fallback: string[] = []): string[] {
  const v = process.env[name];
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : fallback;
}

/** A number from the environment, or `fallback` when unset. */
export function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number; received ${JSON.stringify(v)}.`);
  return n;
}

/** A seeded normal batch (NHWC values) and cycling integer labels. */
export function randomBatch(shape: number[], classes: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const x = tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array);
  return { x, labels: Int32Array.from({ length: shape[0] }, (_, i) => i % classes) };
}

/**
 * Runs a PyTorch peer script from bench/ with OpenMP's idle threads sleeping (as graft's onnxruntime threads do)
 * and parses the last line of its stdout as JSON; on failure, `{ error }` with the last line of its stderr.
 */
export function runTorchPeer(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Record<string, unknown> & { error?: string } {
  if (!fs.existsSync(PYTHON)) return { error: `${PYTHON} not found` };
  const r = spawnSync(PYTHON, [path.join(PACKAGE_ROOT, 'bench', script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', ...env },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) return { error: `PyTorch failed: ${(r.stderr || String(r.error)).trim().split('\n').slice(-1)[0]}` };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  } catch {
    return { error: `PyTorch printed no JSON: ${r.stdout.trim().split('\n').slice(-1)[0]}` };
  }
}
