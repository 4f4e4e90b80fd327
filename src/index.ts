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
