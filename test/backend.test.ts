import * as tf from '@tensorflow/tfjs';
import { initBackend, currentBackend } from '../src/backend';
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
