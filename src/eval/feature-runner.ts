/**
 * A feature extractor ready to run, as cheaply as the weights allow. On onnxruntime the pooled extractor's ONNX
 * export is cached (beside a model folder's own export in `.onnx-cache/`, or under the cache folder for Keras
 * weights), with a small JSON of what the CLI needs (input shape, preprocessing, width), so a later run opens the
 * session straight from the file: no tfjs model is built, no weights are read, no graph is exported. onnxruntime's
 * optimized graph is kept beside it too. The tfjs engine, random weights and URLs build the model every time.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraftError, oneOf } from '../errors';
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

/** Opens a feature extractor on the engine asked for (see the file comment). */
export async function openFeatureRunner(o: FeatureRunnerOptions): Promise<FeatureRunner> {
  const { engine: engineOption, threads, log: logOption, beforeTfjs, ...extractorOptions } = o;
  const engine = oneOf('--engine', engineOption ?? 'auto', FEATURE_ENGINES);
  const log = logOption === undefined ? (line: string) => process.stderr.write(`${line}\n`) : logOption;
  if (engine !== 'tfjs') {
    const runtime = await import('../engine/onnx-runtime');
    const { reason } = runtime.tryLoadOnnxRuntime();
    if (reason && engine === 'onnx') throw new GraftError(`--engine onnx is not available: ${reason}.`);
    const file = reason ? null : await cachePath(o);
    if (file) {
      try {
        return await openCached(file, extractorOptions, threads, beforeTfjs);
      } catch (err) {
        if (engine === 'onnx') throw err;
        log?.(`graft: onnx engine could not load the feature model (${(err as Error).message.split('\n')[0]}); using tfjs.`);
      }
    }
  }
  // The in-memory way: build the extractor in tfjs, then export it for onnxruntime or run it in tfjs.
  await beforeTfjs?.();
  const { createFeatureExtractor } = await import('./features');
  const { createModelRunner } = await import('../engine');
  const extractor = await createFeatureExtractor(extractorOptions);
  try {
    const runner = await createModelRunner(extractor.model, { engine, log });
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
}

/** Opens the cached export, making it first (with tfjs) when it is not there yet. */
async function openCached(file: string, options: FeatureExtractorOptions, threads: number | undefined, beforeTfjs?: () => Promise<unknown>): Promise<FeatureRunner> {
  const { createOnnxSession, optimizedModelPath, runSession, warmUp } = await import('../engine/onnx-runtime');
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
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as CachedMeta;
  const n = threads ?? os.availableParallelism();
  const { session, engine } = await createOnnxSession(file, { threads: n, optimizedPath: optimizedModelPath(file, n), log: null });
  const [h, w, c] = meta.inputShape;
  await warmUp(session, [h, w, c], `the feature model ${file}`);
  return {
    engine,
    architecture: meta.architecture,
    inputShape: meta.inputShape,
    preprocessing: meta.preprocessing,
    dim: meta.dim,
    run: (input, batch) => runSession(session, input, [batch, h, w, c]),
    async dispose() {
      await session.release();
    },
  };
}
