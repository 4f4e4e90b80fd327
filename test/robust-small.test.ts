/**
 * Operator robustness (issue 15 item 11, the smaller things): a damaged model folder reports the damage first, the
 * HTML report embeds every mistake thumbnail of ordinary photos, the lr-find plot names its minimum/10 marker, and
 * the top-k card only shows when k is below the class count.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { buildReport, confusionMatrix, reportHtml } from '../src/metrics';
import { mistakeThumbnails } from '../src/eval';
import * as plot from '../src/train/plot';
import { lrFind } from '../src/engine/training';
import { initBackend } from '../src/backend';
import { tmpDir } from './helpers/tmp';
import { tinyDataset } from './helpers/tiny-data';
import { runCli as graft } from './helpers/run-cli';

const root = tmpDir('graft-robust-small-');
const MODEL = path.join(__dirname, '..', 'models', 'fashion-mnist-0-4');
const IMAGE = path.join(__dirname, '..', 'datasets', 'fashion-mnist-0-4', 'train', '0-T-shirt_top');

test('a damaged model folder: the real error alone, no engine-fallback line before it', async () => {
  const broken = path.join(root, 'broken');
  fs.cpSync(MODEL, broken, { recursive: true });
  fs.writeFileSync(path.join(broken, 'model.json'), '{bad');
  const image = path.join(IMAGE, fs.readdirSync(IMAGE)[0]);
  for (const args of [['predict', '--model', broken, image], ['evaluate', '--model', broken, '--data', IMAGE + '/..']]) {
    // Not --quiet: a fallback notice is exactly what must not come first.
    const r = await graft('--backend', 'wasm', ...args);
    const err = r.err.split('\n').filter((l) => !/^graft: using backend|^evaluate: checking/.test(l)).join('\n');
    expect(err).toMatch(/^graft: .*broken\/model\.json is not valid JSON \(.*\); restore the folder from a checkpoint\.\n$/);
    expect(r.code).toBe(1);
  }
  const truncated = path.join(root, 'truncated');
  fs.cpSync(MODEL, truncated, { recursive: true });
  const shard = path.join(truncated, 'group1-shard1of1.bin');
  fs.truncateSync(shard, fs.statSync(shard).size - 100);
  const r = await graft('--backend', 'wasm', 'predict', '--model', truncated, image);
  expect(r.err.split('\n').filter((l) => !l.startsWith('graft: using backend')).join('\n')).toMatch(/^graft: .*truncated: weight files hold \d+ bytes but model\.json describes \d+; the folder is damaged, restore it\.\n$/);
});

test('mistake thumbnails of ordinary photos all fit the page budget (JPEG, scaled down until they fit)', async () => {
  // Photo-like 640x480 images: smooth gradients plus sensor noise, which PNG cannot squeeze under 48 KiB at 150 px.
  const mistakes = [];
  for (let i = 0; i < 3; i++) {
    const raw = Buffer.alloc(640 * 480 * 3);
    for (let p = 0; p < 640 * 480; p++) {
      const x = p % 640;
      const y = Math.floor(p / 640);
      for (let c = 0; c < 3; c++) raw[p * 3 + c] = Math.max(0, Math.min(255, (x * (c + 1) + y * (3 - c) + i * 40) % 256 + ((p * 7919 + c * 104729 + i) % 61) - 30));
    }
    const file = path.join(root, `photo${i}.jpg`);
    await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 92 }).toFile(file);
    mistakes.push({ source: file, label: 'a', prediction: 'b', confidence: 0.9, trueScore: 0.1, loss: 2.3 });
  }
  const thumbs = await mistakeThumbnails(mistakes);
  expect(Object.keys(thumbs)).toHaveLength(3);
  for (const uri of Object.values(thumbs)) {
    expect(uri.startsWith('data:image/jpeg;base64,')).toBe(true);
    expect(Buffer.from(uri.split(',')[1], 'base64').byteLength).toBeLessThanOrEqual(48 * 1024);
  }
  // A tight budget shrinks the picture instead of dropping it.
  const tight = await mistakeThumbnails(mistakes.slice(0, 1), { maxBytes: 3000 });
  const small = Buffer.from(Object.values(tight)[0].split(',')[1], 'base64');
  expect(small.byteLength).toBeLessThanOrEqual(3000);
  expect((await sharp(small).metadata()).width).toBeLessThan(150);
});

test('the top-k card shows only when k is below the number of classes', () => {
  const make = (classes: number) => {
    const labels = Array.from({ length: classes }, (_, i) => `c${i}`);
    const yTrue = labels.map((_, i) => i);
    return reportHtml(
      buildReport({
        model: null as never,
        engine: 'test',
        data: { spec: 'data', samples: classes, skipped: 0, shard: null },
        settings: { tta: 'none', topK: 5, mistakes: 0, zeroDivision: 'warn' },
        throughput: { seconds: 1, imagesPerSecond: classes },
        counts: { confusion: confusionMatrix(yTrue, yTrue, labels), topK: [1, 2, 3, 4, 5].map((k) => ({ k, hits: classes })) },
        mistakes: [],
      }),
    );
  };
  expect(make(5)).not.toContain('top-5 accuracy');
  expect(make(6)).toContain('top-5 accuracy');
});

test('the lr-find plot labels the minimum/10 marker as such', async () => {
  await initBackend({ backend: 'wasm', log: null });
  const data = tinyDataset(path.join(root, 'lr-data'));
  const chart = jest.spyOn(plot, 'chartSvg');
  const result = await lrFind({ data, arch: 'simple_cnn', weights: null, batchSize: 4, steps: 6, plot: path.join(root, 'lr.png'), log: null });
  const markers = chart.mock.calls[0][0][0].markers!.map((m) => m.label);
  expect(markers).toEqual([
    `valley ${result.suggestions.valley.toExponential(1)}`,
    `steepest ${result.suggestions.steepest.toExponential(1)}`,
    `minimum/10 ${result.suggestions.minimum.toExponential(1)}`,
  ]);
  chart.mockRestore();
});
