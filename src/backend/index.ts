/**
 * Backend selection: the one place that knows which tfjs backends exist, how to load each and why one failed.
 * `auto` tries tfjs-node-gpu, tfjs-node, wasm, then cpu, and reports on stderr what it got and what it skipped.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { GraftError, oneOf, positiveInt } from '../errors';
import { registerWasmKernelsFor } from './wasm-kernels';
import { canThreadWasm, registerWasmThreads, wasmThreadCount } from './wasm-threads';

export { wasmThreadCount } from './wasm-threads';

import { BACKEND_CHOICES, BackendChoice } from './choices';
import { setComputeThreads } from './compute-threads';

export { BACKEND_CHOICES } from './choices';
export type { BackendChoice } from './choices';
export { computeThreads } from './compute-threads';

/** One way of getting a backend, fastest first. */
interface Candidate {
  /** Name shown to users. */
  label: string;
  /** The tfjs backend name it registers. */
  backend: 'tensorflow' | 'wasm' | 'cpu';
  /** The npm package that provides it. */
  pkg: string;
  /** Which user choice it answers. */
  choice: Exclude<BackendChoice, 'auto'>;
  /** What to do when it cannot load. */
  install: string;
}

const CANDIDATES: readonly Candidate[] = [
  {
    label: 'tensorflow (GPU, tfjs-node-gpu)',
    backend: 'tensorflow',
    pkg: '@tensorflow/tfjs-node-gpu',
    choice: 'tensorflow',
    install: 'npm install @tensorflow/tfjs-node-gpu@4.22.0 (needs CUDA 11.2 and cuDNN 8.1, and network access to download libtensorflow)',
  },
  {
    label: 'tensorflow (CPU, tfjs-node)',
    backend: 'tensorflow',
    pkg: '@tensorflow/tfjs-node',
    choice: 'tensorflow',
    install: 'npm install @tensorflow/tfjs-node@4.22.0 (its install script downloads libtensorflow, so it needs access beyond the npm registry)',
  },
  {
    label: 'wasm (XNNPACK)',
    backend: 'wasm',
    pkg: '@tensorflow/tfjs-backend-wasm',
    choice: 'wasm',
    install: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0',
  },
  { label: 'cpu (pure JavaScript)', backend: 'cpu', pkg: '@tensorflow/tfjs', choice: 'cpu', install: 'npm install @tensorflow/tfjs@4.22.0' },
];

/** Result of trying one backend. */
export interface BackendProbe {
  /** Human-readable name. */
  label: string;
  /** tfjs backend name. */
  backend: string;
  /** Package that provides it. */
  pkg: string;
  /** Whether it loaded and ran an op. */
  ok: boolean;
  /** Why it did not load, with what to do. */
  reason?: string;
}

/** The backend graft is running on after `initBackend`. */
export interface BackendInfo {
  /** tfjs backend name (`tensorflow`, `wasm`, `cpu`). */
  backend: string;
  /** Human-readable name. */
  label: string;
  /** Faster candidates that were tried and skipped, with reasons. */
  skipped: BackendProbe[];
  /** Threads the backend computes on (wasm: its XNNPACK pool; others: 1, they manage their own). */
  threads: number;
}

/** Options for `initBackend`. */
export interface InitBackendOptions {
  /** The request; defaults to `GRAFT_BACKEND`, then `auto`. */
  backend?: string;
  /** Where the one-line choice report goes; defaults to stderr. Pass `null` to stay silent. */
  log?: ((line: string) => void) | null;
  /**
   * Threads for the wasm backend (defaults to `GRAFT_THREADS`, then every core). Above 1, graft loads tfjs's threaded
   * SIMD build, which tfjs itself loads only in browsers; 1 is tfjs's stock single-threaded build. Worker threads
   * always run 1 (graft's worker pools split work across cores themselves).
   */
  threads?: number;
}

let current: BackendInfo | undefined;
const postInitHooks: Array<(backend: string) => void | Promise<void>> = [];

/** Registers work to run whenever a backend becomes active (e.g. graft's extra kernels for wasm). */
export function onBackendReady(hook: (backend: string) => void | Promise<void>): void {
  postInitHooks.push(hook);
}

// graft's wasm kernels (convolution gradients, fast transposed matmul) must be in place before any training op.
onBackendReady(registerWasmKernelsFor);

/** Explains a failed `require` of a tfjs-node package in the user's terms. */
function explainLoadError(c: Candidate, err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string })?.code;
  if (code === 'MODULE_NOT_FOUND' && msg.includes(c.pkg)) return `package ${c.pkg} is not installed; to add it: ${c.install}`;
  if (/libcud|libcublas|libcufft|libcurand|libcusolver|libcusparse|cudnn/i.test(msg)) {
    return `CUDA / cuDNN libraries not found (${firstLine(msg)}); install CUDA 11.2 and cuDNN 8.1 and put them on LD_LIBRARY_PATH`;
  }
  if (/libtensorflow/i.test(msg) || /tfjs_binding/.test(msg)) {
    return `libtensorflow is missing (its install script could not download it: ${firstLine(msg)}); reinstall ${c.pkg} where its download works`;
  }
  return `${c.pkg} failed to load: ${firstLine(msg)}`;
}

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 200);
}

/** Makes one candidate the active tfjs backend, or says why it cannot be. */
async function activate(c: Candidate, threads = 1): Promise<BackendProbe> {
  const probe: BackendProbe = { label: c.label, backend: c.backend, pkg: c.pkg, ok: false };
  try {
    if (c.backend === 'tensorflow') {
      require(c.pkg);
    } else if (c.backend === 'wasm') {
      require('@tensorflow/tfjs-backend-wasm');
      registerWasmThreads(canThreadWasm() ? threads : 1);
    }
  } catch (err) {
    probe.reason = explainLoadError(c, err);
    return probe;
  }
  try {
    let ready = await tf.setBackend(c.backend);
    if (!ready && c.backend === 'wasm' && threads > 1) {
      // The threaded build failed to start (no shared memory, a platform without worker_threads, ...): the
      // stock single-threaded build still works, and the report says why it is one thread.
      probe.reason = 'threaded wasm could not start, using one thread';
      registerWasmThreads(1);
      ready = await tf.setBackend(c.backend);
    }
    if (!ready) {
      probe.reason = `tfjs could not initialise the ${c.backend} backend`;
      return probe;
    }
    if (c.backend === 'cpu') {
      // The cpu backend nags once in Node about tfjs-node; graft has already reported its choice.
      (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
    }
    tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
    for (const hook of postInitHooks) await hook(c.backend);
    probe.ok = true;
  } catch (err) {
    probe.reason = `${c.backend} failed to run: ${firstLine(err instanceof Error ? err.message : String(err))}`;
  }
  return probe;
}

/**
 * Selects and activates a backend. `auto` takes the fastest that loads; an explicit choice that cannot load
 * is an error saying what to install, never a silent fallback.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const requested = oneOf(
    options.backend !== undefined ? '--backend' : 'GRAFT_BACKEND',
    options.backend ?? process.env.GRAFT_BACKEND ?? 'auto',
    BACKEND_CHOICES,
  );
  const log = options.log === undefined ? (line: string) => process.stderr.write(`${line}\n`) : options.log;
  const threads = positiveInt(options.threads !== undefined ? 'threads' : 'GRAFT_THREADS', options.threads ?? process.env.GRAFT_THREADS ?? coreCount());
  setComputeThreads(threads);
  const wantsWasm = requested === 'wasm' || (requested === 'auto' && current?.backend === 'wasm');
  if (current && (requested === 'auto' || current.backend === requested) && !(wantsWasm && current.threads !== expectedWasmThreads(threads))) {
    return current;
  }

  const candidates = CANDIDATES.filter((c) => requested === 'auto' || c.choice === requested);
  const skipped: BackendProbe[] = [];
  for (const c of candidates) {
    const probe = await activate(c, threads);
    if (probe.ok) {
      current = { backend: c.backend, label: c.label, skipped, threads: wasmThreadCount() };
      if (log) {
        const why = skipped.length ? ` (skipped ${skipped.map((s) => `${s.label}: ${s.reason}`).join('; ')})` : '';
        const note = probe.reason ? ` (${probe.reason})` : current.threads > 1 ? ` on ${current.threads} threads` : '';
        log(`graft: using backend ${c.label}${note}${why}`);
      }
      return current;
    }
    skipped.push(probe);
  }
  const reasons = skipped.map((s) => `${s.label}: ${s.reason}`).join('; ');
  throw new GraftError(`backend ${requested} cannot load: ${reasons}. Install it, or use --backend auto.`);
}

/** The number of cores Node reports, the default thread count. */
export function coreCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** The thread count a wasm backend initialised with `threads` reports in this thread. */
function expectedWasmThreads(threads: number): number {
  return canThreadWasm() ? threads : 1;
}

/** The backend chosen by `initBackend`, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/** Everything `graft doctor` reports about the machine and the backends. */
export interface DoctorReport {
  /** Node.js version. */
  node: string;
  /** tfjs version. */
  tfjs: string;
  /** Each candidate backend, whether it loads and why not. */
  backends: BackendProbe[];
  /** Backend `auto` would choose. */
  chosen?: string;
  /** Whether the wasm backend has SIMD. */
  wasmSimd?: boolean;
  /** Threads the wasm backend computes on (graft's threaded build when above 1). */
  wasmThreads?: number;
  /** Logical CPU count. */
  cpus: number;
  /** CPU model name. */
  cpuModel: string;
  /** Lines from other engines' checks (e.g. onnxruntime and its execution providers), by name. */
  extra: Record<string, string>;
}

/** A line of `graft doctor` for another engine: its name and a check returning a one-line status. */
export interface DoctorCheck {
  /** Label, e.g. `onnxruntime`. */
  name: string;
  /** Returns the one-line status. */
  check: () => Promise<string>;
}

/**
 * Tries every backend in turn (each load has side effects on tfjs, so this is for `doctor`, not for runs),
 * then leaves the fastest working one active.
 */
export async function probeBackends(options: { threads?: number; checks?: DoctorCheck[] } = {}): Promise<DoctorReport> {
  const threads = positiveInt('threads', options.threads ?? process.env.GRAFT_THREADS ?? coreCount());
  const backends: BackendProbe[] = [];
  for (const c of CANDIDATES) backends.push(await activate(c, threads));
  let wasmSimd: boolean | undefined;
  let wasmThreads: number | undefined;
  if (backends.some((b) => b.backend === 'wasm' && b.ok)) {
    await tf.setBackend('wasm');
    wasmSimd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    wasmThreads = wasmThreadCount();
  }
  const best = backends.find((b) => b.ok);
  if (best) await tf.setBackend(best.backend);
  const cpus = os.cpus();
  const extra: Record<string, string> = {};
  for (const { name, check } of options.checks ?? []) {
    try {
      extra[name] = await check();
    } catch (err) {
      extra[name] = `check failed: ${firstLine(err instanceof Error ? err.message : String(err))}`;
    }
  }
  return {
    extra,
    node: process.version,
    tfjs: tf.version.tfjs,
    backends,
    chosen: best?.label,
    wasmSimd,
    wasmThreads,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
  };
}
