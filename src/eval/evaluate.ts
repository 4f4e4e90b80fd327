/**
 * `evaluate`: streams a labelled dataset through a saved model in bounded memory (batch by batch, through the data
 * module's `batches`), using the model's own input size and preprocessing, and returns the full report. Only
 * counts, a bounded list of the worst mistakes and (optionally) a staged per-sample CSV are kept.
 */
import { GraftError, finiteNumber, positiveInt, rejectUnknownKeys } from '../errors';
import { parseShard, shardItems } from '../util/shard';
import { readGraftMeta, GraftMeta } from '../io/graft-json';
import { Dataset, VerifyMode, openDataset } from '../data/dataset';
import { BatchStats, rawBatches } from '../data/raw-batches';
import { Predictor } from '../engine/predictor';
import { createPredictor } from '../engine';
import {
  EvaluationReport,
  EvaluationSettings,
  Mistake,
  addMultilabelSample,
  addToConfusion,
  buildReport,
  compareMistakes,
  emptyConfusionMatrix,
  emptyMultilabelCounts,
  predictedIndex,
  rankOf,
  zeroDivisionOption,
  ZeroDivision,
} from '../metrics';
import { TtaMode, predictBatch, ttaMode } from './tta';
import { StagedCsvWriter, topKCell } from './predictions-csv';

/** Progress of a running evaluation. */
export interface EvaluateProgress {
  /** Images scored so far. */
  done: number;
  /** Images to score. */
  total: number;
  /** Seconds since the first batch was requested. */
  seconds: number;
  /** Throughput so far. */
  imagesPerSecond: number;
}

/** Options for `evaluate`. */
export interface EvaluateOptions {
  /** Model folder (with graft.json). */
  model: string;
  /** Image folder, CSV manifest or IDX files, or an already opened dataset. */
  data: string | Dataset;
  /** Images per forward pass (default: by input size, enough to keep every core busy; see `defaultBatchSize`). */
  batchSize?: number;
  /** Test-time augmentation: `none` (default), `flip`, `flip+crop`, or true for `flip`. */
  tta?: TtaMode | boolean;
  /** Report top-1..top-k accuracy (default min(5, classes)). */
  topK?: number;
  /** Evaluate only shard `i/n` (1-based `i`): every n-th sample from the (i-1)-th; a string `i/n` or an object. */
  shard?: string | { index: number; count: number };
  /** Engine (`auto`, `onnx`, `tfjs`). */
  engine?: string;
  /** Threads the engine may use. */
  threads?: number;
  /** What ill-defined scores become (`warn`, 0, 1, `nan`). */
  zeroDivision?: ZeroDivision | string;
  /** Two-class models: the positive class (default the second class). */
  positiveLabel?: string;
  /** Two-class and sigmoid models: a class is predicted when its score is above this (default 0.5). */
  threshold?: number;
  /** How many of the most confidently wrong samples to keep (default 20). */
  mistakes?: number;
  /** Also write one CSV row per sample here (path, label, prediction, confidence, correct, top_k). */
  predictionsCsv?: string;
  /** How the dataset's files are checked when it is opened (see `openDataset`). */
  verify?: VerifyMode;
  /** Called after every batch. */
  onProgress?: (progress: EvaluateProgress) => void;
  /** Notices (engine fallback, skipped files); default stderr, null silences. */
  log?: ((line: string) => void) | null;
  /** Use this open predictor instead of loading the model (it is not disposed). */
  predictor?: Predictor;
}

const EVALUATE_KEYS = [
  'model', 'data', 'batchSize', 'tta', 'topK', 'shard', 'engine', 'threads', 'zeroDivision', 'positiveLabel', 'threshold',
  'mistakes', 'predictionsCsv', 'verify', 'onProgress', 'log', 'predictor',
];

/**
 * Images per forward pass when the caller does not say: about 1 MiB of input floats, between 16 and 256 images.
 * onnxruntime splits a batch's convolutions across its threads, and small models on small images (28x28) leave
 * cores idle at the 32 a 224x224 model wants.
 */
export function defaultBatchSize(inputShape: readonly number[]): number {
  const floats = inputShape.reduce((a, b) => a * b, 1);
  return Math.max(16, Math.min(256, 2 ** Math.round(Math.log2(2 ** 18 / floats))));
}

/** Live tensors, when tfjs is loaded at all (onnxruntime runs without it). */
function tensorCount(): number {
  const tf = require.cache[require.resolve('@tensorflow/tfjs')]?.exports as typeof import('@tensorflow/tfjs') | undefined;
  return tf ? tf.memory().numTensors : 0;
}

export { parseShard, shardItems } from '../util/shard';

/**
 * Maps dataset labels onto the model's class order. Classes the model does not know are an error naming them;
 * model classes with no samples are fine (they score as scikit-learn scores absent labels) and noted.
 */
export function alignClasses(ds: Dataset, meta: GraftMeta, warnings: string[]): number[] {
  // IDX files carry label numbers, not names: numbers 0..n-1 stand for the model's classes in order.
  if (ds.kind === 'idx' && ds.classNames.every((c) => /^\d+$/.test(c) && Number(c) < meta.classNames.length)) {
    return ds.classNames.map(Number);
  }
  const unknown = ds.classNames.filter((c) => !meta.classNames.includes(c));
  if (unknown.length) {
    const absent = meta.classNames.filter((c) => !ds.classNames.includes(c));
    throw new GraftError(
      `the dataset's classes differ from the model's: only in the data: ${unknown.join(', ')}; only in the model: ${absent.join(', ') || 'none'}. ` +
        `Rename the class folders (or manifest labels) to the model's classes: ${meta.classNames.join(', ')}.`,
    );
  }
  const absent = meta.classNames.filter((c) => !ds.classNames.includes(c));
  if (absent.length) warnings.push(`the data has no class ${absent.join(', ')}; those classes count as absent (support 0).`);
  return ds.classNames.map((c) => meta.classNames.indexOf(c));
}

/** Scores a labelled dataset with a saved model and returns the report (nothing is written unless `predictionsCsv`). */
export async function evaluate(options: EvaluateOptions): Promise<EvaluationReport> {
  rejectUnknownKeys('evaluate', options, EVALUATE_KEYS);
  const meta = options.predictor?.meta ?? readGraftMeta(options.model);
  const classes = meta.classNames.length;
  const batchSize = positiveInt('batchSize', options.batchSize ?? defaultBatchSize(meta.inputShape));
  const tta = ttaMode(options.tta);
  const topK = Math.min(classes, positiveInt('topK', options.topK ?? Math.min(5, classes)));
  const maxMistakes = options.mistakes === undefined ? 20 : options.mistakes === 0 ? 0 : positiveInt('mistakes', options.mistakes);
  const shard = options.shard === undefined ? null : parseShard(options.shard);
  const zeroDivision = zeroDivisionOption(options.zeroDivision);
  const threshold = options.threshold === undefined ? 0.5 : finiteNumber('threshold', options.threshold, { min: 0, max: 1 });
  if (options.positiveLabel !== undefined && classes !== 2) {
    throw new GraftError(`positiveLabel only applies to two-class models; this model has ${classes} classes (${meta.classNames.join(', ')}).`);
  }
  const positiveLabel = classes === 2 ? (options.positiveLabel ?? meta.classNames[1]) : undefined;
  const positiveIndex = positiveLabel === undefined ? undefined : meta.classNames.indexOf(positiveLabel);
  if (positiveIndex === -1) throw new GraftError(`positiveLabel ${JSON.stringify(positiveLabel)} is not one of the model's classes (${meta.classNames.join(', ')}).`);
  const multilabel = meta.outputActivation === 'sigmoid' && classes > 2;

  const warnings: string[] = [];
  // The engine's session is built on its own threads while this thread lists and checks the files: start it first.
  const opening = options.predictor ? null : createPredictor(options.model, { engine: options.engine, threads: options.threads, log: options.log });
  opening?.catch(() => undefined); // surfaces below, once the dataset is open
  const abandon = (err: unknown) => {
    opening?.then((p) => p.dispose()).catch(() => undefined);
    throw err;
  };
  const ds = typeof options.data === 'string' ? await openDataset(options.data, { verify: options.verify, log: options.log }).catch(abandon) : options.data;
  let toModel: number[];
  try {
    toModel = alignClasses(ds, meta, warnings);
  } catch (err) {
    abandon(err);
  }
  const samples = shardItems(ds.samples, shard).map((s) => ({ source: s.source, label: toModel![s.label] }));
  const skipped = shardItems(ds.skipped, shard).length;
  const view: Dataset = { ...ds, classNames: meta.classNames, samples };

  const settings: EvaluationSettings = { tta, topK, mistakes: maxMistakes, zeroDivision, ...(positiveLabel !== undefined ? { positiveLabel, threshold } : {}), ...(multilabel ? { threshold } : {}) };
  const confusion = emptyConfusionMatrix(meta.classNames);
  const hits = Array.from({ length: topK }, () => 0);
  const mlCounts = multilabel ? emptyMultilabelCounts(meta.classNames, threshold) : undefined;
  let mistakes: Mistake[] = [];
  let csv: StagedCsvWriter | null = null;
  try {
    csv = options.predictionsCsv ? new StagedCsvWriter(options.predictionsCsv, ['path', 'label', 'prediction', 'confidence', 'correct', 'top_k']) : null;
  } catch (err) {
    abandon(err);
  }
  const predictor = options.predictor ?? (await opening!);
  const rssStart = process.memoryUsage().rss;
  const tensorsStart = tensorCount();
  const started = performance.now();
  let done = 0;
  let resources: EvaluationReport['resources'];
  const stats: BatchStats = { maxInFlight: 0, cacheHits: 0 };
  try {
    const [h, w, c] = meta.inputShape;
    // Plain arrays go to the engine as they are: no tensor is made for a batch the engine reads as floats.
    for await (const batch of rawBatches(view, { inputShape: [h, w, c], preprocessing: meta.preprocessing, batchSize, stats })) {
      const pixels = batch.pixels;
      const n = batch.labels.length;
      const scores = await predictBatch(predictor, pixels, n, tta);
      for (let i = 0; i < n; i++) {
        const offset = i * classes;
        const label = batch.labels[i];
        const pred = predictedIndex(scores, offset, classes, { positiveIndex, threshold });
        addToConfusion(confusion, label, pred);
        const rank = rankOf(scores, offset, classes, label);
        for (let k = rank; k < topK; k++) hits[k]++;
        if (mlCounts) addMultilabelSample(mlCounts, meta.classNames.map((_, j) => j === label), scores.subarray(offset, offset + classes));
        const source = batch.samples[i].source;
        const confidence = scores[offset + pred];
        if (pred !== label && maxMistakes > 0) {
          const trueScore = scores[offset + label];
          mistakes.push({ source, label: meta.classNames[label], prediction: meta.classNames[pred], confidence, trueScore, loss: -Math.log(Math.max(trueScore, 1e-12)) });
        }
        csv?.row([source, meta.classNames[label], meta.classNames[pred], confidence.toFixed(6), pred === label ? 1 : 0, topKCell(scores, offset, meta.classNames, topK)]);
      }
      if (mistakes.length > 2 * maxMistakes) mistakes = mistakes.sort(compareMistakes).slice(0, maxMistakes);
      done += n;
      const seconds = (performance.now() - started) / 1000;
      options.onProgress?.({ done, total: samples.length, seconds, imagesPerSecond: seconds > 0 ? done / seconds : 0 });
    }
    csv?.commit();
    resources = { rssStartMiB: rssStart / 2 ** 20, rssEndMiB: process.memoryUsage().rss / 2 ** 20, tensorsStart, tensorsEnd: tensorCount() };
  } catch (err) {
    csv?.abort();
    throw err;
  } finally {
    if (!options.predictor) await predictor.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  return buildReport({
    model: {
      dir: options.model,
      architecture: meta.architecture,
      classNames: meta.classNames,
      inputShape: meta.inputShape,
      preprocessing: meta.preprocessing,
      outputActivation: meta.outputActivation,
    },
    data: { spec: typeof options.data === 'string' ? options.data : ds.root, samples: done, skipped: skipped + (stats.skipped ?? 0), shard },
    engine: predictor.engine,
    settings,
    throughput: { seconds, imagesPerSecond: seconds > 0 ? done / seconds : 0 },
    counts: { confusion, topK: hits.map((v, k) => ({ k: k + 1, hits: v })), ...(mlCounts ? { multilabel: mlCounts } : {}) },
    mistakes: mistakes.sort(compareMistakes).slice(0, maxMistakes),
    warnings,
    resources,
  });
}
