import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { CLASSES, META, pngFolder, saveColourModel } from './helpers/eval-fixtures';
import { saveModelFolder } from '../src/io/model-folder';
import { ENGINES, Engine, createPredictor } from '../src/engine';
import { alignClasses, classScores, evaluate, mergeReportFiles, predictionsToCsv, parseShard, predict, predictBatch, reportFromPredictions, writeReports } from '../src/eval';
import { classificationMetrics, formatClassificationReport, mergeReports } from '../src/metrics';
import { GraftError } from '../src/errors';
import { tmpDir } from './helpers/tmp';

describe('evaluate, predict and reports on a tiny model', () => {
  const root = tmpDir();
  const modelDir = path.join(root, 'model');
  const dataDir = path.join(root, 'data');
  // These tests are about evaluation, not engines: pin tfjs in this thread (no onnxruntime, no worker threads).
  const quiet = { log: null, engine: 'tfjs', threads: 1 };

  beforeAll(async () => {
    await initBackend({ backend: 'wasm', log: null });
    await saveColourModel(modelDir);
    await pngFolder(dataDir, CLASSES, 7);
  });

  test('shard reports merged equal the whole run, and tensors do not leak', async () => {
    const before = tf.memory().numTensors;
    const whole = await evaluate({ model: modelDir, data: dataDir, batchSize: 4, topK: 2, mistakes: 5, ...quiet });
    expect(tf.memory().numTensors).toBe(before);
    expect(whole.data.samples).toBe(21);
    expect(whole.metrics.samples).toBe(21);
    expect(whole.resources!.tensorsEnd).toBe(whole.resources!.tensorsStart);
    expect(whole.mistakes.length).toBe(5);
    // Predictions are varied (more than one predicted class), so the merge is tested on a non-trivial matrix.
    expect(whole.counts.confusion.matrix[0].length - whole.counts.confusion.matrix.reduce((z, r) => r.map((v, j) => z[j] && v === 0), [true, true, true]).filter(Boolean).length).toBeGreaterThan(1);
    // The report's scores are the scores of its own confusion matrix.
    expect(whole.metrics).toEqual(classificationMetrics(whole.counts.confusion));

    const files: string[] = [];
    for (const i of [3, 1, 2]) {
      const shard = await evaluate({ model: modelDir, data: dataDir, batchSize: 3, topK: 2, mistakes: 5, shard: `${i}/3`, ...quiet });
      expect(shard.data.samples).toBe(7);
      const [file] = await writeReports(shard, { out: path.join(root, `shard${i}.json`), formats: ['json'] });
      files.push(file);
    }
    const merged = mergeReportFiles(files);
    expect(merged.counts).toEqual(whole.counts);
    expect(merged.metrics).toEqual(whole.metrics);
    expect(merged.topK).toEqual(whole.topK);
    expect(merged.data.samples).toBe(21);
    expect(merged.data.mergedShards).toEqual([0, 1, 2]);
    expect(merged.mistakes.map((m) => m.source)).toEqual(whole.mistakes.map((m) => m.source));
    expect(formatClassificationReport(merged.metrics)).toBe(formatClassificationReport(whole.metrics));

    const two = files.slice(0, 2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
    expect(() => mergeReports(two)).toThrow(/shard 2\/3 missing from the merge; pass all 3 shard reports/);
    expect(() => mergeReports([two[0], two[0]])).toThrow(/are both shard 3\/3; pass each shard once/);
  });

  test('engine selection: an explicit engine that cannot load is an error, auto falls back with one notice', async () => {
    const notReached = async () => {
      throw new Error('not reached');
    };
    const missing: Engine = {
      name: 'onnx',
      unavailable: async () => 'onnxruntime-node does not load (npm install onnxruntime-node)',
      predictor: notReached,
      runner: notReached,
    };
    const broken: Engine = { name: 'onnx', unavailable: async () => null, predictor: async () => Promise.reject(new Error('unsupported op Foo\nstack')), runner: notReached };
    const saved = ENGINES.splice(0, ENGINES.length, missing, ...ENGINES.filter((e) => e.name === 'tfjs'));
    const notices: string[] = [];
    const tensors = tf.memory().numTensors;
    try {
      await expect(createPredictor(modelDir, { engine: 'onnx' })).rejects.toThrow(/--engine onnx is not available: onnxruntime-node does not load \(npm install onnxruntime-node\); or use --engine auto\./);
      const p = await createPredictor(modelDir, { threads: 1, log: (l) => notices.push(l) });
      expect(p.engine).toMatch(/^tfjs /);
      await p.dispose();
      ENGINES[0] = broken;
      const q = await createPredictor(modelDir, { threads: 1, log: (l) => notices.push(l) });
      await q.dispose();
      expect(notices).toEqual([
        'graft: onnx engine unavailable (onnxruntime-node does not load (npm install onnxruntime-node)); using tfjs.',
        `graft: onnx engine could not load ${modelDir} (unsupported op Foo); using tfjs.`,
      ]);
      await expect(createPredictor(path.join(root, 'nowhere'), {})).rejects.toThrow(/model folder .*nowhere does not exist/);
      expect(tf.memory().numTensors).toBe(tensors); // opened and disposed predictors leave nothing behind
    } finally {
      ENGINES.splice(0, ENGINES.length, ...saved);
    }
  });

  test('a two-class sigmoid head: the positive label and threshold decide, as counted by hand from the scores', async () => {
    const dir = path.join(root, 'binary-model');
    const input = tf.input({ shape: [8, 8, 3] });
    const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(input) as tf.SymbolicTensor;
    const dense = tf.layers.dense({ name: 'predictions', units: 1, activation: 'sigmoid' });
    const model = tf.model({ inputs: input, outputs: dense.apply(pooled) as tf.SymbolicTensor });
    tf.tidy(() => dense.setWeights([tf.tensor2d([[-8], [0], [8]]), tf.zeros([1])])); // red minus blue
    await saveModelFolder(dir, model, { ...META, classNames: ['blue', 'red'], outputActivation: 'sigmoid', groups: [{ name: 'head', layers: ['pool', 'predictions'] }] });
    model.dispose();
    const data2 = path.join(root, 'two');
    fs.mkdirSync(data2);
    for (const c of ['blue', 'red']) fs.cpSync(path.join(dataDir, c), path.join(data2, c), { recursive: true });
    const scores = await predict({ model: dir, inputs: [data2], ...quiet });
    const pRed = scores.map((r) => r.top.find((t) => t.label === 'red')!.score);
    const truth = scores.map((r) => (r.source.includes(`${path.sep}red${path.sep}`) ? 1 : 0));
    expect(pRed.some((p) => p > 0.5 && p <= 0.8)).toBe(true); // so the two thresholds give different matrices
    for (const threshold of [0.5, 0.8]) {
      const r = await evaluate({ model: dir, data: data2, threshold, ...quiet });
      const pred = pRed.map((p) => (p > threshold ? 1 : 0));
      const tp = pred.filter((p, i) => p === 1 && truth[i] === 1).length;
      expect(r.binary).toMatchObject({ label: 'red', threshold, support: 7 });
      expect(r.binary!.recall).toBeCloseTo(tp / 7, 12);
      expect(r.counts.confusion.matrix[1][1]).toBe(tp);
      expect(r.counts.confusion.matrix[0][1]).toBe(pred.filter((p, i) => p === 1 && truth[i] === 0).length);
    }
    const blue = await evaluate({ model: dir, data: data2, positiveLabel: 'blue', ...quiet });
    expect(blue.binary!.label).toBe('blue');
    await expect(evaluate({ model: modelDir, data: dataDir, positiveLabel: 'red', ...quiet })).rejects.toThrow(/positiveLabel only applies to two-class models; this model has 3 classes/);
  });

  test('a sigmoid head with three classes also gets per-label counts at the threshold', async () => {
    const dir = path.join(root, 'sigmoid-model');
    await saveColourModel(dir, 'sigmoid');
    const scores = await predict({ model: dir, inputs: [dataDir], topK: 3, ...quiet });
    const r = await evaluate({ model: dir, data: dataDir, threshold: 0.5, ...quiet });
    const ml = r.counts.multilabel!;
    CLASSES.forEach((c, j) => {
      const above = scores.map((s) => s.top.find((t) => t.label === c)!.score > 0.5);
      const isC = scores.map((s) => s.source.includes(`${path.sep}${c}${path.sep}`));
      expect(ml.predicted[j]).toBe(above.filter(Boolean).length);
      expect(ml.actual[j]).toBe(7);
      expect(ml.tp[j]).toBe(above.filter((a, i) => a && isC[i]).length);
    });
    expect(r.multilabel!.averages.samples.support).toBe(21);
    expect(new Set(ml.predicted).size).toBeGreaterThan(1); // the threshold is not trivially all or nothing
    // predict lists every label above the threshold for such heads, in the CSV too.
    scores.forEach((p) => expect(p.labels).toEqual(CLASSES.filter((c) => p.top.find((t) => t.label === c)!.score > 0.5)));
    expect(predictionsToCsv(scores.slice(0, 1)).split('\n')[0]).toBe('path,prediction,confidence,top_k,labels');
  });

  test('TTA flip averages the original and mirrored views', async () => {
    const predictor = await createPredictor(modelDir, { engine: 'tfjs', threads: 1 });
    try {
      const pixels = Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => ((i * 37) % 255) / 255);
      const before = tf.memory().numTensors;
      const plain = await predictBatch(predictor, pixels, 2, 'none');
      const flipped = new Float32Array(pixels.length);
      for (let b = 0; b < 2; b++) for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) flipped[((b * 8 + y) * 8 + (7 - x)) * 3 + c] = pixels[((b * 8 + y) * 8 + x) * 3 + c];
      const mirror = await predictBatch(predictor, flipped, 2, 'none');
      const tta = await predictBatch(predictor, pixels, 2, 'flip');
      tta.forEach((v, i) => expect(v).toBeCloseTo((plain[i] + mirror[i]) / 2, 6));
      const crop = await predictBatch(predictor, pixels, 2, 'flip+crop');
      expect(crop.length).toBe(6);
      expect(Math.abs(crop[0] - tta[0])).toBeGreaterThan(0);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      await predictor.dispose();
    }
  });

  test('predictions CSV round-trips through report --predictions, and every format is written', async () => {
    const out = path.join(root, 'full', 'eval.json');
    const csv = path.join(root, 'full', 'eval.predictions.csv');
    const report = await evaluate({ model: modelDir, data: dataDir, batchSize: 8, predictionsCsv: csv, tta: 'flip', ...quiet });
    const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('path,label,prediction,confidence,correct,top_k');
    expect(lines).toHaveLength(22);
    const fromCsv = reportFromPredictions(csv, { model: modelDir });
    expect(fromCsv.counts.confusion).toEqual(report.counts.confusion);
    expect(fromCsv.metrics).toEqual(report.metrics);
    const written = await writeReports(report, { out, formats: ['json', 'md', 'html', 'text'] });
    expect(written.map((f) => path.basename(f)).sort()).toEqual(['eval.confusion.png', 'eval.html', 'eval.json', 'eval.md', 'eval.txt']);
    const html = fs.readFileSync(path.join(root, 'full', 'eval.html'), 'utf8');
    expect(html).not.toMatch(/(src|href)="https?:/);
    expect(html).toContain('<svg');
    if (report.mistakes.length) expect(html).toContain('data:image/jpeg;base64,');
    const png = await sharp(path.join(root, 'full', 'eval.confusion.png')).metadata();
    expect(png.format).toBe('png');
    expect(fs.readdirSync(path.join(root, 'full')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  test('predict labels files and folders with top-k scores', async () => {
    const before = tf.memory().numTensors;
    const results = await predict({ model: modelDir, inputs: [path.join(dataDir, 'red'), path.join(dataDir, 'blue', '00.png')], topK: 2, ...quiet });
    expect(tf.memory().numTensors).toBe(before);
    expect(results).toHaveLength(8);
    for (const r of results) {
      expect(CLASSES).toContain(r.prediction);
      expect(r.top).toHaveLength(2);
      expect(r.top[0].label).toBe(r.prediction);
      expect(r.top[0].score).toBeGreaterThanOrEqual(r.top[1].score);
    }
    await expect(predict({ model: modelDir, inputs: [path.join(root, 'nope')], ...quiet })).rejects.toThrow(/nope does not exist/);
  });

  test('bad input: no graft.json, classes that differ, bad predictions CSVs, bad shards', async () => {
    const bare = path.join(root, 'bare');
    fs.mkdirSync(bare);
    await expect(evaluate({ model: bare, data: dataDir, ...quiet })).rejects.toThrow(/has no graft\.json; it is not a graft model folder/);

    const other = path.join(root, 'other');
    await pngFolder(other, ['blue', 'green', 'purple'], 2);
    const err = await evaluate({ model: modelDir, data: other, ...quiet }).catch((e) => e);
    expect(err).toBeInstanceOf(GraftError);
    expect(err.message).toMatch(/only in the data: purple; only in the model: red/);

    const csv = (name: string, text: string) => {
      const f = path.join(root, name);
      fs.writeFileSync(f, text);
      return f;
    };
    expect(() => reportFromPredictions(csv('a.csv', 'path,truth,prediction\nx.png,red,red\n'))).toThrow(/has no label column \(columns found: path, truth, prediction\)/);
    expect(() => reportFromPredictions(csv('b.csv', 'label,prediction\nred,red\nred,pink\n'), { model: modelDir })).toThrow(/row 3: prediction "pink" is not a known class \(blue, green, red\)/);
    const byIndex = reportFromPredictions(csv('c.csv', 'label,prediction\n0,0\n1,2\n2,2\n'));
    expect(byIndex.counts.confusion.labels).toEqual(['0', '1', '2']);
    expect(byIndex.metrics.accuracy).toBeCloseTo(2 / 3, 12);
    // IDX labels are numbers standing for the model's classes in order; named classes must match by name.
    const meta = { classNames: CLASSES } as never;
    const ds = (kind: string, classNames: string[]) => ({ kind, classNames, root: '', samples: [], skipped: [] }) as never;
    expect(alignClasses(ds('idx', ['0', '1', '2']), meta, [])).toEqual([0, 1, 2]);
    const notes: string[] = [];
    expect(alignClasses(ds('folder', ['red', 'blue']), meta, notes)).toEqual([2, 0]);
    expect(notes).toEqual(['the data has no class green; those classes count as absent (support 0).']);
    expect(() => alignClasses(ds('folder', ['0', '1', '2']), meta, [])).toThrow(/only in the data: 0, 1, 2; only in the model: blue, green, red/);
    // A one-unit sigmoid head scores [1 - p, p] over its two classes.
    expect(Array.from(classScores(Float32Array.from([0.25, 1]), 2, 2))).toEqual([0.75, 0.25, 0, 1]);
    expect(() => classScores(new Float32Array(6), 2, 2)).toThrow(/gives 3 outputs per image but graft.json lists 2 classes/);
    expect(() => parseShard('0/3')).toThrow(/--shard must be i\/n with 1 <= i <= n/);
    await expect(evaluate({ model: modelDir, data: dataDir, tta: 'mirror' as never, ...quiet })).rejects.toThrow(/tta must be one of none, flip, flip\+crop; received "mirror"/);
  });
});
