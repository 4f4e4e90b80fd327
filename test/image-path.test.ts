/**
 * @jest-environment ./test/helpers/onnx-environment.js
 */
/**
 * The fast image path (issue 14): header checks and their cache, the sharp-free copies of IDX images and plain
 * PNGs, and `graft features` at scale (--out in three formats, --resume, --shard), ending with the distributed
 * recipe in docs/distributed run locally with 3 shards against a single run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { openDataset } from '../src/data/dataset';
import { BatchStats, ImageCache, rawBatches } from '../src/data/raw-batches';
import { PLAIN_PLAN, renderGeometry } from '../src/data/image';
import { bytesToInput } from '../src/data/normalise';
import { parseImageHeader } from '../src/data/image-header';
import { decodePlainPng } from '../src/data/png-raw';
import { checkCacheFile } from '../src/data/file-checks';
import { npyFilesList } from '../src/io/feature-files';
import { FeatureSource, expandImagePaths, streamFeatures, walkImagePaths } from '../src/eval/feature-stream';
import { shardCount, shardItems } from '../src/util/shard';
import { FEATURES_YOUNG_GENERATION_MB, workerError } from '../src/cli/launch';
import { GraftError } from '../src/errors';
import { runCli } from './helpers/run-cli';
import { idxFolder } from './helpers/data-fixtures';
import { tmpDir } from './helpers/tmp';

const REPO = path.resolve(__dirname, '..');
const root = tmpDir('graft-image-path-');
process.env.GRAFT_CACHE = path.join(root, 'cache');
/** 100 Fashion-MNIST PNGs (28x28 grey) in the model's five classes, and the model, copied so caches land in tmp. */
const DATA = path.join(REPO, 'datasets', 'fashion-mnist-0-4', 'train');
const MODEL = path.join(root, 'model');
fs.cpSync(path.join(REPO, 'models', 'fashion-mnist-0-4'), MODEL, { recursive: true, filter: (f) => !f.includes('.onnx-cache') });
const PNGS = fs.readdirSync(path.join(DATA, '1-Trouser')).map((f) => path.join(DATA, '1-Trouser', f));

/** Noise, so every PNG filter type gets used. */
function noise(n: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => ((i * 7919 + seed * 104729) % 251) ^ (i % 13)));
}

describe('headers and plain PNGs', () => {
  test('the header reader gives the format, size and channels sharp reports, and null for anything else', async () => {
    const base = sharp(noise(23 * 17 * 3, 1), { raw: { width: 23, height: 17, channels: 3 } });
    const cases: Array<[Buffer, string, number]> = [
      [await base.clone().png().toBuffer(), 'png', 3],
      [await base.clone().jpeg().toBuffer(), 'jpeg', 3],
      [await base.clone().webp().toBuffer(), 'webp', 3],
      [await base.clone().webp({ lossless: true }).toBuffer(), 'webp', 4],
      [await base.clone().gif().toBuffer(), 'gif', 3],
      [await sharp(noise(23 * 17, 2), { raw: { width: 23, height: 17, channels: 1 } }).toColourspace('b-w').png().toBuffer(), 'png', 1],
    ];
    for (const [bytes, format, channels] of cases) {
      const m = await sharp(bytes).metadata();
      expect(parseImageHeader(bytes)).toEqual({ format, width: m.width, height: m.height, channels });
    }
    expect(parseImageHeader(Buffer.from('this is text, not a PNG\n'))).toBeNull();
    expect(parseImageHeader(Buffer.alloc(0))).toBeNull();
    const tiff = await base.clone().tiff().toBuffer();
    expect(parseImageHeader(tiff)).toBeNull(); // left to sharp
  });

  test('plain PNGs decode byte for byte as sharp decodes them; anything else is left to sharp', async () => {
    for (const file of PNGS.slice(0, 20)) {
      const bytes = fs.readFileSync(file);
      expect(Buffer.from(decodePlainPng(bytes)!.data)).toEqual(await renderGeometry(bytes, PLAIN_PLAN, [28, 28, 1]));
    }
    for (let k = 0; k < 6; k++) {
      const png = await sharp(noise(31 * 17 * 3, k), { raw: { width: 31, height: 17, channels: 3 } }).png({ adaptiveFiltering: k % 2 === 0, compressionLevel: k }).toBuffer();
      expect(Buffer.from(decodePlainPng(png)!.data)).toEqual(await renderGeometry(png, PLAIN_PLAN, [17, 31, 3]));
    }
    const rgba = await sharp(noise(8 * 8 * 4, 3), { raw: { width: 8, height: 8, channels: 4 } }).png().toBuffer();
    expect(decodePlainPng(rgba)).toBeNull();
    const good = fs.readFileSync(PNGS[0]);
    expect(decodePlainPng(good.subarray(0, good.length - 20))).toBeNull(); // truncated: sharp reports it
    const flipped = Buffer.from(good);
    const idat = flipped.indexOf('IDAT');
    flipped[idat + 10] ^= 0xff; // inside IDAT's data: its CRC no longer matches
    expect(decodePlainPng(flipped)).toBeNull();
  });

  test("training's image cache leaves IDX images alone: each epoch copies them, with or without augmentation", async () => {
    // Training asks for a cache; IDX pixels are in memory already, and decoding them through sharp cost the
    // simple_cnn epoch 4.5 of its 24 s.
    const dir = idxFolder(path.join(root, 'idx-cache'), { n: 10, classes: 2 });
    // Not uniform images, so that a flip or a shift changes them.
    const images = path.join(dir, 'train-images-idx3-ubyte');
    const bytes = fs.readFileSync(images);
    for (let i = 16; i < bytes.length; i++) bytes[i] = (i * 37) % 256;
    fs.writeFileSync(images, bytes);
    const idx = await openDataset(dir, { log: null });
    for (const augment of [undefined, '[{"op": "horizontalFlip", "p": 0.5}, {"op": "translate", "max": 0.25}]']) {
      const cache: ImageCache = { images: new Map() };
      const stats: BatchStats = { maxInFlight: 0, cacheHits: 0 };
      const run = async (c?: ImageCache) => {
        const out: number[] = [];
        for (let epoch = 0; epoch < 2; epoch++) {
          for await (const b of rawBatches(idx, { inputShape: [8, 8, 1], preprocessing: 'none', batchSize: 4, seed: 1, epoch, shuffle: true, augment, cache: c, stats: c ? stats : undefined })) out.push(...b.pixels);
        }
        return out;
      };
      const cached = await run(cache);
      expect(cache.images.size).toBe(0);
      expect(stats.fastPath).toBe(augment ? 0 : 2 * idx.samples.length);
      expect(cached).toEqual(await run());
    }
    // Augmenting a grey image for an RGB model still goes through the cache once, so its renders stay pixel-exact.
    const cache: ImageCache = { images: new Map() };
    for await (const b of rawBatches(idx, { inputShape: [8, 8, 3], preprocessing: 'none', batchSize: 4, cache, augment: 'light' })) expect(b.pixels.length).toBe(b.samples.length * 192);
    expect(cache.images.size).toBe(idx.samples.length);
  });

  test('IDX images and plain PNGs skip sharp and give the same batches as the sharp path', async () => {
    const idx = await openDataset(idxFolder(path.join(root, 'idx'), { n: 9, classes: 3 }), { log: null });
    const png = await openDataset(DATA, { log: null });
    for (const [ds, shape] of [[idx, [8, 8, 3]], [png, [28, 28, 1]], [png, [28, 28, 3]]] as const) {
      const stats: BatchStats = { maxInFlight: 0, cacheHits: 0 };
      const fast: number[] = [];
      for await (const b of rawBatches(ds, { inputShape: [...shape], preprocessing: 'caffe', batchSize: 16, stats })) fast.push(...b.pixels);
      expect(stats.fastPath).toBe(ds.samples.length);
      // The reference: every image through sharp, then the same preprocessing.
      const size = shape[0] * shape[1] * shape[2];
      const slow = new Float32Array(ds.samples.length * size);
      for (const [i, s] of ds.samples.entries()) {
        const input = s.source.startsWith('idx:') ? await (await import('../src/data/image')).readSource(s.source) : fs.readFileSync(s.source);
        bytesToInput(await renderGeometry(input, PLAIN_PLAN, [...shape]), shape[2], 'caffe', slow.subarray(i * size, (i + 1) * size));
      }
      expect(Float32Array.from(fast)).toEqual(slow);
    }
  });

  test('check verdicts are cached by path, size and time: a changed file is checked again', async () => {
    const dir = path.join(root, 'cached');
    for (const cls of ['a', 'b']) {
      fs.mkdirSync(path.join(dir, cls), { recursive: true });
      for (let i = 0; i < 3; i++) fs.copyFileSync(PNGS[i], path.join(dir, cls, `${i}.png`));
    }
    const first = await openDataset(dir, { log: null });
    expect(first.samples).toHaveLength(6);
    const cacheFile = checkCacheFile(dir, 'header');
    const cache = JSON.parse(fs.readFileSync(cacheFile, 'utf8'));
    expect(Object.keys(cache.entries)).toHaveLength(6);
    // A verdict planted in the cache is believed while the file is unchanged: the cache is really read...
    const planted = path.join(dir, 'a', '0.png');
    cache.entries[planted][2] = 'planted verdict';
    fs.writeFileSync(cacheFile, JSON.stringify(cache));
    const second = await openDataset(dir, { log: null });
    expect(second.skipped).toEqual([{ source: planted, reason: 'planted verdict' }]);
    // ...and a file whose size or time changed is checked again.
    fs.writeFileSync(path.join(dir, 'b', '1.png'), 'not an image any more');
    const future = new Date(Date.now() + 5000);
    fs.utimesSync(planted, future, future);
    const third = await openDataset(dir, { log: null });
    expect(third.skipped.map((s) => path.relative(dir, s.source))).toEqual(['b/1.png']);
  });
});

/** Reads a feature file graft wrote into file -> vector. */
function readFeatures(file: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  if (file.endsWith('.npy')) {
    const buf = fs.readFileSync(file);
    const headerLength = buf.readUInt16LE(8);
    const [rows, dim] = /'shape': \((\d+), (\d+)\)/.exec(buf.toString('latin1', 10, 10 + headerLength))!.slice(1).map(Number);
    const values = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLength, buf.byteOffset + buf.length));
    expect(values.length).toBe(rows * dim);
    const names = fs.readFileSync(npyFilesList(file), 'utf8').split('\n').filter(Boolean);
    expect(names).toHaveLength(rows);
    names.forEach((n, i) => out.set(n, Array.from(values.subarray(i * dim, (i + 1) * dim))));
  } else if (file.endsWith('.jsonl')) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
      const row = JSON.parse(line);
      out.set(row.file, row.features);
    }
  } else {
    const [header, ...rows] = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(header.startsWith('file,f0,f1,')).toBe(true);
    for (const r of rows) {
      const cells = r.split(',');
      out.set(cells[0], cells.slice(1).map(Number));
    }
  }
  return out;
}

function expectSameFeatures(a: Map<string, number[]>, b: Map<string, number[]>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [k, v] of a) v.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b.get(k)![i]))));
  expect(worst).toBeLessThan(1e-5);
}

describe('streaming the file list', () => {
  /** A stand-in extractor: each image's feature is the sum of its preprocessed pixels. */
  const summing: FeatureSource = {
    inputShape: [28, 28, 1],
    preprocessing: 'none',
    dim: 1,
    run: async (input, batch) => Float32Array.from({ length: batch }, (_, i) => input.subarray(i * 784, (i + 1) * 784).reduce((a, b) => a + b, 0)),
  };
  const collect = async (files: Iterable<string>, o: Parameters<typeof streamFeatures>[2]) => {
    const rows: Array<[string, number]> = [];
    for await (const b of streamFeatures(summing, files, o)) b.files.forEach((f, i) => rows.push([f, b.features[i]]));
    return rows;
  };

  test('features from a lazy walk in small chunks equal one array run, with every unreadable file named once at the end', async () => {
    const dir = path.join(root, 'stream');
    fs.mkdirSync(path.join(dir, 'b'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'a'));
    PNGS.slice(0, 9).forEach((f, i) => fs.copyFileSync(f, path.join(dir, i < 4 ? 'a' : 'b', `${i}.png`)));
    fs.writeFileSync(path.join(dir, 'a', '2x.png'), 'not a png'); // in the first chunk
    fs.writeFileSync(path.join(dir, 'b', '8x.png'), Buffer.alloc(0)); // in the last
    const lines: string[] = [];
    const whole = await collect(expandImagePaths([dir]), { batchSize: 4, log: null });
    const chunked = await collect(walkImagePaths([dir]), { batchSize: 2, chunk: 3, log: (l) => lines.push(l), root: dir });
    expect(chunked).toEqual(whole);
    expect(chunked.map(([f]) => path.relative(dir, f))).toEqual(['a/0.png', 'a/1.png', 'a/2.png', 'a/3.png', 'b/4.png', 'b/5.png', 'b/6.png', 'b/7.png', 'b/8.png']);
    expect(new Set(chunked.map(([, v]) => v)).size).toBe(9);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^graft: warning: skipped 2 unusable files or folders in ${dir}: .*2x\\.png.*8x\\.png`));
    await expect(collect(walkImagePaths([dir]), { chunk: 3, strict: true })).rejects.toThrow(/2x\.png/);
  });

  test('the walk lists a folder only when it gets there, checks every input first, and shardCount matches shardItems', () => {
    const dir = path.join(root, 'lazy');
    fs.mkdirSync(path.join(dir, 'a'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'b'));
    fs.copyFileSync(PNGS[0], path.join(dir, 'a', '0.png'));
    const walk = walkImagePaths([dir]);
    expect(path.relative(dir, walk.next().value as string)).toBe('a/0.png');
    fs.copyFileSync(PNGS[1], path.join(dir, 'b', 'late.png')); // written after the walk began
    expect(Array.from(walk).map((f) => path.relative(dir, f))).toEqual(['b/late.png']);
    expect(() => walkImagePaths([dir, path.join(dir, 'missing')]).next()).toThrow(/image .*missing does not exist/);
    for (const total of [0, 1, 5, 12, 13]) {
      for (const count of [1, 3, 5]) {
        for (let index = 0; index < count; index++) {
          expect(shardCount(total, { index, count })).toBe(shardItems(Array.from({ length: total }, (_, i) => i), { index, count }).length);
        }
      }
    }
  });
});

describe('graft features at scale', () => {
  const images = path.join(DATA, '1-Trouser');
  let reference: Map<string, number[]>;

  beforeAll(async () => {
    const r = await runCli('-q', 'features', '--weights', MODEL, images);
    expect(r.code).toBe(0);
    reference = new Map((JSON.parse(r.out) as Array<{ file: string; features: number[] }>).map((row) => [row.file, row.features]));
    expect(reference.size).toBe(PNGS.length);
  });

  test('--out streams CSV, JSON Lines and .npy (with its list of files), all equal to the printed features', async () => {
    for (const ext of ['csv', 'jsonl', 'npy']) {
      const out = path.join(root, `all.${ext}`);
      const r = await runCli('-q', 'features', '--weights', MODEL, images, '--out', out, '--batch-size', '7');
      expect(r.code).toBe(0);
      expect(fs.existsSync(`${out}.partial`)).toBe(false);
      expectSameFeatures(readFeatures(out), reference);
    }
    const bad = await runCli('features', '--weights', MODEL, images, '--out', path.join(root, 'x.parquet'));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--out .*x\.parquet has extension "\.parquet"; use \.csv, \.jsonl or \.npy/);
  });

  test('--resume keeps the rows already written, drops a half-written one, and computes only the rest', async () => {
    for (const ext of ['npy', 'csv']) {
      const out = path.join(root, `resumed.${ext}`);
      expect((await runCli('-q', 'features', '--weights', MODEL, images, '--out', out)).code).toBe(0);
      // Pretend the run was cut after 5 rows plus part of a sixth, with the first row's values marked.
      const full = readFeatures(out);
      const names = [...full.keys()];
      if (ext === 'npy') {
        const buf = fs.readFileSync(out);
        const dim = full.get(names[0])!.length;
        const cut = Buffer.from(buf.subarray(0, 128 + 5 * dim * 4 + 10));
        cut.writeFloatLE(-123, 128);
        fs.writeFileSync(`${out}.partial`, cut);
        fs.writeFileSync(`${npyFilesList(out)}.partial`, names.slice(0, 6).join('\n') + '\n');
        fs.rmSync(npyFilesList(out));
      } else {
        const lines = fs.readFileSync(out, 'utf8').split('\n');
        const first = lines[1].split(',');
        first[1] = '-123';
        fs.writeFileSync(`${out}.partial`, [lines[0], first.join(','), ...lines.slice(2, 6), lines[6].slice(0, 20)].join('\n'));
      }
      fs.rmSync(out);
      const r = await runCli('features', '--weights', MODEL, images, '--out', out, '--resume');
      expect(r.code).toBe(0);
      expect(r.err).toMatch(new RegExp(`wrote ${names.length} rows of \\d+ features`));
      const resumed = readFeatures(out);
      expect(resumed.get(names[0])![0]).toBe(-123); // kept, not recomputed
      resumed.get(names[0])![0] = full.get(names[0])![0];
      expectSameFeatures(resumed, full);
    }
    const lonely = await runCli('features', '--weights', MODEL, images, '--resume');
    expect(lonely.err).toMatch(/--resume needs --out <file>/);
  });

  test('the folder walk names files exactly as path.join does, however the folder is written', () => {
    const dir = path.relative(process.cwd(), path.join(root, 'walk'));
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    for (const f of ['b.png', 'a.jpg', path.join('sub', 'c.png')]) fs.writeFileSync(path.join(dir, f), '');
    const byJoin = (d: string) => [path.join(d, 'a.jpg'), path.join(d, 'b.png'), path.join(d, 'sub', 'c.png')];
    for (const d of [dir, `${dir}/`, `${dir}//`, `./${dir}`, `${dir}/./`, `${dir}/../walk`, path.resolve(dir), `${path.resolve(dir)}/`]) {
      expect(Array.from(walkImagePaths([d]))).toEqual(byJoin(d));
    }
  });

  test('a run on the cached export never loads tfjs (start-up pays for sharp and onnxruntime only), in a worker with a capped young generation', () => {
    if (!fs.existsSync(path.join(REPO, 'dist', 'src', 'cli', 'launch.js'))) throw new Error('run npm run build first: this test runs the built CLI');
    // A preload (Node runs it on the main thread and again in each worker) that appends, at each thread's exit, one
    // line per thread: whether it is the main thread, its heap limits, and every package it loaded.
    const preload = path.join(root, 'list-modules.js');
    const listed = path.join(root, 'modules.txt');
    fs.rmSync(listed, { force: true });
    fs.writeFileSync(
      preload,
      `const w = require('worker_threads');\nprocess.on('exit', () => require('fs').appendFileSync(${JSON.stringify(listed)}, JSON.stringify({ main: w.isMainThread, limits: w.resourceLimits, modules: Object.keys(require.cache) }) + '\\n'));\n`,
    );
    const r = spawnSync(process.execPath, ['-r', preload, path.join(REPO, 'bin', 'graft'), '-q', 'features', '--weights', MODEL, images, '--out', path.join(root, 'no-tfjs.npy')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const threads = fs.readFileSync(listed, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { main: boolean; limits: { maxYoungGenerationSizeMb?: number }; modules: string[] });
    expect(threads.map((t) => t.main).sort()).toEqual([false, true]);
    const modules = threads.flatMap((t) => t.modules);
    expect(modules.filter((m) => m.includes(`${path.sep}@tensorflow${path.sep}`))).toEqual([]);
    // The run itself is in the worker, whose young generation is capped; the main thread only waits for it.
    const worker = threads.find((t) => !t.main)!;
    expect(worker.modules.some((m) => m.includes(`${path.sep}onnxruntime-node${path.sep}`))).toBe(true);
    expect(worker.limits.maxYoungGenerationSizeMb).toBe(FEATURES_YOUNG_GENERATION_MB);
    expect(threads.find((t) => t.main)!.modules.filter((m) => /onnxruntime-node|sharp|commander/.test(m))).toEqual([]);
    // A worker that runs out of memory gets a one-line error saying what to do; anything else passes through.
    const oomError = () => Object.assign(new Error('Worker terminated due to reaching memory limit: JS heap out of memory'), { code: 'ERR_WORKER_OUT_OF_MEMORY' });
    const toStdout = workerError(oomError(), ['node', 'graft', 'features', '--weights', MODEL, images]);
    expect(toStdout).toBeInstanceOf(GraftError);
    expect(toStdout.message).toMatch(/keeping every row for stdout; pass --out <file>/);
    expect(workerError(oomError(), ['node', 'graft', 'features', images, '--out', 'x.npy']).message).toMatch(/although --out streams its rows/);
    const other = new Error('something else');
    expect(workerError(other, [])).toBe(other);
    // The warm-up ran once for this optimized graph and is remembered beside it (later runs skip it).
    const cache = path.join(MODEL, '.onnx-cache');
    const optimized = fs.readdirSync(cache).find((f) => f.startsWith('features-') && f.endsWith('.ort.onnx'))!;
    expect(fs.readFileSync(path.join(cache, `${optimized}.ran`), 'utf8')).toBe(String(fs.statSync(path.join(cache, optimized)).mtimeMs));
  });

  test('a damaged cached export: auto says so in the engine table\'s words and runs on tfjs; --engine onnx stops with one line', async () => {
    const cache = path.join(MODEL, '.onnx-cache');
    const exports = fs.readdirSync(cache).filter((f) => f.startsWith('features-') && f.endsWith('.onnx'));
    expect(exports.length).toBeGreaterThan(0); // the export and onnxruntime's optimized form beside it
    const saved = exports.map((f) => [f, fs.readFileSync(path.join(cache, f))] as const);
    try {
      for (const [f] of saved) fs.writeFileSync(path.join(cache, f), 'not a model');
      const r = await runCli('features', '--weights', MODEL, images);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/graft: onnx engine could not load the feature model \(.+\); using tfjs\./);
      const rows = new Map((JSON.parse(r.out) as Array<{ file: string; features: number[] }>).map((row) => [row.file, row.features]));
      let worst = 0;
      for (const [k, v] of rows) v.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - reference.get(k)![i]))));
      expect(worst).toBeLessThan(1e-3); // tfjs against onnxruntime: the same network
      const strict = await runCli('features', '--weights', MODEL, images, '--engine', 'onnx');
      expect(strict.code).not.toBe(0);
      expect(strict.err.trim().split('\n')).toHaveLength(1);
      expect(strict.err).toMatch(/--engine onnx cannot run the feature model: .+; use --engine auto\./);
    } finally {
      for (const [f, bytes] of saved) fs.writeFileSync(path.join(cache, f), bytes);
    }
  });

  test('the distributed recipe (docs/distributed) with 3 shards equals a single run, for evaluate and features', () => {
    const graft = `${process.execPath} ${path.join(REPO, 'bin', 'graft')}`;
    if (!fs.existsSync(path.join(REPO, 'dist', 'src', 'cli', 'main.js'))) throw new Error('run npm run build first: the recipe runs the built CLI');
    const out = path.join(root, 'recipe');
    const env = { ...process.env, GRAFT: graft, MODEL, DATA, IMAGES: DATA, OUT: out, COUNT: '3' };
    for (const index of [0, 1, 2]) {
      const r = spawnSync('bash', [path.join(REPO, 'docs', 'distributed', 'shard-job.sh')], { env: { ...env, INDEX: String(index) }, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
    const merge = spawnSync('bash', [path.join(REPO, 'docs', 'distributed', 'merge.sh')], { env, encoding: 'utf8' });
    expect(merge.status).toBe(0);
    const single = (args: string[]) => spawnSync(process.execPath, [path.join(REPO, 'bin', 'graft'), '-q', ...args], { encoding: 'utf8' });
    expect(single(['evaluate', '--model', MODEL, '--data', DATA, '--out', path.join(root, 'single.json')]).status).toBe(0);
    expect(single(['features', '--weights', MODEL, DATA, '--out', path.join(root, 'single.csv')]).status).toBe(0);
    const merged = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    const whole = JSON.parse(fs.readFileSync(path.join(root, 'single.json'), 'utf8'));
    expect(merged.data.samples).toBe(100);
    expect(merged.counts).toEqual(whole.counts);
    expect(merged.metrics).toEqual(whole.metrics);
    expectSameFeatures(readFeatures(path.join(out, 'features.csv')), readFeatures(path.join(root, 'single.csv')));
  });
});
