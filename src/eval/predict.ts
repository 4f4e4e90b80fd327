/**
 * `predict`: class scores for unlabelled images (files or folders), batch by batch, with the model's own input size
 * and preprocessing and optional test-time augmentation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraftError, finiteNumber, positiveInt, rejectUnknownKeys } from '../errors';
import { readGraftMeta } from '../io/graft-json';
import { preprocessPixels } from '../data/preprocess';
import { IMAGE_EXTENSIONS } from '../data/dataset';
import { UnusableFile, loadImagesSkipping, reportUnusable } from '../data/load-many';
import { Predictor } from '../engine/predictor';
import { createPredictor } from '../engine';
import { predictedIndex, topClasses } from '../metrics';
import { TtaMode, predictBatch, ttaMode } from './tta';
import { csvField, formatTopK } from './predictions-csv';

/** One image's prediction. */
export interface Prediction {
  /** The image file. */
  source: string;
  /** Predicted class name. */
  prediction: string;
  /** Its score. */
  confidence: number;
  /** The k best classes with scores, best first. */
  top: { label: string; score: number }[];
  /** Sigmoid (multi-label) heads with more than two classes: every class scored above the threshold. */
  labels?: string[];
}

/** Options for `predict`. */
export interface PredictOptions {
  /** Model folder. */
  model: string;
  /** Image files and folders (searched recursively for images). */
  inputs: string[];
  /** Classes listed per image (default min(5, classes)). */
  topK?: number;
  /** Test-time augmentation: `none` (default), `flip`, `flip+crop`, or true for `flip`. */
  tta?: TtaMode | boolean;
  /** Images per forward pass (default 32). */
  batchSize?: number;
  /** Sigmoid (multi-label) heads: a label applies when its score is above this (default 0.5). */
  threshold?: number;
  /** Engine (`auto`, `onnx`, `tfjs`). */
  engine?: string;
  /** Threads the engine may use. */
  threads?: number;
  /** Notices; default stderr, null silences. */
  log?: ((line: string) => void) | null;
  /** Use this open predictor instead of loading the model (it is not disposed). */
  predictor?: Predictor;
  /** An unreadable image is an error (default: it is skipped and named in one warning). */
  strict?: boolean;
}

const PREDICT_KEYS = ['model', 'inputs', 'topK', 'tta', 'batchSize', 'threshold', 'engine', 'threads', 'log', 'predictor', 'strict'];

/** Expands files and folders into a sorted list of image files; a missing path or an empty folder is an error. */
export function listImageFiles(inputs: readonly string[]): string[] {
  if (inputs.length === 0) throw new GraftError('no images given; pass image files or folders.');
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && !e.name.startsWith('.')) walk(p);
      else if (e.isFile() && IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) out.push(p);
    }
  };
  for (const input of inputs) {
    const stat = fs.statSync(input, { throwIfNoEntry: false });
    if (!stat) throw new GraftError(`${input} does not exist; pass image files or folders.`);
    if (!stat.isDirectory()) {
      out.push(input);
      continue;
    }
    const before = out.length;
    walk(input);
    if (out.length === before) throw new GraftError(`${input} holds no images (${IMAGE_EXTENSIONS.join(', ')}); pass a folder with images.`);
  }
  return out;
}

/** Predicts the class of each image. */
export async function predict(options: PredictOptions): Promise<Prediction[]> {
  rejectUnknownKeys('predict', options, PREDICT_KEYS);
  const meta = options.predictor?.meta ?? readGraftMeta(options.model);
  const classes = meta.classNames.length;
  const topK = Math.min(classes, positiveInt('topK', options.topK ?? Math.min(5, classes)));
  const batchSize = positiveInt('batchSize', options.batchSize ?? 32);
  const tta = ttaMode(options.tta);
  const threshold = options.threshold === undefined ? 0.5 : finiteNumber('threshold', options.threshold, { min: 0, max: 1 });
  const multilabel = meta.outputActivation === 'sigmoid' && classes > 2;
  const files = listImageFiles(options.inputs);
  const [h, w, c] = meta.inputShape;
  const size = h * w * c;
  const predictor = options.predictor ?? (await createPredictor(options.model, { engine: options.engine, threads: options.threads, log: options.log }));
  const results: Prediction[] = [];
  const skipped: UnusableFile[] = [];
  try {
    for (let start = 0; start < files.length; start += batchSize) {
      const loaded = await loadImagesSkipping(files.slice(start, start + batchSize), [h, w, c], skipped);
      if (options.strict && skipped.length) break;
      const chunk = files.slice(start, start + batchSize).filter((_, i) => loaded[i]);
      const images = loaded.filter((img): img is Float32Array => img !== null);
      if (!chunk.length) continue;
      const pixels = new Float32Array(chunk.length * size);
      images.forEach((img, i) => pixels.set(preprocessPixels(img, c, meta.preprocessing), i * size));
      const scores = await predictBatch(predictor, pixels, chunk.length, tta);
      chunk.forEach((source, i) => {
        const offset = i * classes;
        const best = predictedIndex(scores, offset, classes);
        results.push({
          source,
          prediction: meta.classNames[best],
          confidence: scores[offset + best],
          top: topClasses(scores, offset, classes, topK).map((j) => ({ label: meta.classNames[j], score: scores[offset + j] })),
          ...(multilabel ? { labels: meta.classNames.filter((_, j) => scores[offset + j] > threshold) } : {}),
        });
      });
    }
  } finally {
    if (!options.predictor) await predictor.dispose();
  }
  reportUnusable(skipped, { strict: options.strict, log: options.log });
  return results;
}

/**
 * Predictions as CSV: `path,prediction,confidence,top_k` (`top_k` as `name:score;...`, best first), plus `labels`
 * (`a;b`, the classes above the threshold) for multi-label heads.
 */
export function predictionsToCsv(results: readonly Prediction[]): string {
  const multilabel = results.some((r) => r.labels);
  const rows = results.map((r) =>
    [r.source, r.prediction, r.confidence.toFixed(6), formatTopK(r.top), ...(multilabel ? [(r.labels ?? []).join(';')] : [])].map(csvField).join(','),
  );
  return [`path,prediction,confidence,top_k${multilabel ? ',labels' : ''}`, ...rows].join('\n') + '\n';
}
