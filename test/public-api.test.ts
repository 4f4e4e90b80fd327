/**
 * The public API is what src/index.ts exports, and nothing else: this list changes only on purpose (a new export is
 * added here in the same change, with its doc comment), and internals such as cache paths, RNGs or SVG helpers stay
 * internal.
 */
import * as graft from '../src';

const PUBLIC_NAMES = [
  'AUGMENT_OPS', 'AUGMENT_PRESETS', 'AUGMENT_PRESET_NAMES', 'BACKEND_CHOICES', 'CHECKPOINT_DIR', 'DATASET_KINDS',
  'ENGINES', 'ENGINE_CHOICES', 'ENGINE_RUNTIME', 'FASHION_MNIST_CLASSES', 'FASHION_MNIST_DIR', 'FEATURE_POOLINGS',
  'FIT_MODES', 'GRAFT_VERSION', 'GraftError', 'GroupOptimizer', 'HEAD_ACTIVATIONS', 'HEAD_POOLINGS',
  'IMAGE_EXTENSIONS', 'IN_PROCESS_RUNTIME', 'LR_FIND_TRAIN_KEYS', 'MONITORS', 'ONNX_CACHE_DIR', 'OPTIMIZERS',
  'OUTPUT_ACTIVATIONS', 'POOLINGS', 'PREPROCESS_MODES', 'PROGRESS_MODES', 'REPORT_FORMATS', 'SCHEDULES',
  'SIMPLE_CNN_DEFAULTS', 'TRAIN_CONFIG_KEYS', 'TRAIN_ENGINE_CHOICES', 'TRAIN_OPTIONS', 'TTA_MODES', 'VERIFY_MODES',
  'WASM_KERNEL_NAMES', 'WORKER_BACKENDS', 'ZERO_DIVISION_CHOICES', 'addConfusionMatrices', 'addMultilabelCounts',
  'addMultilabelSample', 'architectureNames', 'arraySource', 'augmentSheet', 'balancedClassWeights', 'batches',
  'binaryScores', 'buildModel', 'buildParamGroups', 'buildReport', 'cacheDir', 'cachedOnnxModel', 'checkGroups',
  'checkTrainOptions', 'classificationLoss', 'classificationMetrics', 'classificationReportDict', 'confusionMatrix',
  'constantSchedule', 'constructModel', 'coreCount', 'cosineSchedule', 'countBatches', 'createClassifier',
  'createFeatureExtractor', 'createGradientPool', 'createModelRunner', 'createOnnxModelRunner',
  'createOnnxPredictor', 'createOnnxPrefixRunner', 'createOnnxSession', 'createPredictor', 'architectureMultiplyAdds', 'multiplyAdds', 'exportWebPage', 'quantizeWeights', 'serveStatic', 'QUANTIZE_DTYPES', 'createPrefixRunner',
  'createStepEngine', 'createTfjsEnginePredictor', 'createWorkerPredictor', 'cudaProviderInstalled',
  'currentBackend', 'defaultInputShape', 'describeTrainable', 'disposeLoopState', 'emptyMultilabelCounts',
  'evaluate', 'evaluateSource', 'evenMults', 'expandImagePaths', 'exportFashionMnist', 'exportModelFolderOnnx',
  'exportOnnx', 'extractFeatures', 'fineTune', 'fit', 'formatClassificationReport', 'formatReportMarkdown',
  'formatReportText', 'freeze', 'freezeTo', 'getArchitecture', 'imagenetFile', 'importKeras', 'initBackend',
  'isModelFolder', 'listArchitectures', 'loadCheckpoint', 'loadImage', 'loadKerasWeights', 'loadModelFolder',
  'loadTrunk', 'localGradients', 'lrFind', 'makeSchedule', 'mergeReportFiles', 'mergeReports', 'modelArtifacts',
  'mostConfused', 'multilabelMetrics', 'oneCycleSchedule', 'openDataset', 'openWithEngine', 'optimizerConfig',
  'parseAugmentation', 'planStages', 'pooledGradients', 'precisionRecallF1', 'predict', 'predictBatch',
  'predictionsToCsv', 'preprocessPixels', 'preprocessTensor', 'probeBackends', 'progressCallbacks', 'readGraftMeta',
  'readKerasH5Layers', 'readModelArtifacts', 'readPredictionsCsv', 'readReportFile', 'registerArchitecture',
  'reportFromPredictions', 'reportHtml', 'reportPaths', 'resolveHead', 'resolveSimpleCnn', 'resolveTrainOptions',
  'restoreWeights', 'runLrFind', 'saveCheckpoint', 'saveModelFolder', 'selectLayers', 'snapshotWeights',
  'splitDataset', 'splitModel', 'steepest', 'stepSchedule', 'summarizeModel', 'syncFrozenBatchNorm',
  'tfjsStepEngine', 'topKHits', 'train', 'trainabilityLabel', 'unfreeze', 'validateGraftMeta', 'validateReport',
  'valley', 'verifyOnnxExport', 'withWarmup', 'writeKerasWeights', 'writeReports',
];

describe('public API', () => {
  test('src/index.ts exports exactly the documented names', () => {
    expect(Object.keys(graft).sort()).toEqual([...PUBLIC_NAMES].sort());
  });

  test('internals stay internal', () => {
    for (const name of ['cachedPath', 'escapeXml', 'createRng', 'svgToPng', 'zeroDivisionOption', 'drawPlan', 'fetchCached']) {
      expect(Object.keys(graft)).not.toContain(name);
    }
  });

  test('every exported function has a name a user can read in a stack trace', () => {
    const anonymous = Object.entries(graft).filter(([, v]) => typeof v === 'function' && !(v as { name?: string }).name);
    expect(anonymous.map(([k]) => k)).toEqual([]);
  });
});
