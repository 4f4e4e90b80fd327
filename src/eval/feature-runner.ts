/**
 * A feature extractor ready to run, as cheaply as the weights allow. On onnxruntime the pooled extractor's ONNX
 * export is cached (beside a model folder's own export in `.onnx-cache/`, or under the cache folder for Keras
 * weights), with a small JSON of what the CLI needs (input shape, preprocessing, width), so a later run opens the
 * session straight from the file: no tfjs model is built, no weights are read, no graph is exported. onnxruntime's
 * optimized graph is kept beside it too. The tfjs engine, random weights and URLs build the model every time.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { oneOf } from '../errors';
import type { FeatureExtractorOptions, FeatureSource } from './features';
import type { PreprocessMode } from '../data/preprocess';
import { cacheDir } from '../util/cache';
import { writeFileAtomic } from '../io/atomic';
import { ENGINE_CHOICES } from '../models/runner';

/** Engines a feature runner can use: the engine table's. */
export const FEATURE_ENGINES = ENGINE_CHOICES;

/** A graft model folder (has graft.json), tested without loading the modules that read one. */
function isModelFolder(weights: string): boolean {
  return fs.existsSync(path.join(weights, 'graft.json'));
}

/** A feature extractor with an engine behind it. */
export interface FeatureRunner extends FeatureSource {
  /** What runs it, e.g. `onnxruntime cpu x2`. */
  readonly engine: string;
  /** Architecture of the trunk. */
  readonly architecture: string;
  /** Frees the session or model. */
  dispose(): Promise<void>;
}

/** Options of `openFeatureRunner`. */
export interface FeatureRunnerOptions extends FeatureExtractorOptions {
  /** `auto` (onnxruntime when it loads, else tfjs), `onnx` or `tfjs`. */
  engine?: string;
  /** onnxruntime intra-op threads (default one per core). */
  threads?: number;
  /** Notices (engine fallback); default stderr, null silences. */
  log?: ((line: string) => void) | null;
  /** Called before the first tfjs model is built (the CLI starts its tfjs backend here, and only when needed). */
  beforeTfjs?: () => Promise<unknown>;
}

/** What is saved beside a cached export. */
interface CachedMeta {
  inputShape: [number, number, number];
  preprocessing: PreprocessMode;
  dim: number;
  architecture: string;
}

/**
 * Where the export for these options is cached, or null when the weights have no cheap identity (random weights,
 * URLs). Model folders key on their weights' hash (remembered by file sizes and times); `imagenet` on the
 * architecture, since its weight files are fixed by checksum; a Keras file on its path, size and modification time.
 */
async function cachePath(o: FeatureRunnerOptions): Promise<string | null> {
  const pooling = o.pooling ?? 'avg';
  const weights = o.weights;
  if (weights === null || weights === undefined) return null;
  const { cachedModelFolderHash, ONNX_CACHE_DIR } = await import('../engine/onnx-runtime');
  if (isModelFolder(weights)) return path.join(weights, ONNX_CACHE_DIR, `features-${pooling}-${cachedModelFolderHash(weights)}.onnx`);
  let identity: string;
  if (weights === 'imagenet') identity = 'imagenet';
  else if (!/^https?:/i.test(weights) && fs.existsSync(weights)) {
    const st = fs.statSync(weights);
    identity = `${path.resolve(weights)}:${st.size}:${st.mtimeMs}`;
  } else return null;
  const key = createHash('sha1').update(JSON.stringify([o.arch, o.inputShape ?? null, pooling, identity, o.simpleCnn ?? null])).digest('hex').slice(0, 24);
  return path.join(cacheDir(), 'features', `${key}.onnx`);
}

/**
 * Opens a feature extractor on the engine asked for (see the file comment), through the engine table: an engine
 * that runs cached export files gets the cached export, any other the extractor built in tfjs; `auto` falls back
 * and says why in the table's words.
 */
export async function openFeatureRunner(o: FeatureRunnerOptions): Promise<FeatureRunner> {
  const { engine, threads, log, beforeTfjs, ...extractorOptions } = o;
  const { openWithEngine } = await import('../engine');
  return openWithEngine('the feature model', { engine: oneOf('--engine', engine ?? 'auto', FEATURE_ENGINES), threads, log }, async (eng, eo) => {
    const file = eng.fileRunner ? await cachePath(o) : null;
    if (file) {
      const meta = await cachedExport(file, extractorOptions, beforeTfjs);
      const runner = await eng.fileRunner!(file, { input: meta.inputShape, output: [meta.dim] }, eo);
      return { ...meta, engine: runner.engine, run: runner.run, dispose: runner.dispose };
    }
    // The in-memory way: build the extractor in tfjs, then export it for onnxruntime or run it in tfjs.
    await beforeTfjs?.();
    const { createFeatureExtractor } = await import('./features');
    const extractor = await createFeatureExtractor(extractorOptions);
    try {
      const runner = await eng.runner(extractor.model, eo);
      return {
        engine: runner.engine,
        architecture: extractor.architecture,
        inputShape: extractor.inputShape,
        preprocessing: extractor.preprocessing,
        dim: extractor.dim,
        run: runner.run,
        async dispose() {
          await runner.dispose();
          extractor.dispose();
        },
      };
    } catch (err) {
      extractor.dispose();
      throw err;
    }
  });
}

/** The cached export's metadata, making the export first (with tfjs) when it is not there yet. */
async function cachedExport(file: string, options: FeatureExtractorOptions, beforeTfjs?: () => Promise<unknown>): Promise<CachedMeta> {
  const metaFile = file.replace(/\.onnx$/, '.json');
  if (!fs.existsSync(file) || !fs.existsSync(metaFile)) {
    await beforeTfjs?.();
    const { createFeatureExtractor } = await import('./features');
    const { exportOnnx } = await import('../onnx/export');
    const extractor = await createFeatureExtractor(options);
    try {
      const { bytes } = await exportOnnx(extractor.model);
      const meta: CachedMeta = { inputShape: extractor.inputShape, preprocessing: extractor.preprocessing, dim: extractor.dim, architecture: extractor.architecture };
      await writeFileAtomic(file, bytes);
      await writeFileAtomic(metaFile, JSON.stringify(meta));
    } finally {
      extractor.dispose();
    }
    const dir = path.dirname(file);
    const prefix = path.basename(file).replace(/-[0-9a-f]+\.onnx$/, '-');
    // Exports for older weights of the same folder and pooling are stale.
    if (prefix.startsWith('features-')) {
      for (const entry of fs.readdirSync(dir)) if (entry.startsWith(prefix) && !entry.startsWith(path.basename(file, '.onnx'))) fs.rmSync(path.join(dir, entry), { force: true });
    }
  }
  return JSON.parse(fs.readFileSync(metaFile, 'utf8')) as CachedMeta;
}
