import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, currentBackend, probeBackends, wasmThreadCount } from '../src/backend';
import { formatDoctor } from '../src/cli/commands/doctor';
import { GraftError } from '../src/errors';

describe('backend selection', () => {
  const saved = process.env.GRAFT_BACKEND;
  afterEach(() => {
    if (saved === undefined) delete process.env.GRAFT_BACKEND;
    else process.env.GRAFT_BACKEND = saved;
  });

  test('a forced backend that cannot load is an error saying what to install, not a fallback', async () => {
    // tfjs-node is an optional peer and is not installed by npm ci.
    const err = await initBackend({ backend: 'tensorflow', log: null }).catch((e) => e);
    expect(err).toBeInstanceOf(GraftError);
    expect(err.message).toMatch(/backend tensorflow cannot load/);
    expect(err.message).toMatch(/npm install @tensorflow\/tfjs-node@4\.22\.0/);
    expect(err.message).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    expect(currentBackend()?.backend).not.toBe('tensorflow');
  });

  test('an unknown backend name lists the valid ones', async () => {
    await expect(initBackend({ backend: 'gpu', log: null })).rejects.toThrow(
      '--backend must be one of auto, tensorflow, wasm, cpu; received "gpu".',
    );
    process.env.GRAFT_BACKEND = 'cuda';
    await expect(initBackend({ log: null })).rejects.toThrow(/GRAFT_BACKEND must be one of .*received "cuda"/);
  });

  test('auto picks wasm here and reports the skipped faster backends', async () => {
    const lines: string[] = [];
    const info = await initBackend({ backend: 'auto', log: (l) => lines.push(l) });
    expect(info.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.skipped.map((s) => s.pkg)).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
    expect(lines.join('\n')).toMatch(/using backend wasm .*skipped .*tfjs-node-gpu.*not installed/);
  });

  test('GRAFT_BACKEND chooses when no flag is given, and the flag wins over it', async () => {
    process.env.GRAFT_BACKEND = 'cpu';
    expect((await initBackend({ log: null })).backend).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend({ backend: 'wasm', log: null })).backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('wasm on every core', () => {
  const saved = process.env.GRAFT_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.GRAFT_THREADS;
    else process.env.GRAFT_THREADS = saved;
  });
  afterAll(() => initBackend({ backend: 'wasm', log: null }));

  test('a worker that runs a whole command (graft features) may thread wasm; graft\'s evaluation workers may not', async () => {
    const built = path.join(__dirname, '..', 'dist', 'src', 'backend', 'wasm-threads.js');
    if (!fs.existsSync(built)) throw new Error('run npm run build first: this test loads the built backend in worker threads');
    const { Worker } = await import('node:worker_threads');
    const { WHOLE_PROCESS_WORKER } = await import('../src/backend/compute-threads');
    const ask = (workerData: unknown) =>
      new Promise<boolean>((resolve, reject) => {
        const w = new Worker(`require('worker_threads').parentPort.postMessage(require(${JSON.stringify(built)}).canThreadWasm())`, { eval: true, workerData });
        w.once('message', resolve);
        w.once('error', reject);
      });
    expect(await ask({ [WHOLE_PROCESS_WORKER]: true })).toBe(true);
    expect(await ask({ entry: 'x' })).toBe(false);
  });

  /** A convolution and a dense product big enough for XNNPACK to split across threads. */
  function work(): Float32Array[] {
    return tf.tidy(() => {
      const x = tf.randomNormal([4, 20, 20, 32], 0, 1, 'float32', 1) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, 32, 48], 0, 1, 'float32', 2) as tf.Tensor4D;
      const a = tf.randomNormal([64, 300], 0, 1, 'float32', 3);
      const b = tf.randomNormal([300, 70], 0, 1, 'float32', 4);
      return [tf.conv2d(x, w, 1, 'same').dataSync() as Float32Array, tf.matMul(a, b).dataSync() as Float32Array];
    });
  }

  test('threads: 2 runs XNNPACK on two threads in this process, with the results of one thread', async () => {
    const one = await initBackend({ backend: 'wasm', threads: 1, log: null });
    expect(one.threads).toBe(1);
    expect(wasmThreadCount()).toBe(1);
    const single = work();
    const lines: string[] = [];
    const two = await initBackend({ backend: 'wasm', threads: 2, log: (l) => lines.push(l) });
    expect(two.threads).toBe(2);
    expect(wasmThreadCount()).toBe(2);
    expect(lines.join('\n')).toMatch(/using backend wasm \(XNNPACK\) on 2 threads/);
    const threaded = work();
    for (const [i, expected] of single.entries()) {
      const worst = threaded[i].reduce((m, v, j) => Math.max(m, Math.abs(v - expected[j]) / (Math.abs(expected[j]) + 1)), 0);
      expect(worst).toBeLessThan(1e-5);
    }
    // Asking again for the same count keeps the backend (and its tensors) rather than starting another.
    const kept = tf.scalar(3);
    await initBackend({ backend: 'wasm', threads: 2, log: null });
    expect(kept.dataSync()[0]).toBe(3);
    kept.dispose();
  });

  test('GRAFT_THREADS sets the default, and a count that is not a positive whole number is an error naming it', async () => {
    process.env.GRAFT_THREADS = '1';
    expect((await initBackend({ backend: 'wasm', log: null })).threads).toBe(1);
    process.env.GRAFT_THREADS = 'two';
    await expect(initBackend({ backend: 'wasm', log: null })).rejects.toThrow('GRAFT_THREADS must be a positive whole number; received "two".');
    await expect(initBackend({ backend: 'wasm', threads: 0, log: null })).rejects.toThrow('threads must be a positive whole number; received 0.');
  });

  test('graft doctor reports how many threads wasm computes on', async () => {
    const report = await probeBackends({ threads: 2 });
    expect(report.wasmThreads).toBe(2);
    expect(formatDoctor(report)).toMatch(/^threads {4}2 for wasm \(--threads or GRAFT_THREADS to change\)$/m);
  });

  test('a process that computed on threaded wasm exits by itself (the thread pool does not hold it open)', () => {
    const dist = path.join(__dirname, '..', 'dist', 'src', 'backend', 'index.js');
    // npm test builds first (pretest); for a direct jest run, `npm run build` must have been run.
    expect(fs.existsSync(dist)).toBe(true);
    const script = `
      const tf = require('@tensorflow/tfjs');
      require(${JSON.stringify(dist)}).initBackend({ backend: 'wasm', threads: 2, log: null }).then((info) => {
        console.log(info.threads, tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).dataSync()[0]);
      });`;
    const run = spawnSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 60_000 });
    expect(run.error).toBeUndefined();
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe('2 64');
  });
});
