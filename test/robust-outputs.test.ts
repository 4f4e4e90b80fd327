/**
 * Operator robustness (issue 15) of output paths: every --out is checked before work starts, a failing final
 * save rescues the model to a fallback folder, and --out never overwrites someone else's model or the dataset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { train } from '../src/engine/training';
import { tmpDir } from './helpers/tmp';
import { tinyDataset } from './helpers/tiny-data';
import { runCli as graft } from './helpers/run-cli';

const root = tmpDir('graft-robust-out-');
const data = tinyDataset(path.join(root, 'data'));
const MODEL = path.join(__dirname, '..', 'models', 'fashion-mnist-0-4');
const file = path.join(root, 'a-file');
fs.writeFileSync(file, 'x');
const TRAIN = ['train', '--data', data, '--arch', 'simple_cnn', '--weights', 'none', '--epochs', '1', '--batch-size', '8'];

describe('every --out is checked before the work starts', () => {
  test('train --out that is a file, under a file, or on a read-only file system fails at once', async () => {
    for (const [out, message] of [
      [file, `--out ${file} is a file, not a folder; choose another --out.`],
      [path.join(file, 'model'), `--out ${path.join(file, 'model')}: ${file} is a file, not a folder; choose another path.`],
      // /sys is mounted read-only: permission bits do not stop root, the mount does.
      ['/sys/graft-model', '--out /sys/graft-model: /sys cannot be written'],
    ]) {
      const r = await graft(...TRAIN, '--out', out);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`graft: ${message}`);
      expect(r.err).not.toMatch(/epoch|unexpected error/);
    }
  });

  test('evaluate, predict, augment and lr-find check their outputs first', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['evaluate', '--model', MODEL, '--data', data, '--out', path.join(file, 'r.json')], /--out .*r\.json: .*a-file is a file, not a folder/],
      [['predict', '--model', MODEL, '--out', root, data], /--out .* is a folder; give a file name/],
      [['augment', '--data', data, '--out', path.join(file, 's.png')], /a-file is a file, not a folder/],
      [['lr-find', '--data', data, '--arch', 'simple_cnn', '--plot', root], /--plot .* is a folder/],
    ];
    for (const [args, message] of cases) {
      const r = await graft(...args);
      expect(r.err).toMatch(message);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
    }
  });
});

describe('--out never overwrites what is not graft\'s', () => {
  test('a folder with a foreign model.json, the dataset itself or a folder inside it is refused unless --force', async () => {
    const foreign = path.join(root, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'model.json'), '{"format":"layers-model"}');
    const r = await graft(...TRAIN, '--out', foreign);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/holds a model\.json that graft did not write \(no graft\.json\); choose another --out, or add --force/);
    expect(fs.readFileSync(path.join(foreign, 'model.json'), 'utf8')).toBe('{"format":"layers-model"}');
    for (const out of [data, path.join(data, 'model')]) {
      const inside = await graft(...TRAIN, '--out', out);
      expect(inside.code).toBe(1);
      expect(inside.err).toMatch(/is inside the dataset .*Choose a folder outside it, or add --force/);
    }
    expect(fs.existsSync(path.join(data, 'model'))).toBe(false);
    const forced = await graft(...TRAIN, '--out', foreign, '--force', '-q');
    expect(forced.err).toBe('');
    expect(forced.code).toBe(0);
    expect(fs.existsSync(path.join(foreign, 'graft.json'))).toBe(true);
  });
});

describe('a save that fails at the end', () => {
  test('writes the trained model to a fallback folder and says where', async () => {
    await initBackend({ backend: 'wasm', log: null });
    const out = path.join(root, 'lost', 'model');
    const err = await train({
      data,
      arch: 'simple_cnn',
      weights: null,
      epochs: 1,
      batchSize: 8,
      out,
      progress: 'none',
      log: null,
      // The folder turns into a file while the run trains (a disk swapped, a path taken by someone else).
      callbacks: {
        onEpochEnd: () => {
          fs.mkdirSync(path.dirname(out), { recursive: true });
          fs.writeFileSync(out, 'in the way');
        },
      },
    }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/^could not write the trained model to .*model \(.*\); it was saved to (.*) instead: move that folder where you want it\.$/);
    const rescued = /saved to (.*) instead/.exec(err!.message)![1];
    expect(path.dirname(rescued)).toBe(path.dirname(out));
    for (const f of ['model.json', 'graft.json', 'history.json']) expect(fs.existsSync(path.join(rescued, f))).toBe(true);
  });
});

describe('a reader that closes the pipe early', () => {
  const spawnGraft = async (args: string[], closed: 'stdout' | 'stderr') => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'graft'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child[closed].destroy(); // the reader is gone before the first line is written
    let err = '';
    if (closed === 'stdout') child.stderr.on('data', (d) => (err += String(d)));
    else child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, err };
  };

  test.each([['models'], ['features', '-q', '--weights', MODEL, path.join(__dirname, '..', 'datasets', 'fashion-mnist-0-4')]])(
    'on stdout (graft %s | head): graft stops quietly with the status of a process a closed pipe stopped',
    async (...args) => {
      const r = await spawnGraft(args, 'stdout');
      expect(r.err).toBe('');
      expect(r.code).toBe(141);
    },
  );

  test('on stderr (graft features ... 2>&1 | grep -m1 ...): only the messages stop; the rows are all written', async () => {
    const images = path.join(__dirname, '..', 'datasets', 'fashion-mnist-0-4', 'train');
    const out = path.join(root, 'closed-stderr.csv');
    const r = await spawnGraft(['features', '--weights', MODEL, images, '--out', out], 'stderr');
    expect(r.code).toBe(0);
    const rows = fs.readFileSync(out, 'utf8').trim().split('\n');
    const { walkImagePaths } = await import('../src/eval/feature-stream');
    expect(rows.length - 1).toBe(Array.from(walkImagePaths([images])).length);
  });
});
