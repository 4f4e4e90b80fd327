/**
 * Bench section `evaluate`:
 * 1. `evaluate` throughput and memory on the 10,000 Fashion-MNIST test images (IDX, from the Debian package) with a
 *    small CNN, per engine: images/s, and RSS and tensor count at the start and end (memory stays flat).
 * 2. Scoring 1,000,000 labels over 10 classes: graft (confusion matrix, metrics, text table) against
 *    scikit-learn's `classification_report` on the same labels, with the largest difference between them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BenchSection } from './sections';
import { initBackend } from '../src/backend';
import { saveModelFolder } from '../src/io/model-folder';
import { ENGINES } from '../src/engine';
import { evaluate } from '../src/eval';
import { classificationMetrics, confusionMatrix, formatClassificationReport } from '../src/metrics';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR } from '../src/data/fashion-mnist';
import { createRng } from '../src/util/rng';

const PY = '/usr/bin/python3';
const LABELS = 1_000_000;

/** The CNN being run: two convolutions and a dense head, seeded weights (speed does not depend on them). */
function smallCnn(): tf.LayersModel {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const input = tf.input({ shape: [28, 28, 1] });
  let x = tf.layers.conv2d({ name: 'c1', filters: 32, kernelSize: 3, activation: 'relu', kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ name: 'p1', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'c2', filters: 64, kernelSize: 3, activation: 'relu', kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'predictions', units: 10, activation: 'softmax', kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

async function throughputTable(dir: string): Promise<string[]> {
  const modelDir = path.join(dir, 'model');
  const model = smallCnn();
  await saveModelFolder(modelDir, model, {
    architecture: 'custom',
    inputShape: [28, 28, 1],
    preprocessing: 'unit',
    classNames: FASHION_MNIST_CLASSES,
    outputActivation: 'softmax',
    groups: [{ name: 'all', layers: ['c1', 'p1', 'c2', 'gap', 'predictions'] }],
  });
  model.dispose();
  const data = path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz');
  const rows = ['| engine | images | images/s | RSS start → end (MiB) | tensors start → end |', '|---|---:|---:|---:|---:|'];
  for (const engine of ENGINES) {
    const why = await engine.unavailable();
    if (why) {
      rows.push(`| ${engine.name} | – | unavailable: ${why} | | |`);
      continue;
    }
    const r = await evaluate({ model: modelDir, data, engine: engine.name, batchSize: 64, log: null });
    const m = r.resources!;
    rows.push(`| ${r.engine} | ${r.data.samples} | ${r.throughput.imagesPerSecond.toFixed(0)} | ${m.rssStartMiB.toFixed(0)} → ${m.rssEndMiB.toFixed(0)} | ${m.tensorsStart} → ${m.tensorsEnd} |`);
  }
  return rows;
}

async function metricsTable(dir: string): Promise<string[]> {
  const rng = createRng(7);
  const yTrue = Int32Array.from({ length: LABELS }, () => rng.int(10));
  const yPred = yTrue.map((y) => (rng.chance(0.7) ? y : rng.int(10)));
  const names = FASHION_MNIST_CLASSES;
  const t0 = performance.now();
  const m = classificationMetrics(confusionMatrix(yTrue, yPred, names));
  const text = formatClassificationReport(m, { digits: 6, microIsAccuracy: true });
  const graftMs = performance.now() - t0;
  const file = path.join(dir, 'labels.json');
  fs.writeFileSync(file, JSON.stringify({ yTrue: Array.from(yTrue), yPred: Array.from(yPred), names }));
  const py = spawnSync(PY, ['-c', `
import json, sys, time
import numpy as np
from sklearn.metrics import classification_report
d = json.load(open(sys.argv[1]))
yt, yp = np.array(d['yTrue']), np.array(d['yPred'])
t = time.time()
r = classification_report(yt, yp, target_names=d['names'], digits=6, output_dict=True)
ms = (time.time() - t) * 1000
print(json.dumps({'ms': ms, 'report': r}))
`, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (py.status !== 0) return [`scikit-learn comparison skipped: ${py.stderr.split('\n').filter(Boolean).pop()}`];
  const sk = JSON.parse(py.stdout);
  let worst = 0;
  m.classes.forEach((c) => {
    const s = sk.report[c.label];
    worst = Math.max(worst, Math.abs(c.precision - s.precision), Math.abs(c.recall - s.recall), Math.abs(c.f1 - s['f1-score']));
  });
  worst = Math.max(worst, Math.abs(m.accuracy - sk.report.accuracy), Math.abs(m.averages.macro.f1 - sk.report['macro avg']['f1-score']));
  return [
    `| scoring ${LABELS.toLocaleString('en')} labels, 10 classes | ms |`,
    '|---|---:|',
    `| graft: confusionMatrix + classificationMetrics + text table | ${graftMs.toFixed(1)} |`,
    `| scikit-learn ${spawnSync(PY, ['-c', 'import sklearn; print(sklearn.__version__)'], { encoding: 'utf8' }).stdout.trim()} classification_report | ${sk.ms.toFixed(1)} |`,
    '',
    `Largest difference between graft's and scikit-learn's per-class precision / recall / F1, accuracy and macro F1: ${worst.toExponential(2)} (text table lines: ${text.split('\n').length}).`,
  ];
}

/** The `evaluate` bench section. */
export const evaluateSection: BenchSection = {
  name: 'evaluate',
  async run() {
    await initBackend({ backend: 'auto', log: null });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-bench-eval-'));
    try {
      const through = await throughputTable(dir);
      const metrics = await metricsTable(dir);
      return [
        '## evaluate',
        '',
        `graft evaluate on the 10,000 Fashion-MNIST test images (28x28 grey, IDX) with a small CNN (2 conv + dense), batch 64, ${tf.getBackend()} backend; RSS and tensor counts are taken at the start and end of the streaming loop.`,
        '',
        ...through,
        '',
        ...metrics,
        '',
      ].join('\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};
