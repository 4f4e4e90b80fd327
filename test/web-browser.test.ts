/**
 * The page `graft export --web` writes, in a real browser: Debian's Chromium, headless, driven by playwright-core
 * (never a downloaded browser). Images go in through the page's own file input; the scores the page computes must
 * match graft's Node prediction (tfjs engine on wasm) to 1e-4. Two sites: the bundled grey 'unit' model, and an
 * RGB 'caffe' model made here (channel swap and means, transparency flattened). A test double of the page's
 * preprocessing, with one constant wrong, must fail the same comparison. The screenshot is kept in
 * out/test-artifacts/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import type { BrowserContext, Page } from 'playwright-core';
import { initBackend } from '../src/backend';
import { createTfjsPredictor } from '../src/engine/predictor';
import { predict } from '../src/eval/predict';
import { saveModelFolder } from '../src/io/model-folder';
import { exportWebPage } from '../src/web/export-web';
import { StaticServer, serveStatic } from '../src/web/serve';
import { randomizeWeights } from './helpers/onnx-models';
import { tmpDir } from './helpers/tmp';

const CHROMIUM = process.env.GRAFT_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = path.join(__dirname, '..', 'out', 'test-artifacts');
const TOLERANCE = 1e-4;

const tmp = tmpDir('graft-web-browser-');
let server: StaticServer;
let context: BrowserContext;
/** Node's scores per site, by file name, in class order. */
const nodeScores: Record<string, Record<string, number[]>> = {};
const images: Record<string, string[]> = {};

/** A few Fashion-MNIST test images of different classes, at the grey model's 28x28. */
function fashionImages(): string[] {
  const root = path.join(__dirname, '..', 'datasets', 'fashion-mnist-5-9', 'test');
  return fs.readdirSync(root).sort().flatMap((cls) => fs.readdirSync(path.join(root, cls)).sort().slice(0, 2).map((f) => path.join(root, cls, f)));
}

/** A small RGB model with spread-out scores (random weights, damped so softmax does not saturate on caffe inputs). */
async function saveRgbModel(dir: string): Promise<void> {
  const input = tf.input({ shape: [16, 16, 3] });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 6, kernelSize: 3, activation: 'relu' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ name: 'predictions', units: 4, activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x });
  randomizeWeights(model, 7);
  const conv = model.getLayer('conv1');
  tf.tidy(() => conv.setWeights(conv.getWeights().map((w) => w.mul(0.02))));
  await saveModelFolder(dir, model, {
    architecture: 'custom',
    inputShape: [16, 16, 3],
    preprocessing: 'caffe',
    classNames: ['a', 'b', 'c', 'd'],
    outputActivation: 'softmax',
    groups: [{ name: 'head', layers: ['conv1', 'pool', 'predictions'] }],
    weights: null,
  });
  model.dispose();
}

/** 16x16 colour PNGs: smooth gradients with seeded noise, one with fully transparent pixels (flattened to white). */
async function rgbImages(dir: string): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  let seed = 11;
  for (let k = 0; k < 4; k++) {
    const alpha = k === 3;
    const ch = alpha ? 4 : 3;
    const px = Buffer.alloc(16 * 16 * ch);
    for (let p = 0; p < 16 * 16; p++) {
      for (let c = 0; c < 3; c++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        px[p * ch + c] = Math.max(0, Math.min(255, ((p % 16) * (c + 1 + k) * 5 + (p >> 4) * 9 * (3 - c)) % 256 + (seed % 40) - 20));
      }
      if (alpha) px[p * ch + 3] = (p * 7) % 5 === 0 ? 0 : 255;
    }
    const file = path.join(dir, `rgb-${k}.png`);
    await sharp(px, { raw: { width: 16, height: 16, channels: ch } }).png().toFile(file);
    files.push(file);
  }
  return files;
}

/**
 * Node's prediction through graft's predict API, every class's score in class order. The tfjs engine's in-process
 * predictor: the engine would otherwise time the model and may start worker threads, seconds on a loaded machine.
 */
async function nodePrediction(model: string, files: string[]): Promise<Record<string, number[]>> {
  const predictor = await createTfjsPredictor(model);
  const classNames = predictor.meta.classNames;
  const results = await predict({ model, inputs: files, predictor, topK: classNames.length }).finally(() => predictor.dispose());
  return Object.fromEntries(results.map((r) => [path.basename(r.source), classNames.map((c) => r.top.find((t) => t.label === c)!.score)]));
}

/** Loads a site, feeds it `files` through its file input and returns the backend and the scores by file name. */
async function browserScores(site: string, files: string[], options: { pixelsScript?: string; backend?: string } = {}): Promise<{ page: Page; backend: string; scores: Record<string, number[]> }> {
  const page = await context.newPage();
  if (options.pixelsScript !== undefined) {
    const body = options.pixelsScript;
    await page.route('**/graft-pixels.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body }));
  }
  await page.goto(`${server.url}${site}/${options.backend ? `?backend=${options.backend}` : ''}`);
  const backend = await page.evaluate(async () => (await (globalThis as unknown as { graftPage: { ready: Promise<{ backend: string }> } }).graftPage.ready).backend);
  await page.setInputFiles('#files', files);
  await page.waitForFunction((n) => (globalThis as unknown as { graftPage: { results: unknown[] } }).graftPage.results.length >= n, files.length, { timeout: 20000 });
  const results = await page.evaluate(() => (globalThis as unknown as { graftPage: { results: { name: string; scores?: number[]; error?: string }[] } }).graftPage.results);
  const scores: Record<string, number[]> = {};
  for (const r of results) {
    if (r.error) throw new Error(`the page could not classify ${r.name}: ${r.error}`);
    scores[r.name] = r.scores!;
  }
  return { page, backend, scores };
}

/** Largest absolute difference between the page's and Node's scores over every image and class. */
function maxDifference(browser: Record<string, number[]>, node: Record<string, number[]>): number {
  let worst = 0;
  for (const [name, expected] of Object.entries(node)) {
    const actual = browser[name];
    if (!actual || actual.length !== expected.length) return Infinity;
    expected.forEach((e, i) => (worst = Math.max(worst, Math.abs(actual[i] - e))));
  }
  return worst;
}

const PIXELS_JS = fs.readFileSync(path.join(__dirname, '..', 'web', 'graft-pixels.js'), 'utf8');

/** The page's preprocessing with one constant wrong (what a drifted copy of graft's preprocessing would look like). */
function brokenPixels(from: string, to: string): string {
  const broken = PIXELS_JS.replace(from, to);
  if (broken === PIXELS_JS) throw new Error(`graft-pixels.js no longer contains ${from}; update the test double`);
  return broken;
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}; the browser test needs it: apt-get update && apt-get install -y chromium (or set GRAFT_CHROMIUM to a Chromium binary)`);
  }
  await initBackend({ backend: 'wasm', log: null });
  const rgbModel = path.join(tmp, 'rgb-model');
  await saveRgbModel(rgbModel);
  images.grey = fashionImages();
  images.rgb = await rgbImages(path.join(tmp, 'rgb-images'));
  const models: Record<string, string> = { grey: path.join(__dirname, '..', 'models', 'fashion-mnist-0-4'), rgb: rgbModel };
  for (const site of ['grey', 'rgb']) {
    await exportWebPage(models[site], { out: path.join(tmp, 'sites', site) });
    nodeScores[site] = await nodePrediction(models[site], images[site]);
  }
  server = await serveStatic(path.join(tmp, 'sites'), { port: 0 });
  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(os.tmpdir(), 'graft-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
}, 60000);

afterAll(async () => {
  await context?.close();
  await server?.close();
});

test('the grey unit-mode model scores dataset images in the browser as graft does in Node (1e-4), screenshot kept', async () => {
  const { page, backend, scores } = await browserScores('grey', images.grey);
  expect(['webgl', 'wasm', 'cpu']).toContain(backend);
  expect(Object.keys(scores).sort()).toEqual(images.grey.map((f) => path.basename(f)).sort());
  expect(maxDifference(scores, nodeScores.grey)).toBeLessThanOrEqual(TOLERANCE);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-page.png'), fullPage: true });
  expect(fs.statSync(path.join(ARTIFACTS, 'web-page.png')).size).toBeGreaterThan(10000);
  process.stdout.write(`web page: tfjs ${backend} backend in headless Chromium; screenshot ${path.join(ARTIFACTS, 'web-page.png')}\n`);
  await page.close();
});

// Software WebGL compiles its shaders for seconds on a loaded machine: with the slow tests only.
const slowTest = process.env.GRAFT_SLOW_TESTS === '1' ? test : test.skip;

slowTest('on the webgl backend too (software WebGL here), the grey model matches Node (1e-4)', async () => {
  const { page, backend, scores } = await browserScores('grey', images.grey.slice(0, 3), { backend: 'webgl' });
  expect(backend).toBe('webgl');
  expect(maxDifference(scores, Object.fromEntries(Object.entries(nodeScores.grey).filter(([name]) => name in scores)))).toBeLessThanOrEqual(TOLERANCE);
  expect(Object.keys(scores)).toHaveLength(3);
  await page.close();
});

test('the RGB caffe-mode model (channel swap, means, transparency) matches Node in the browser (1e-4)', async () => {
  const { scores } = await browserScores('rgb', images.rgb);
  expect(maxDifference(scores, nodeScores.rgb)).toBeLessThanOrEqual(TOLERANCE);
});

test('a page whose preprocessing is wrong fails the comparison (test doubles of graft-pixels.js)', async () => {
  const [grey, rgb] = await Promise.all([
    // 'unit' scaling by 1/256 instead of 1/255: off by 0.4 %.
    browserScores('grey', images.grey, { pixelsScript: brokenPixels("mode === 'unit' ? 1 / 255", "mode === 'unit' ? 1 / 256") }),
    // caffe means in RGB order instead of BGR.
    browserScores('rgb', images.rgb, { pixelsScript: brokenPixels('[103.939, 116.779, 123.68]', '[123.68, 116.779, 103.939]') }),
  ]);
  expect(maxDifference(grey.scores, nodeScores.grey)).toBeGreaterThan(TOLERANCE);
  expect(maxDifference(rgb.scores, nodeScores.rgb)).toBeGreaterThan(TOLERANCE);
});
