/**
 * onnxruntime-node as a forward-only engine: loaded lazily (its native binding may not load on every platform, and
 * graft must still run on tfjs then), sessions with one intra-op thread per core, the CUDA provider when its
 * libraries are installed, and a Predictor over an ONNX export cached beside the model folder.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { GraftError, positiveInt } from '../errors';
// Only light modules at the top: a cached graph runs without tfjs, which the exporter and model building load.
import { computeThreads } from '../backend/compute-threads';
import { MODEL_JSON, readModelArtifacts } from '../io/model-folder';
import { readGraftMeta } from '../io/graft-json';
import { writeFileAtomic } from '../io/atomic';
import { Predictor, runnerPredictor } from './predictor';
import type { Runner } from '../models/runner';

/** Bumped whenever the exporter's output changes, so cached graphs from an older graft are rebuilt. */
const EXPORTER_REVISION = 1;
/** Folder inside a model folder that holds exported graphs, one per weights hash. */
export const ONNX_CACHE_DIR = '.onnx-cache';

let loaded: { ort?: typeof Ort; reason?: string } | undefined;

/** onnxruntime-node, or the one-line reason it cannot load (never throws). */
export function tryLoadOnnxRuntime(): { ort?: typeof Ort; reason?: string } {
  if (!loaded) {
    try {
      loaded = { ort: require('onnxruntime-node') as typeof Ort };
    } catch (err) {
      const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0].slice(0, 200);
      loaded = { reason: `onnxruntime-node does not load on ${process.platform}/${process.arch} (${msg}); reinstall it with npm ci, or use --engine tfjs` };
    }
  }
  return loaded;
}

/** onnxruntime-node, or a GraftError giving the reason it cannot load. */
export function loadOnnxRuntime(): typeof Ort {
  const { ort, reason } = tryLoadOnnxRuntime();
  if (!ort) throw new GraftError(`--engine onnx is not available: ${reason}.`);
  return ort;
}

/** Whether onnxruntime's CUDA provider libraries sit beside its binding (the npm package ships the CPU ones only). */
export function cudaProviderInstalled(): boolean {
  try {
    const bin = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return fs.existsSync(path.join(bin, process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

/** Options for `createOnnxSession`. */
export interface OnnxSessionOptions {
  /** Intra-op threads (default: `computeThreads()`, i.e. --threads, GRAFT_THREADS or every core). */
  threads?: number;
  /** Use the CUDA provider when installed (default true). */
  cuda?: boolean;
  /** Where a fallback notice goes (default stderr; null for silence). */
  log?: ((line: string) => void) | null;
  /**
   * For a model file: keep onnxruntime's optimized graph here, and load it (without optimizing again) when it
   * exists. Graph optimization is most of a large model's session start-up.
   */
  optimizedPath?: string;
  /**
   * Let onnxruntime plan one memory block per run from the first run's allocations (default true). Off for training
   * steps: on a whole ResNet50 step at batch 16 the planned block comes on top of the arena the first run grew, 1.5 GB
   * more memory (4.1 against 2.6 GB peak) and seconds more on the second step to touch it, for no change in later
   * steps.
   */
  memoryPattern?: boolean;
  /** Let idle intra-op threads spin (default false: spinning threads collapse on a loaded machine and take cores from image decoding). */
  spinning?: boolean;
  /**
   * Profile every operator: onnxruntime writes a Chrome-trace JSON file named `<profile>_<date>.json` when the
   * profiling ends (`session.endProfiling()` or release). For benchmarks and diagnosis; it slows every run a little.
   */
  profile?: string;
}

/** An onnxruntime session and how it runs. */
export interface OnnxSession {
  /** The session. */
  session: Ort.InferenceSession;
  /** Engine label for reports, e.g. `onnxruntime cpu x2`. */
  engine: string;
}

/** Creates a session on a file or an in-memory model; tries CUDA first when installed, then the CPU provider. */
export async function createOnnxSession(model: string | Uint8Array, options: OnnxSessionOptions = {}): Promise<OnnxSession> {
  const ort = loadOnnxRuntime();
  const threads = options.threads === undefined ? computeThreads() : positiveInt('threads', options.threads);
  const base: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableMemPattern: options.memoryPattern !== false,
    logSeverityLevel: 3,
    // Idle intra-op threads sleep instead of spinning, so image decoding running beside a batch gets the cores.
    ...(options.spinning === true ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
    ...(options.profile ? { enableProfiling: true, profileFilePrefix: options.profile } : {}),
  };
  const optimized = typeof model === 'string' && options.optimizedPath ? options.optimizedPath : undefined;
  const create = async (opts: Ort.InferenceSession.SessionOptions) => {
    if (typeof model !== 'string') return ort.InferenceSession.create(model, opts);
    if (!optimized) return ort.InferenceSession.create(model, opts);
    // A large graph with no weights file of its own holds its weights (an earlier graft wrote it): optimized again
    // once, to the form below.
    if ((fs.statSync(optimized, { throwIfNoEntry: false })?.size ?? 0) > 1 << 20 && !weightsFiles(optimized).length) fs.rmSync(optimized, { force: true });
    if (fs.existsSync(optimized)) {
      try {
        return await ort.InferenceSession.create(optimized, { ...opts, graphOptimizationLevel: 'disabled' });
      } catch {
        fs.rmSync(optimized, { force: true }); // written by another onnxruntime, or damaged: optimize again
      }
    }
    // onnxruntime writes the file while creating the session; write it beside and rename, so readers never see a part.
    // Its weights go to a file of their own beside it, named for this writer (the graph names it): a later open
    // then takes them as they lie on disk instead of parsing 100 MB out of the graph (ResNet50: 0.15-0.19 s -> 0.025
    // s). A graph whose weights file went missing fails to load above and is optimized again.
    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const staging = `${optimized}.${tag}.tmp`;
    const weights = `${path.basename(optimized)}.${tag}.weights`;
    const external = { optimized_model_external_initializers_file_name: weights, optimized_model_external_initializers_min_size_in_bytes: '1024' };
    const extra = opts.extra as { session?: Record<string, unknown> } | undefined;
    try {
      const session = await ort.InferenceSession.create(model, { ...opts, optimizedModelFilePath: staging, extra: { ...extra, session: { ...extra?.session, ...external } } });
      if (fs.existsSync(staging)) {
        fs.renameSync(staging, optimized);
        removeOtherWeights(optimized, weights);
      }
      return session;
    } catch (err) {
      fs.rmSync(staging, { force: true });
      fs.rmSync(path.join(path.dirname(optimized), weights), { force: true });
      throw err;
    }
  };
  if (options.cuda !== false && cudaProviderInstalled()) {
    try {
      return { session: await create({ ...base, executionProviders: ['cuda', 'cpu'] }), engine: 'onnxruntime cuda' };
    } catch (err) {
      const log = options.log === undefined ? (l: string) => process.stderr.write(l + '\n') : options.log;
      log?.(`graft: onnxruntime's CUDA provider did not start (${(err as Error).message.split('\n')[0]}); running on CPU.`);
    }
  }
  return { session: await create({ ...base, executionProviders: ['cpu'] }), engine: `onnxruntime cpu x${threads}` };
}

/** The weights files written beside the optimized graph `optimized` (names only). */
function weightsFiles(optimized: string): string[] {
  const prefix = `${path.basename(optimized)}.`;
  return fs.readdirSync(path.dirname(optimized)).filter((e) => e.startsWith(prefix) && e.endsWith('.weights'));
}

/** A weights file younger than this may belong to a writer still about to put its graph in place. */
const WEIGHTS_GRACE_MS = 10 * 60 * 1000;

/**
 * Removes the weights files of earlier optimizations of `optimized` (older runs, writers that were stopped). Files
 * written in the last ten minutes stay: another process optimizing the same graph at the same moment may rename its
 * graph, which names its own weights file, in after this one.
 */
function removeOtherWeights(optimized: string, keep: string): void {
  const dir = path.dirname(optimized);
  for (const entry of weightsFiles(optimized)) {
    if (entry === keep) continue;
    const file = path.join(dir, entry);
    try {
      if (Date.now() - fs.statSync(file).mtimeMs > WEIGHTS_GRACE_MS) fs.rmSync(file, { force: true });
    } catch {
      // gone already, or in use (a platform that cannot remove an open file): a later optimization removes it
    }
  }
}

/** Runs a one-input, one-output session on an NHWC float32 batch. */
export async function runSession(session: Ort.InferenceSession, input: Float32Array, dims: number[]): Promise<Float32Array> {
  const ort = loadOnnxRuntime();
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, dims) };
  const result = await session.run(feeds);
  const out = result[session.outputNames[0]];
  try {
    return out.data as Float32Array;
  } finally {
    for (const t of Object.values(result)) if (t !== out) t.dispose();
  }
}

/** A Runner over a one-input, one-output session; disposing it releases the session. */
export function sessionRunner(session: Ort.InferenceSession, engine: string, shapes: { input: number[]; output: number[] }): Runner {
  const { input: inputShape, output: outputShape } = shapes;
  return {
    engine,
    outputShape,
    run: (input, batch) => runSession(session, input, [batch, ...inputShape]),
    dispose: () => session.release(),
  };
}

/**
 * Runs one zero image: onnxruntime plans its memory on the first run, and a graph it cannot run fails here, where
 * `auto` engine choices can still fall back to tfjs, rather than in the middle of a job. Releases the session on
 * failure.
 */
export async function warmUp(session: Ort.InferenceSession, inputShape: number[], what: string): Promise<void> {
  try {
    await runSession(session, new Float32Array(inputShape.reduce((a, b) => a * b, 1)), [1, ...inputShape]);
  } catch (err) {
    await session.release();
    throw new GraftError(`onnxruntime could not run ${what}: ${(err as Error).message.split('\n')[0]}; use the tfjs engine.`, { cause: err });
  }
}

/**
 * `modelFolderHash`, remembered by the sizes and modification times of model.json and the weight shards in
 * `.onnx-cache/key.json`: reading and hashing 100 MB of weights costs a fifth of a second on every start, a `stat`
 * of each file almost nothing. The hash is recomputed whenever any of them changed.
 */
export function cachedModelFolderHash(modelDir: string): string {
  const jsonFile = path.join(modelDir, MODEL_JSON);
  if (!fs.existsSync(jsonFile)) readModelArtifacts(modelDir); // throws the folder error users know
  const stamp = (files: string[]) =>
    files.map((f) => {
      const st = fs.statSync(path.join(modelDir, f), { throwIfNoEntry: false });
      return `${f}:${st?.size ?? -1}:${st?.mtimeMs ?? -1}`;
    });
  const keyFile = path.join(modelDir, ONNX_CACHE_DIR, 'key.json');
  let shards: string[] = [];
  try {
    const saved = JSON.parse(fs.readFileSync(keyFile, 'utf8')) as { revision: number; stamps: string[]; files: string[]; hash: string };
    shards = saved.files;
    if (saved.revision === EXPORTER_REVISION && JSON.stringify(stamp([MODEL_JSON, ...shards])) === JSON.stringify(saved.stamps)) return saved.hash;
  } catch {
    // no key yet, or an unreadable one: hash below
  }
  const manifest = (JSON.parse(fs.readFileSync(jsonFile, 'utf8')).weightsManifest ?? []) as Array<{ paths: string[] }>;
  shards = manifest.flatMap((g) => g.paths);
  const before = stamp([MODEL_JSON, ...shards]);
  const hash = modelFolderHash(modelDir);
  // Only remember a hash whose files did not change while it was computed.
  if (JSON.stringify(stamp([MODEL_JSON, ...shards])) === JSON.stringify(before)) {
    try {
      fs.mkdirSync(path.dirname(keyFile), { recursive: true });
      fs.writeFileSync(keyFile, JSON.stringify({ revision: EXPORTER_REVISION, files: shards, stamps: before, hash }));
    } catch {
      // a read-only folder just hashes every time
    }
  }
  return hash;
}

/** Hash of what the exported graph depends on: model.json, the weight shards, and the exporter revision. */
export function modelFolderHash(modelDir: string): string {
  const hash = createHash('sha256').update(`graft-onnx-${EXPORTER_REVISION}\n`);
  const jsonFile = path.join(modelDir, MODEL_JSON);
  if (!fs.existsSync(jsonFile)) readModelArtifacts(modelDir); // throws the folder error users know
  const json = fs.readFileSync(jsonFile);
  hash.update(json);
  const manifest = (JSON.parse(json.toString('utf8')).weightsManifest ?? []) as Array<{ paths: string[] }>;
  for (const group of manifest) for (const p of group.paths) if (fs.existsSync(path.join(modelDir, p))) hash.update(fs.readFileSync(path.join(modelDir, p)));
  return hash.digest('hex').slice(0, 32);
}

/**
 * The model folder's ONNX graph: `<dir>/.onnx-cache/<hash>.onnx`, exported and written atomically on first use.
 * Returns the bytes instead when the folder is read-only. Older entries are removed.
 */
export async function cachedOnnxModel(modelDir: string): Promise<string | Uint8Array> {
  const cache = path.join(modelDir, ONNX_CACHE_DIR);
  const file = path.join(cache, `${cachedModelFolderHash(modelDir)}.onnx`);
  if (fs.existsSync(file)) return file;
  const { exportOnnx } = await import('../onnx/export');
  const { bytes } = await exportOnnx(readModelArtifacts(modelDir));
  try {
    await writeFileAtomic(file, bytes);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') return bytes;
    throw err;
  }
  for (const entry of fs.readdirSync(cache)) {
    // This folder's exports are named by their hash; `graft features` keeps its own (features-*) beside them.
    if (/^[0-9a-f]{32}\./.test(entry) && !entry.startsWith(path.basename(file, '.onnx'))) fs.rmSync(path.join(cache, entry), { force: true });
  }
  return file;
}

/** Options for `createOnnxPredictor`: the session's. */
export type OnnxPredictorOptions = OnnxSessionOptions;
/**
 * Where onnxruntime's optimized form of a cached export is kept: beside it, named for this onnxruntime, platform and
 * CPU, because level-`all` optimizations choose kernels and layouts for the machine they run on.
 */
export function optimizedModelPath(exportFile: string, threads: number): string {
  const ort = loadOnnxRuntime();
  const cpu = createHash('sha1').update(`${ort.env.versions.common} ${process.platform} ${process.arch} ${os.cpus()[0]?.model ?? ''} ${threads}`).digest('hex').slice(0, 10);
  return exportFile.replace(/\.onnx$/, `.${cpu}.ort.onnx`);
}


/** A Predictor running the model folder's exported graph on onnxruntime. */
export async function createOnnxPredictor(modelDir: string, options: OnnxPredictorOptions = {}): Promise<Predictor> {
  loadOnnxRuntime();
  const meta = readGraftMeta(modelDir);
  const model = await cachedOnnxModel(modelDir);
  const threads = options.threads ?? computeThreads();
  const optimizedPath = typeof model === 'string' ? optimizedModelPath(model, threads) : undefined;
  const { session, engine } = await createOnnxSession(model, { ...options, optimizedPath });
  const [h, w, c] = meta.inputShape;
  await warmUp(session, [h, w, c], modelDir);
  return runnerPredictor(sessionRunner(session, engine, { input: [h, w, c], output: [meta.classNames.length] }), meta);
}

/** One line for `graft doctor`: onnxruntime version and execution providers, or why it does not load. */
export async function onnxRuntimeDoctorLine(): Promise<string> {
  const { ort, reason } = tryLoadOnnxRuntime();
  if (!ort) return `no: ${reason}`;
  const cuda = cudaProviderInstalled()
    ? 'cuda (libraries installed; used when the CUDA 12 runtime loads)'
    : 'cuda not installed (see README: ONNX and CUDA)';
  return `ok ${ort.env.versions.common}, providers: cpu x${os.availableParallelism()}, ${cuda}`;
}
