/**
 * graft's public API. Everything the CLI does is one call away here; each CLI command is a thin wrapper.
 */
export { GraftError } from './errors';
export { GRAFT_VERSION } from './version';
export { initBackend, currentBackend, probeBackends, BACKEND_CHOICES } from './backend';
export type { BackendChoice, BackendInfo, BackendProbe, DoctorReport, InitBackendOptions } from './backend';
export { saveModelFolder, loadModelFolder, readModelArtifacts, modelArtifacts } from './io/model-folder';
export type { ModelFolder, SaveModelFolderOptions } from './io/model-folder';
export { readGraftMeta, validateGraftMeta } from './io/graft-json';
export type { GraftMeta, GraftMetaInit, LayerGroup } from './io/graft-json';
export { PREPROCESS_MODES, preprocessPixels, preprocessTensor } from './models/preprocess';
export type { PreprocessMode } from './models/preprocess';
export { createRng } from './util/rng';
export type { Rng } from './util/rng';
export { cacheDir } from './util/cache';
export { svgToPng, writeSvgAsPng, escapeXml } from './util/svg';
export { openDataset, splitDataset, DATASET_KINDS, IMAGE_EXTENSIONS, VERIFY_MODES } from './data/dataset';
export type { Dataset, DatasetKind, OpenDatasetOptions, Sample, SkippedFile, SplitDatasetOptions, VerifyMode } from './data/dataset';
export { batches, countBatches } from './data/batches';
export type { Batch, BatchesOptions, BatchStats, ImageCache } from './data/batches';
export { loadImage, renderImage, FIT_MODES } from './data/image';
export type { FitMode, ImageInput, InputShape, LoadImageOptions, RawImage, RenderPlan } from './data/image';
export { parseAugmentation, drawPlan, AUGMENT_OPS, AUGMENT_PRESETS, AUGMENT_PRESET_NAMES } from './data/augment';
export type { AugmentOp, AugmentPipeline, AugmentPreset, AugmentSpec, AugmentStep } from './data/augment';
export { exportFashionMnist, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR } from './data/fashion-mnist';
export type { ExportFashionMnistOptions, ExportFashionMnistResult } from './data/fashion-mnist';
export {
  confusionMatrix,
  addConfusionMatrices,
  emptyConfusionMatrix,
  classificationMetrics,
  precisionRecallF1,
  binaryScores,
  zeroDivisionOption,
  ZERO_DIVISION_CHOICES,
  emptyMultilabelCounts,
  addMultilabelSample,
  addMultilabelCounts,
  multilabelMetrics,
  topKHits,
  predictedIndex,
  buildReport,
  mergeReports,
  validateReport,
  formatClassificationReport,
  formatReportText,
  formatReportMarkdown,
  reportHtml,
  confusionSvg,
  classBarsSvg,
} from './metrics';
export type {
  ConfusionMatrix,
  ClassScores,
  AverageScores,
  ClassificationMetrics,
  ClassificationMetricsOptions,
  ZeroDivision,
  MultilabelCounts,
  MultilabelMetrics,
  EvaluationReport,
  EvaluationCounts,
  EvaluationSettings,
  Mistake,
} from './metrics';
export { createPredictor, ENGINE_CHOICES, ENGINES } from './engine';
export type { CreatePredictorOptions, EngineChoice, EngineFactory, Predictor } from './engine';
export {
  evaluate,
  predict,
  predictBatch,
  writeReports,
  reportPaths,
  mergeReportFiles,
  readReportFile,
  reportFromPredictions,
  readPredictionsCsv,
  REPORT_FORMATS,
  TTA_MODES,
} from './eval';
export type { EvaluateOptions, EvaluateProgress, PredictOptions, Prediction, ReportFormat, TtaMode, WriteReportsOptions } from './eval';
