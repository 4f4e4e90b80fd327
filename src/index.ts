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
export { PREPROCESS_MODES, preprocessPixels, preprocessTensor } from './data/preprocess';
export type { PreprocessMode } from './data/preprocess';
export { getArchitecture, listArchitectures, architectureNames, registerArchitecture } from './models/registry';
export type { ArchitectureSpec, ImagenetWeights, KerasWeightsFile } from './models/spec';
export { buildModel, constructModel, defaultInputShape, POOLINGS } from './models/build';
export type { BuildModelOptions, BuiltModel, ConstructOptions, ModelMeta, Pooling } from './models/build';
export { createClassifier, isModelFolder } from './models/classifier';
export type { CreateClassifierOptions } from './models/classifier';
export { resolveHead, HEAD_POOLINGS, HEAD_ACTIVATIONS, OUTPUT_ACTIVATIONS } from './models/head';
export type { HeadOptions, HeadPooling, HeadActivation, OutputActivation } from './models/head';
export { SIMPLE_CNN_DEFAULTS, resolveSimpleCnn } from './models/simple_cnn';
export type { SimpleCnnOptions } from './models/simple_cnn';
export { checkGroups } from './models/groups';
export { loadKerasWeights, writeKerasWeights, readKerasH5Layers } from './models/keras-h5';
export type { KerasH5Layer, KerasH5Weight, KerasLoadReport, LoadKerasWeightsOptions, WriteKerasWeightsOptions } from './models/keras-h5';
export { imagenetFile } from './models/weights';
export type { WeightsProgress } from './models/weights';
export { summarizeModel } from './models/summary';
export type { LayerSummary, ModelSummary } from './models/summary';
export { multiplyAdds, architectureMultiplyAdds } from './models/multiply-adds';
export { importKeras } from './models/import-keras';
export type { ImportKerasOptions, ImportKerasResult } from './models/import-keras';
export { createFeatureExtractor, extractFeatures, expandImagePaths, FEATURE_POOLINGS } from './eval/features';
export type { ExtractFeaturesOptions, FeatureExtractor, FeatureExtractorOptions } from './eval/features';
export { loadTrunk } from './models/classifier';
export type { Trunk, TrunkOptions } from './models/classifier';
export { cacheDir } from './util/cache';
export { openDataset, splitDataset, DATASET_KINDS, IMAGE_EXTENSIONS, VERIFY_MODES } from './data/dataset';
export type { Dataset, DatasetKind, OpenDatasetOptions, Sample, SkippedFile, SplitDatasetOptions, VerifyMode } from './data/dataset';
export { batches, countBatches } from './data/batches';
export type { Batch, BatchSource, ImageBatch, BatchesOptions, BatchStats, ImageCache } from './data/batches';
export { loadImage, FIT_MODES } from './data/image';
export type { FitMode, ImageInput, InputShape, LoadImageOptions, RawImage, RenderPlan } from './data/image';
export { parseAugmentation, AUGMENT_OPS, AUGMENT_PRESETS, AUGMENT_PRESET_NAMES } from './data/augment';
export type { AugmentOp, AugmentPipeline, AugmentPreset, AugmentSpec, AugmentStep } from './data/augment';
export { augmentSheet } from './data/contact-sheet';
export type { AugmentSheetOptions } from './data/contact-sheet';
export { exportFashionMnist, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR } from './data/fashion-mnist';
export type { ExportFashionMnistOptions, ExportFashionMnistResult } from './data/fashion-mnist';
export {
  confusionMatrix,
  addConfusionMatrices,
  mostConfused,
  classificationMetrics,
  precisionRecallF1,
  binaryScores,
  ZERO_DIVISION_CHOICES,
  emptyMultilabelCounts,
  addMultilabelSample,
  addMultilabelCounts,
  multilabelMetrics,
  topKHits,
  buildReport,
  mergeReports,
  validateReport,
  formatClassificationReport,
  classificationReportDict,
  formatReportText,
  formatReportMarkdown,
  reportHtml,
} from './metrics';
export type {
  ConfusionMatrix,
  ConfusedPair,
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
export { createPredictor, createModelRunner, createPrefixRunner, createStepEngine, openWithEngine, ENGINE_CHOICES, ENGINES } from './engine';
export type { Engine, EngineChoice, EngineChoiceOptions, EngineOptions, Predictor, Runner } from './engine';
export { createWorkerPredictor, createTfjsEnginePredictor, createGradientPool, coreCount, WORKER_BACKENDS } from './engine/workers';
export type {
  GradientPool,
  GradientPoolOptions,
  GradientStep,
  GradientStepArgs,
  TfjsEnginePredictorOptions,
  WorkerPoolOptions,
  WorkerPredictorOptions,
} from './engine/workers';
export { WASM_KERNEL_NAMES } from './backend/wasm-kernels';
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
  predictionsToCsv,
  REPORT_FORMATS,
  TTA_MODES,
} from './eval';
export type { EvaluateOptions, EvaluateProgress, PredictOptions, Prediction, ReportFormat, TtaMode, WriteReportsOptions } from './eval';
export { exportOnnx, exportModelFolderOnnx } from './onnx/export';
export type { ExportOnnxOptions, ExportModelFolderOnnxOptions, OnnxExport } from './onnx/export';
export { createOnnxPredictor, createOnnxSession, cachedOnnxModel, cudaProviderInstalled, ONNX_CACHE_DIR } from './engine/onnx-runtime';
export type { OnnxPredictorOptions, OnnxSessionOptions, OnnxSession } from './engine/onnx-runtime';
export { createOnnxPrefixRunner, createOnnxModelRunner } from './engine/onnx-runners';
export { verifyOnnxExport } from './engine/onnx-verify';
export type { VerifyOnnxOptions, VerifyOnnxResult } from './engine/onnx-verify';
export { train, lrFind, ENGINE_RUNTIME } from './engine/training';
export { fineTune, planStages, resolveTrainOptions, CHECKPOINT_DIR } from './train/fine-tune';
export { TRAIN_OPTIONS, TRAIN_CONFIG_KEYS, LR_FIND_TRAIN_KEYS, checkTrainOptions } from './train/options';
export type { TrainOptionSpec } from './train/options';
export { IN_PROCESS_RUNTIME } from './train/runtime';
export { tfjsStepEngine, TRAIN_ENGINE_CHOICES } from './train/step';
export type { StepEngine, StepEngineContext, StepEngineFactory, StepInfo, TrainEngineChoice } from './train/step';
export type { TrainRuntime, PrefixRunnerRequest } from './train/runtime';
export { exportWebPage } from './web/export-web';
export type { ExportWebOptions, ExportWebResult } from './web/export-web';
export { quantizeWeights, QUANTIZE_DTYPES } from './web/quantize';
export type { QuantizeDtype, QuantizedWeights } from './web/quantize';
export { serveStatic } from './web/serve';
export type { ServeOptions, StaticServer } from './web/serve';
export type { TrainOptions, TrainResult, StageConfig } from './train/fine-tune';
export { runLrFind, valley, steepest } from './train/lr-find';
export type { LrFindOptions, LrFindResult } from './train/lr-find';
export { fit, evaluateSource, snapshotWeights, restoreWeights, disposeLoopState, localGradients, MONITORS } from './train/loop';
export type { BatchInfo, EpochLog, FitCallbacks, FitOptions, FitResult, GradientSource, LoopState, Monitor } from './train/loop';
export { pooledGradients } from './engine/pooled-gradients';
export { freeze, unfreeze, freezeTo, selectLayers, syncFrozenBatchNorm, describeTrainable, trainabilityLabel } from './train/freeze';
export type { FreezeOptions, LayerSelection, LayerTrainability, TrainabilityReport } from './train/freeze';
export { GroupOptimizer, buildParamGroups, optimizerConfig, evenMults, OPTIMIZERS } from './train/optim';
export type { OptimizerConfig, OptimizerName, OptimizerState, ParamGroup, ParamGroupOptions } from './train/optim';
export { makeSchedule, constantSchedule, stepSchedule, cosineSchedule, oneCycleSchedule, withWarmup, SCHEDULES } from './train/schedule';
export type { Schedule, ScheduleConfig, ScheduleName } from './train/schedule';
export { classificationLoss, balancedClassWeights } from './train/losses';
export type { LossOptions } from './train/losses';
export { splitModel } from './models/split';
export type { SplitModel } from './models/split';
export { arraySource } from './train/sources';
export type { ArraySourceOptions } from './train/sources';
export { saveCheckpoint, loadCheckpoint } from './train/checkpoint';
export { progressCallbacks, PROGRESS_MODES } from './train/progress';

