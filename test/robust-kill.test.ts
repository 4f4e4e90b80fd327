/**
 * Fault tests (issue 15 item 9) of saves killed with SIGKILL: the previous model folder stays whole and loadable,
 * and the staging folders the killed process left are removed on the next save or load of that folder.
 * Runs the built code (`npm run build` first; `npm test` does it) in a child process that is killed for real.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { loadModelFolder, saveModelFolder } from '../src/io/model-folder';
import { staleStaging } from '../src/io/stale';
import * as tf from '@tensorflow/tfjs';
import { tmpDir } from './helpers/tmp';

const root = tmpDir('graft-robust-kill-');
const REPO = path.join(__dirname, '..');

/** A child that saves a small model into argv[2] in a loop (weights = the loop count), or once then kills itself mid-save. */
const SCRIPT = `
const tf = require(require.resolve('@tensorflow/tfjs', { paths: [${JSON.stringify(REPO)}] }));
const { saveModelFolder } = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'io', 'model-folder.js'))});
const [dir, mode] = process.argv.slice(2);
const model = (v) => {
  const input = tf.input({ shape: [64] });
  const dense = tf.layers.dense({ units: 256, kernelInitializer: tf.initializers.constant({ value: v }), name: 'fc' });
  return tf.model({ inputs: input, outputs: dense.apply(input) });
};
const meta = { architecture: 'mlp', inputShape: [8, 8, 1], classNames: ['a', 'b'], preprocessing: 'tf', outputActivation: 'softmax', groups: [] };
(async () => {
  if (mode === 'swap') {
    await saveModelFolder(dir, model(1), meta, { beforeSwap: () => process.kill(process.pid, 'SIGKILL') });
    return;
  }
  for (let i = 1; ; i++) {
    await saveModelFolder(dir, model(i), meta, { shardBytes: 16384 });
    if (i === 1) process.stdout.write('saved\\n');
  }
})();
`;
const script = path.join(root, 'saver.js');
fs.writeFileSync(script, SCRIPT);

function child(dir: string, mode: string): { ready: Promise<void>; kill(): void; done: Promise<NodeJS.Signals | null> } {
  const p = spawn(process.execPath, [script, dir, mode], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ready = new Promise<void>((resolve) => p.stdout!.on('data', (d) => String(d).includes('saved') && resolve()));
  const done = new Promise<NodeJS.Signals | null>((resolve) => p.on('close', (_code, signal) => resolve(signal)));
  return { ready, kill: () => p.kill('SIGKILL'), done };
}

const kernelValue = async (dir: string): Promise<number> => {
  const { model } = await loadModelFolder(dir);
  try {
    const values = new Set(model.getWeights()[0].dataSync());
    expect(values.size).toBe(1);
    return [...values][0];
  } finally {
    model.dispose();
  }
};

const litter = (dir: string) => fs.readdirSync(path.dirname(dir)).filter((e) => e.startsWith(`.${path.basename(dir)}.`));

describe('a save killed with SIGKILL', () => {
  test('killed after staging, before the swap: the old model stays; its staging is cleaned on the next load', async () => {
    const dir = path.join(root, 'swap', 'model');
    const input = tf.input({ shape: [64] });
    const out = tf.layers.dense({ units: 256, kernelInitializer: tf.initializers.constant({ value: 7 }), name: 'fc' }).apply(input) as tf.SymbolicTensor;
    const before = tf.model({ inputs: input, outputs: out });
    await saveModelFolder(dir, before, { architecture: 'mlp', inputShape: [8, 8, 1], classNames: ['a', 'b'], preprocessing: 'tf', outputActivation: 'softmax', groups: [] } as never);
    before.dispose();
    const c = child(dir, 'swap');
    expect(await c.done).toBe('SIGKILL');
    expect(litter(dir)).toHaveLength(1);
    expect(litter(dir)[0]).toMatch(/^\.model\.tmp-\d+-[0-9a-f]{6}-[0-9a-f]{8}$/);
    expect(staleStaging(dir)).toHaveLength(1);
    expect(await kernelValue(dir)).toBe(7);
    expect(litter(dir)).toEqual([]);
  });

  test('killed at a random moment of repeated saves: a whole model loads, and the next save leaves no litter', async () => {
    const dir = path.join(root, 'random', 'model');
    const c = child(dir, 'loop');
    await c.ready;
    const delay = Math.round(Math.random() * 400);
    await new Promise((r) => setTimeout(r, delay));
    c.kill();
    expect(await c.done).toBe('SIGKILL');
    // Whatever moment it died at, the folder holds one complete save (every weight from the same loop count).
    const value = await kernelValue(dir);
    expect(Number.isInteger(value) && value >= 1).toBe(true);
    const input = tf.input({ shape: [64] });
    const out = tf.layers.dense({ units: 256, name: 'fc' }).apply(input) as tf.SymbolicTensor;
    const next = tf.model({ inputs: input, outputs: out });
    await saveModelFolder(dir, next, { architecture: 'mlp', inputShape: [8, 8, 1], classNames: ['a', 'b'], preprocessing: 'tf', outputActivation: 'softmax', groups: [] } as never);
    next.dispose();
    expect({ delay, litter: litter(dir) }).toEqual({ delay, litter: [] });
  });
});
