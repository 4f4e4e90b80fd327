/**
 * Engine selection: the one place that knows which engines can run a saved model and in what order `auto` tries
 * them. Each engine is an entry in `ENGINES` with an availability check, so adding one (worker threads, onnxruntime)
 * is one entry, not a new branch in every caller.
 */
import { GraftError, oneOf, positiveInt } from '../errors';
import { readGraftMeta } from '../io/graft-json';
import type { Predictor } from './predictor';
import { createOnnxPredictor, tryLoadOnnxRuntime } from '../onnx/runtime';

export type { Predictor } from './predictor';

/** What a user may ask for with `--engine`. */
export const ENGINE_CHOICES = ['auto', 'onnx', 'tfjs'] as const;
/** An engine request. */
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** Options every engine factory receives. */
export interface EngineCreateOptions {
  /** Threads (or worker threads) the engine may use; default: the engine decides (usually every core). */
  threads?: number;
}

/** One way of running a model. */
export interface EngineFactory {
  /** Name used by `--engine`. */
  name: Exclude<EngineChoice, 'auto'>;
  /** Null when the engine can run here, else one line saying why not and what to install. */
  unavailable(): Promise<string | null>;
  /** Loads the model folder into a Predictor. */
  create(modelDir: string, options: EngineCreateOptions): Promise<Predictor>;
}

/**
 * The tfjs engine: the model on the current tfjs backend (on wasm, split across worker threads when that pays).
 * tfjs is loaded here, not at the top, so runs on onnxruntime never load it; when nothing chose a backend yet
 * (the CLI starts one only when it expects tfjs to run), the default one (`GRAFT_BACKEND` or auto) starts here.
 */
const TFJS_ENGINE: EngineFactory = {
  name: 'tfjs',
  unavailable: async () => null,
  async create(modelDir, options) {
    const { currentBackend, initBackend } = await import('../backend');
    if (!currentBackend()) await initBackend({ threads: options.threads, log: null });
    const { createTfjsEnginePredictor } = await import('./workers');
    return createTfjsEnginePredictor(modelDir, { threads: options.threads });
  },
};

/** The onnxruntime engine: the model's ONNX export (cached in the folder) on onnxruntime-node, CUDA when installed. */
const ONNX_ENGINE: EngineFactory = {
  name: 'onnx',
  unavailable: async () => tryLoadOnnxRuntime().reason ?? null,
  create: (modelDir, options) => createOnnxPredictor(modelDir, { threads: options.threads }),
};

/** Engines in the order `auto` prefers them; the last one must always be available. */
export const ENGINES: EngineFactory[] = [ONNX_ENGINE, TFJS_ENGINE];

/** Options for `createPredictor`. */
export interface CreatePredictorOptions {
  /** `auto` (default: the first available engine in `ENGINES`, with a one-line notice for each skipped), `onnx` or `tfjs`. */
  engine?: EngineChoice | string;
  /** Threads the engine may use. */
  threads?: number;
  /** Where notices go (default stderr); null silences them. */
  log?: ((line: string) => void) | null;
}

/** Opens a model folder with the requested engine; `auto` falls back along `ENGINES`, an explicit engine never does. */
export async function createPredictor(modelDir: string, options: CreatePredictorOptions = {}): Promise<Predictor> {
  const choice = oneOf('engine', options.engine ?? 'auto', ENGINE_CHOICES);
  const threads = options.threads === undefined ? undefined : positiveInt('threads', options.threads);
  const log = options.log === undefined ? (line: string) => process.stderr.write(line + '\n') : options.log;
  // Read graft.json first so a folder that is not a model fails the same way whatever the engine.
  readGraftMeta(modelDir);
  if (choice !== 'auto') {
    const engine = ENGINES.find((e) => e.name === choice);
    const why = engine ? await engine.unavailable() : `this build of graft has no ${choice} engine`;
    if (why) throw new GraftError(`--engine ${choice} is not available: ${why}; or use --engine auto.`);
    return engine!.create(modelDir, { threads });
  }
  for (const [i, engine] of ENGINES.entries()) {
    const last = i === ENGINES.length - 1;
    const why = await engine.unavailable();
    if (!why) {
      try {
        return await engine.create(modelDir, { threads });
      } catch (err) {
        if (last) throw err;
        log?.(`graft: ${engine.name} engine could not load ${modelDir} (${String((err as Error).message ?? err).split('\n')[0]}); using ${ENGINES[i + 1].name}.`);
        continue;
      }
    }
    if (!last) log?.(`graft: ${engine.name} engine unavailable (${why}); using ${ENGINES[i + 1].name}.`);
  }
  throw new GraftError('no engine can run the model; reinstall graft with npm ci.');
}
