/**
 * `graft export --web` without a browser: the page's image preparation (web/graft-pixels.js, loaded here under
 * Node) against graft's own sharp path and preprocessPixels, tfjs-format weight quantization against tfjs's own
 * decoder, the site's files, the argument errors, and the static server. The browser itself is
 * test/web-browser.test.ts.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PLAIN_PLAN, renderImage } from '../src/data/image';
import { GraftError } from '../src/errors';
import { loadModelFolder } from '../src/io/model-folder';
import { PREPROCESS_MODES, preprocessPixels } from '../src/data/preprocess';
import { createRng } from '../src/util/rng';
import { exportWebPage } from '../src/web/export-web';
import { float16Bits, quantizeUint8, quantizeWeights } from '../src/web/quantize';
import { serveStatic } from '../src/web/serve';
import { runCli } from './helpers/run-cli';
import { tmpDir } from './helpers/tmp';

const graftPixels = require('../web/graft-pixels.js');

const MODEL = path.join(__dirname, '..', 'models', 'fashion-mnist-0-4');
const tmp = tmpDir('graft-web-export-');

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = createRng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rng.next() * 256));
}

/** An image with smooth structure and noise, so resampling differences show (RGBA, alpha opaque unless asked). */
function photoLike(width: number, height: number, seed: number, alpha = false): Uint8Array {
  const rng = createRng(seed);
  const d = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) d[(y * width + x) * 4 + c] = Math.max(0, Math.min(255, Math.round(128 + 100 * Math.sin((x * (c + 1)) / 7 + y / 5) + (rng.next() - 0.5) * 60)));
      d[(y * width + x) * 4 + 3] = alpha ? Math.floor(rng.next() * 256) : 255;
    }
  }
  return d;
}

describe("the page's image preparation (graft-pixels.js) against graft in Node", () => {
  test('knows the same preprocessing modes', () => {
    expect([...graftPixels.MODES].sort()).toEqual([...PREPROCESS_MODES].sort());
  });

  test.each(PREPROCESS_MODES.flatMap((mode) => [1, 3].map((channels) => [mode, channels] as const)))('%s on %i channel(s) equals preprocessPixels exactly', (mode, channels) => {
    const bytes = randomBytes(30 * channels, 3);
    const page: Float32Array = graftPixels.preprocess(bytes, channels, mode);
    expect(Array.from(page)).toEqual(Array.from(preprocessPixels(Float32Array.from(bytes), channels, mode)));
  });

  test('an unknown mode is refused, naming the known ones', () => {
    expect(() => graftPixels.preprocess(new Uint8Array(3), 3, 'mean')).toThrow(/caffe, tf, torch, none, unit/);
  });

  test('transparency flattened onto white and RGB or luma grey at the model size are byte-exact with sharp', async () => {
    const [w, h] = [37, 23];
    const rgba = photoLike(w, h, 5, true);
    // Grey and near-grey pixels are where a double-precision luma truncates a level low.
    for (let i = 0; i < 256; i++) rgba.set([i, i, i, 255], i * 4);
    const raw = { data: rgba, width: w, height: h, channels: 4 as const };
    const rgb = graftPixels.resizeLinear(graftPixels.flattenOnWhite(rgba), w, h, 3, w, h);
    expect(Array.from(rgb)).toEqual(Array.from(await renderImage(raw, PLAIN_PLAN, [h, w, 3])));
    expect(Array.from(graftPixels.toGrey(rgb))).toEqual(Array.from(await renderImage(raw, PLAIN_PLAN, [h, w, 1])));
    const input: Float32Array = graftPixels.modelInput(rgba, w, h, [h, w, 1], 'torch');
    expect(Array.from(input)).toEqual(Array.from(preprocessPixels(Float32Array.from(await renderImage(raw, PLAIN_PLAN, [h, w, 1])), 1, 'torch')));
  });

  test.each([
    [64, 48, 32, 32],
    [100, 80, 28, 28],
    [57, 91, 32, 32],
    [300, 200, 64, 64],
    [20, 16, 32, 32],
    [224, 224, 150, 150],
  ])('resizing %ix%i to %ix%i stays within 2 levels of sharp (0.25 on average)', async (w, h, ow, oh) => {
    const rgba = photoLike(w, h, w * h);
    const node = await renderImage({ data: rgba, width: w, height: h, channels: 4 }, PLAIN_PLAN, [oh, ow, 3]);
    const page: Uint8Array = graftPixels.resizeLinear(graftPixels.flattenOnWhite(rgba), w, h, 3, ow, oh);
    let max = 0;
    let sum = 0;
    node.forEach((v, i) => {
      const d = Math.abs(v - page[i]);
      max = Math.max(max, d);
      sum += d;
    });
    expect(max).toBeLessThanOrEqual(2);
    expect(sum / node.length).toBeLessThanOrEqual(0.25);
  });
});

describe('weight quantization in the tfjs format', () => {
  test('float16 bits round to nearest even, with subnormals, overflow and NaN', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [2 ** -24, 0x0001],
      [2 ** -26, 0x0000],
      [3 * 2 ** -25, 0x0002],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [-0, 0x8000],
      [Infinity, 0x7c00],
    ];
    for (const [value, bits] of cases) expect([value, float16Bits(value)]).toEqual([value, bits]);
    expect(float16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(float16Bits(NaN) & 0x3ff).not.toBe(0);
  });

  test("tfjs's own decoder reads graft's uint8 and float16 weights back within the format's precision", () => {
    const rng = createRng(9);
    const kernel = Float32Array.from({ length: 200 }, () => rng.next() * 3 - 1);
    kernel[17] = 0;
    const specs: tf.io.WeightsManifestEntry[] = [
      { name: 'k', shape: [10, 20], dtype: 'float32' },
      { name: 'steps', shape: [3], dtype: 'int32' },
      { name: 'flat', shape: [4], dtype: 'float32' },
    ];
    const data = new Uint8Array(200 * 4 + 3 * 4 + 4 * 4);
    data.set(new Uint8Array(kernel.buffer), 0);
    data.set(new Uint8Array(Int32Array.from([7, -8, 9]).buffer), 800);
    data.set(new Uint8Array(Float32Array.from([0.25, 0.25, 0.25, 0.25]).buffer), 812);
    for (const dtype of ['uint8', 'float16'] as const) {
      const q = quantizeWeights(specs, data.buffer, dtype);
      expect(q.data.byteLength).toBe((dtype === 'uint8' ? 204 : 408) + 12);
      expect(q.specs[1]).toEqual(specs[1]);
      const decoded = tf.io.decodeWeights(q.data.slice().buffer, q.specs);
      const k = decoded.k.dataSync() as Float32Array;
      const scale = q.specs[0].quantization!.scale ?? 0;
      const bound = dtype === 'uint8' ? scale / 2 + 1e-6 : 2 * 2 ** -11;
      let worst = 0;
      kernel.forEach((v, i) => (worst = Math.max(worst, Math.abs(k[i] - v))));
      expect(worst).toBeLessThanOrEqual(bound);
      expect(worst).toBeGreaterThan(0);
      expect(k[17]).toBe(0);
      expect(Array.from(decoded.steps.dataSync())).toEqual([7, -8, 9]);
      expect(Array.from(decoded.flat.dataSync())).toEqual([0.25, 0.25, 0.25, 0.25]);
      tf.dispose(Object.values(decoded));
    }
  });

  test('uint8 keeps zero exact by nudging the range, as the converter does', () => {
    const q = quantizeUint8(Float32Array.from([-0.3, 0, 0.9, 0.45]));
    expect(q.min + 0 * q.scale).toBeCloseTo(-q.data[1] * q.scale, 12);
    expect(q.data[1] * q.scale + q.min).toBeCloseTo(0, 12);
    expect(Array.from(quantizeUint8(Float32Array.from([2, 2])).data)).toEqual([0, 0]);
  });

  test('an already quantized manifest is refused', () => {
    const specs: tf.io.WeightsManifestEntry[] = [{ name: 'k', shape: [1], dtype: 'float32', quantization: { dtype: 'float16' } }];
    expect(() => quantizeWeights(specs, new ArrayBuffer(4), 'uint8')).toThrow(GraftError);
  });
});

describe('exportWebPage', () => {
  test('writes the page, the stock tfjs bundles and the model folder byte for byte', async () => {
    const out = path.join(tmp, 'site');
    const result = await exportWebPage(MODEL, { out });
    const paths = result.files.map((f) => f.path).sort();
    expect(paths).toEqual(
      [
        'graft-page.js', 'graft-pixels.js', 'index.html', 'style.css',
        'model/graft.json', 'model/group1-shard1of1.bin', 'model/model.json',
        'tfjs/tf-backend-wasm.min.js', 'tfjs/tf.min.js', 'tfjs/tfjs-backend-wasm-simd.wasm', 'tfjs/tfjs-backend-wasm-threaded-simd.wasm', 'tfjs/tfjs-backend-wasm.wasm',
      ].sort(),
    );
    for (const f of ['graft.json', 'group1-shard1of1.bin']) expect(fs.readFileSync(path.join(out, 'model', f)).equals(fs.readFileSync(path.join(MODEL, f)))).toBe(true);
    const bundle = require.resolve('@tensorflow/tfjs/dist/tf.min.js');
    expect(fs.readFileSync(path.join(out, 'tfjs', 'tf.min.js')).equals(fs.readFileSync(bundle))).toBe(true);
    for (const f of result.files) expect(fs.statSync(path.join(out, f.path)).size).toBe(f.bytes);
    // No CDN: every script the page loads is in the site.
    const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    for (const src of html.match(/src="[^"]+"/g)!.map((s) => s.slice(5, -1))) expect(fs.existsSync(path.join(out, src))).toBe(true);
    expect(html).not.toMatch(/https?:\/\/(?!www\.tensorflow\.org)/);
  });

  test('--quantize writes tfjs-format weights that stock tfjs and graft both load, replacing the earlier export', async () => {
    const out = path.join(tmp, 'site-q');
    await exportWebPage(MODEL, { out });
    const original = await loadModelFolder(MODEL);
    const x = tf.tidy(() => tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 3));
    const expected = tf.tidy(() => original.model.predict(x) as tf.Tensor);
    for (const dtype of ['uint8', 'float16'] as const) {
      const result = await exportWebPage(MODEL, { out, quantize: dtype });
      expect(result.weightBytes.site).toBeLessThan(result.weightBytes.original / (dtype === 'uint8' ? 3.9 : 1.9));
      const manifest = JSON.parse(fs.readFileSync(path.join(out, 'model', 'model.json'), 'utf8')).weightsManifest;
      expect(manifest[0].weights.every((w: tf.io.WeightsManifestEntry) => w.quantization?.dtype === dtype)).toBe(true);
      const loaded = await loadModelFolder(path.join(out, 'model'));
      const y = tf.tidy(() => loaded.model.predict(x) as tf.Tensor);
      const diff = tf.tidy(() => y.sub(expected).abs().max().dataSync()[0]);
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThan(dtype === 'uint8' ? 0.05 : 0.005);
      tf.dispose([y]);
      loaded.model.dispose();
    }
    tf.dispose([x, expected]);
    original.model.dispose();
  });

  test.each([
    ['a missing model folder', () => ({ model: path.join(tmp, 'nope'), out: path.join(tmp, 'e1') }), /model folder .*nope does not exist/],
    ['a file as the model folder', () => ({ model: path.join(MODEL, 'graft.json'), out: path.join(tmp, 'e2') }), /is a file, not a model folder/],
    ['--out pointing at a file', () => ({ model: MODEL, out: path.join(MODEL, 'model.json') }), /--out .* is a file/],
    ['--out the model folder', () => ({ model: MODEL, out: MODEL }), /is the model folder itself/],
    ['--out a folder with other files', () => ({ model: MODEL, out: path.dirname(MODEL) }), /folder with other files/],
    ['a bad --quantize', () => ({ model: MODEL, out: path.join(tmp, 'e3'), quantize: 'int4' }), /--quantize must be one of uint8, float16; received "int4"/],
  ])('%s is a one-line GraftError before anything is written', async (_what, args, message) => {
    const { model, out, quantize } = args() as { model: string; out: string; quantize?: string };
    const snapshot = () => {
      const stat = fs.statSync(out, { throwIfNoEntry: false });
      return !stat ? null : stat.isDirectory() ? fs.readdirSync(out).sort() : fs.readFileSync(out).toString('base64');
    };
    const before = snapshot();
    const err = await exportWebPage(model, { out, quantize }).catch((e) => e);
    expect(err).toBeInstanceOf(GraftError);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
    expect(snapshot()).toEqual(before);
  });

  test('the CLI: export --web prints the files and how to serve them; misuse is a one-line error', async () => {
    const out = path.join(tmp, 'cli-site');
    const ok = await runCli('export', '--web', MODEL, '--out', out, '--quantize', 'float16');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/wrote .*cli-site: 12 files/);
    expect(ok.out).toMatch(/as float16/);
    expect(ok.out).toContain(`graft serve ${out}`);
    for (const [args, message] of [
      [['export', '--web', MODEL], /needs --out <folder>/],
      [['export', '--onnx', MODEL, '--quantize', 'uint8'], /--quantize applies to --web only/],
      [['export', '--out', out], /exactly one of --onnx .* or --web/],
      [['export', '--web', MODEL, '--onnx', MODEL, '--out', out], /exactly one of/],
    ] as const) {
      const r = await runCli(...args);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(message);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('serveStatic', () => {
  function get(url: string, rawPath?: string): Promise<{ status: number; type?: string; location?: string; body: string }> {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      http
        .get({ host: u.hostname, port: u.port, path: rawPath ?? u.pathname }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], location: res.headers.location, body }));
        })
        .on('error', reject);
    });
  }

  test('serves the site on loopback with the right types, and nothing outside it', async () => {
    const out = path.join(tmp, 'served');
    await exportWebPage(MODEL, { out });
    const server = await serveStatic(out, { port: 0 });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const index = await get(server.url);
      expect([index.status, index.type]).toEqual([200, 'text/html; charset=utf-8']);
      expect(index.body).toContain('graft-pixels.js');
      expect((await get(server.url + 'tfjs/tfjs-backend-wasm-simd.wasm')).type).toBe('application/wasm');
      expect((await get(server.url + 'model/graft.json')).body).toBe(fs.readFileSync(path.join(MODEL, 'graft.json'), 'utf8'));
      expect((await get(server.url + 'missing.js')).status).toBe(404);
      // A folder without its slash is redirected, so the page's relative links resolve inside it.
      const moved = await get(server.url + 'model');
      expect([moved.status, moved.location]).toEqual([301, '/model/']);
      // An encoded slash survives URL normalisation and decodes to a path out of the root.
      expect((await get(server.url, '/..%2f..%2fpackage.json')).status).toBe(403);
      const busy = await serveStatic(out, { port: Number(new URL(server.url).port) }).catch((e) => e);
      expect(busy).toBeInstanceOf(GraftError);
      expect(busy.message).toMatch(/is in use; pass another --port/);
    } finally {
      await server.close();
    }
    await expect(serveStatic(path.join(out, 'index.html'))).rejects.toThrow(/is a file; pass the folder/);
  });
});
