/**
 * The real-data proof (issues 8 and 18): Fashion-MNIST from Debian's dataset-fashion-mnist IDX files, using only
 * graft's public API (the calls the CLI makes) and, for the full-data run, the `graft` CLI itself.
 *
 * Parts (each can run as its own process with its own --work folder; --merge joins their results into one report):
 *   source-0-4, source-5-9  simple_cnn from scratch on one half of the classes (all 30,000 training images of it),
 *                           saved as models/fashion-mnist-0-4 and models/fashion-mnist-5-9 (the transfer trunks).
 *   grid-0-4, grid-5-9      transfer from that trunk to the other half with n = 5, 10, 20, 50 labelled images per
 *                           class: (a) from scratch, (b) frozen trunk + new head, (c) (b) then everything unfrozen
 *                           with discriminative rates; tested on all 5,000 test images of the target classes.
 *   large-source            resnet50 at 32x32x3 (images upsampled, grey replicated to 3 channels) from scratch on
 *                           classes 0-4, a subset of the training images, its epoch chosen on a validation split;
 *   large-grid              it as a source of transfer to classes 5-9, with the same fixed recipe as simple_cnn's grid.
 *   full, full-noaug        `graft train --config docs/recipes/fashion-mnist-full.json` on all ten classes (IDX read
 *                           directly), then `graft evaluate` on the 10,000 test images; without augmentation too.
 *   full-val                the recipe with 10% of the training images held out, for choosing epochs and width
 *                           (the test images are not used).
 *   report                  docs/RESULTS.md and the plots.
 *
 *   npm run experiment -- [--work out/experiment] [--only grid-0-4,report] [--seeds 5] [--first-seed 1]
 *                         [--sizes 5,10,20,50] [--methods scratch,frozen,finetune] [--trunk-epochs 8] [--trunk-per-class N]
 *                         [--models models] [--large-trunk <work>/runs/large-0-4]
 *                         [--merge <work folders>] [--quick]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { initBackend, exportFashionMnist, train, evaluate, FASHION_MNIST_DIR } from '../src';
import { createRng } from '../src/util/rng';
import { writeSvgAsPng, escapeXml } from '../src/util/svg';
import type { EvaluationReport, TrainOptions, TrainResult } from '../src';

const ROOT = path.resolve(__dirname, '..', fs.existsSync(path.resolve(__dirname, '..', 'package.json')) ? '' : '..');
const PARTS = ['source-0-4', 'source-5-9', 'grid-0-4', 'grid-5-9', 'large-source', 'large-grid', 'full-val', 'full', 'full-noaug', 'report'] as const;
type Part = (typeof PARTS)[number];
const METHODS = ['scratch', 'frozen', 'finetune'] as const;
type Method = (typeof METHODS)[number];
/** Source half -> target half. */
const HALVES = { '0-4': '5-9', '5-9': '0-4' } as const;
type Half = keyof typeof HALVES;
const RECIPE = path.join(ROOT, 'docs', 'recipes', 'fashion-mnist-full.json');
/**
 * The larger trunk: an ImageNet-style family at a modest size, trained on a subset of classes 0-4 so that it and its
 * grid fit in about half an hour of 2 cores; the epoch kept is the one with the lowest validation loss (save-best).
 */
const LARGE = { arch: 'resnet50', inputShape: [32, 32, 3], perClass: 600, epochs: 4, lr: 1e-3, batchSize: 32 };

interface Args {
  /** Scratch folder for exported PNGs, per-run models and results.json. */
  work: string;
  /** Parts to run. */
  only: Set<Part>;
  /** Seeds of the target grid: firstSeed .. firstSeed + seeds - 1. */
  seeds: number;
  /** First seed of the grid. */
  firstSeed: number;
  /** Labelled images per class in the grid. */
  sizes: number[];
  /** Target-task methods to run (default all). */
  methods: Method[];
  /** Tiny settings to smoke-test the script end to end. */
  quick: boolean;
  /** Other work folders whose results.json are merged into the report (parts run as separate processes). */
  merge: string[];
  /** Folder of the trunks (default models/ of the repository). */
  models: string;
  /** Epochs of the simple_cnn trunks (default 8, the recipe of models/fashion-mnist-0-4). */
  trunkEpochs: number;
  /** Training images per class of the simple_cnn trunks (default all 6,000). */
  trunkPerClass?: number;
  /** Model folder of the larger trunk that large-grid starts from (default what large-source writes in --work). */
  largeTrunk?: string;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  const known = ['--work', '--only', '--seeds', '--first-seed', '--sizes', '--methods', '--quick', '--merge', '--models', '--trunk-epochs', '--trunk-per-class', '--large-trunk'];
  for (const a of argv) if (a.startsWith('--') && !known.includes(a)) throw new Error(`unknown option ${a}; valid: ${known.join(', ')}`);
  const list = (name: string, fallback: string) => (get(name) ?? fallback).split(',').filter(Boolean);
  const only = list('--only', PARTS.join(',')).map((p) => {
    if (!(PARTS as readonly string[]).includes(p)) throw new Error(`unknown part ${p}; valid: ${PARTS.join(', ')}`);
    return p as Part;
  });
  return {
    work: path.resolve(get('--work') ?? path.join(ROOT, 'out', 'experiment')),
    only: new Set(only),
    seeds: Number(get('--seeds') ?? 5),
    firstSeed: Number(get('--first-seed') ?? 1),
    sizes: list('--sizes', '5,10,20,50').map(Number),
    methods: list('--methods', METHODS.join(',')).map((m) => {
      if (!(METHODS as readonly string[]).includes(m)) throw new Error(`unknown method ${m}; valid: ${METHODS.join(', ')}`);
      return m as Method;
    }),
    quick: argv.includes('--quick'),
    merge: list('--merge', '').map((d) => path.resolve(d)),
    models: path.resolve(get('--models') ?? path.join(ROOT, 'models')),
    trunkEpochs: Number(get('--trunk-epochs') ?? 8),
    trunkPerClass: get('--trunk-per-class') === undefined ? undefined : Number(get('--trunk-per-class')),
    largeTrunk: get('--large-trunk') === undefined ? undefined : path.resolve(get('--large-trunk') as string),
  };
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** The 1-minute load average: the machine is shared, so every wall time is recorded with it. */
function load(): number {
  return os.loadavg()[0];
}

/** Exports one slice of Fashion-MNIST as PNG class folders once (through the same function as `graft dataset`). */
async function exportOnce(out: string, options: { classes: string[]; split: 'train' | 'test'; perClass?: number }): Promise<string> {
  if (!fs.existsSync(out)) {
    log(`graft dataset fashion-mnist --out ${out} --classes ${options.classes.join(',')} --split ${options.split}${options.perClass ? ` --per-class ${options.perClass}` : ''}`);
    await exportFashionMnist({ out, ...options });
  }
  return out;
}

/** A CSV manifest with `perClass` images of each class drawn from `pool` by `seed`. */
function sampleManifest(pool: string, perClass: number, seed: number, file: string): string {
  const rng = createRng(`subset/${perClass}/${seed}`);
  const lines = ['path,label'];
  for (const cls of fs.readdirSync(pool).sort()) {
    const files = fs.readdirSync(path.join(pool, cls)).sort();
    for (const f of rng.shuffle(files).slice(0, perClass)) lines.push(`${path.relative(path.dirname(file), path.join(pool, cls, f))},${cls}`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** What one timed run measured, with the engine of each half and the load around it. */
interface Timed {
  accuracy: number;
  f1: number;
  seconds: number;
  testImages: number;
  trainEngine: string;
  evalEngine: string;
  loadBefore: number;
  loadAfter: number;
}

/**
 * What ran the training steps, from the model folder's graft.json: the step engine of each stage (one name when every
 * stage used the same), and the tfjs backend when a stage stepped on tfjs.
 */
function trainEngineOf(out: string): string {
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'graft.json'), 'utf8')) as { training: { stepEngines?: Record<string, string>; backend?: string } };
  const engines = meta.training.stepEngines ?? {};
  const name = (e: string) => (e.startsWith('tfjs') && meta.training.backend ? `tfjs ${meta.training.backend}` : e);
  const names = [...new Set(Object.values(engines).map(name))];
  if (names.length <= 1) return names[0] ?? `tfjs ${meta.training.backend ?? '?'}`;
  return Object.entries(engines).map(([stage, e]) => `${stage}: ${name(e)}`).join('; ');
}

/** Trains one configuration and evaluates it on a test folder. */
async function runOne(options: TrainOptions, test: string): Promise<Timed & { report: EvaluationReport; history: TrainResult['history'] }> {
  const loadBefore = load();
  const start = Date.now();
  const { history } = await train({ progress: 'none', log: null, ...options });
  const trainEngine = trainEngineOf(options.out);
  // The test folders are graft's own PNG exports: checking every file before scoring would decode each twice.
  const report = await evaluate({ model: options.out, data: test, batchSize: 256, verify: 'none', log: null });
  return {
    report,
    history,
    accuracy: report.metrics.accuracy,
    f1: report.metrics.averages.macro.f1,
    seconds: (Date.now() - start) / 1000,
    testImages: report.metrics.samples,
    trainEngine,
    evalEngine: report.engine ?? 'tfjs wasm',
    loadBefore,
    loadAfter: load(),
  };
}

/** Epochs per target run: more for fewer images, so each run sees 1,000 to 3,750 image-steps. */
function epochsFor(n: number, quick: boolean): number {
  return quick ? 2 : n <= 5 ? 40 : n <= 10 ? 30 : n <= 20 ? 25 : 15;
}

function targetOptions(method: Method, data: string, out: string, seed: number, trunk: string, n: number, quick: boolean, scratch: Partial<TrainOptions>): TrainOptions {
  const epochs = epochsFor(n, quick);
  const common: TrainOptions = { data, out, seed, valSplit: 0, batchSize: 32, augment: null, lr: 2e-3 };
  if (method === 'scratch') return { ...common, arch: 'simple_cnn', weights: null, epochs, ...scratch };
  if (method === 'frozen') return { ...common, weights: trunk, headEpochs: epochs, epochs: 0 };
  return { ...common, weights: trunk, headEpochs: Math.ceil(epochs / 2), epochs: Math.floor(epochs / 2), unfreeze: 'all', lrMult: 10 };
}

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

/** One target-task run. */
interface GridRow {
  /** Source half of the trunk (the target is the other half). */
  source: Half;
  /** Trunk family: `simple_cnn` or the larger trunk. */
  trunk: string;
  n: number;
  method: Method;
  seed: number;
  accuracy: number;
  f1: number;
  seconds: number;
  testImages: number;
  /** What ran the training steps (the rows of the first rounds, before the compiled step existed: tfjs wasm). */
  trainEngine: string;
  evalEngine: string;
  /** 1-minute load average before and after the run (not recorded by the first rounds). */
  load?: [number, number];
}

interface Results {
  sources: Record<string, Record<string, unknown>>;
  grid: GridRow[];
  full: Record<string, Record<string, unknown>>;
}

const same = (a: GridRow, b: Pick<GridRow, 'source' | 'trunk' | 'n' | 'method' | 'seed'>) =>
  a.source === b.source && a.trunk === b.trunk && a.n === b.n && a.method === b.method && a.seed === b.seed;

const COLOURS: Record<Method, string> = { scratch: '#d62728', frozen: '#1f77b4', finetune: '#2ca02c' };
const SHORT: Record<Method, string> = { scratch: 'from scratch', frozen: 'frozen trunk + new head', finetune: 'fine-tuned, discriminative' };
const LABELS: Record<Method, string> = { scratch: '(a) from scratch', frozen: '(b) frozen trunk + new head', finetune: '(c) (b) then unfreeze, discriminative rates' };

/** Accuracy versus labelled images per class: one panel per direction, one line per method, ±1 std bars. */
function gridChart(rows: GridRow[], sizes: number[]): string {
  const PW = 380, H = 400, L = 60, T = 60, B = 50, GAP = 30, LEG = 230;
  const W = L + 2 * PW + GAP + LEG;
  const accs = rows.map((r) => r.accuracy);
  const lo = Math.max(0, Math.floor(Math.min(...accs) * 20 - 1e-9) / 20), hi = Math.min(1, Math.ceil(Math.max(...accs) * 20) / 20);
  const y = (v: number) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const parts: string[] = [];
  (['0-4', '5-9'] as Half[]).forEach((source, panel) => {
    const x0 = L + panel * (PW + GAP);
    const x = (i: number) => x0 + 10 + ((PW - 20) * i) / Math.max(1, sizes.length - 1);
    for (let v = lo; v <= hi + 1e-9; v += 0.05) {
      parts.push(`<line x1="${x0}" x2="${x0 + PW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
      if (panel === 0) parts.push(`<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end" font-size="12">${(v * 100).toFixed(0)}%</text>`);
    }
    sizes.forEach((n, i) => parts.push(`<text x="${x(i)}" y="${H - B + 20}" text-anchor="middle" font-size="12">${n}</text>`));
    parts.push(`<text x="${x0 + PW / 2}" y="${T - 12}" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(`trunk ${source} -> classes ${HALVES[source]}`)}</text>`);
    parts.push(`<text x="${x0 + PW / 2}" y="${H - 10}" text-anchor="middle" font-size="13">labelled training images per class</text>`);
    for (const method of METHODS) {
      const pts = sizes
        .map((n, i) => ({ i, ...meanStd(rows.filter((r) => r.source === source && r.trunk === 'simple_cnn' && r.n === n && r.method === method).map((r) => r.accuracy)) }))
        .filter((p) => Number.isFinite(p.mean));
      if (!pts.length) continue;
      parts.push(`<polyline fill="none" stroke="${COLOURS[method]}" stroke-width="2" points="${pts.map((p) => `${x(p.i)},${y(p.mean)}`).join(' ')}"/>`);
      for (const p of pts) {
        parts.push(`<line x1="${x(p.i)}" x2="${x(p.i)}" y1="${y(p.mean - p.std)}" y2="${y(p.mean + p.std)}" stroke="${COLOURS[method]}"/><circle cx="${x(p.i)}" cy="${y(p.mean)}" r="3" fill="${COLOURS[method]}"/>`);
      }
    }
  });
  METHODS.forEach((method, i) => {
    const lx = L + 2 * PW + GAP + 15, ly = T + 10 + i * 20;
    parts.push(`<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${COLOURS[method]}" stroke-width="2"/><text x="${lx + 36}" y="${ly + 4}" font-size="12">${escapeXml(SHORT[method])}</text>`);
  });
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Fashion-MNIST transfer between halves: test accuracy (mean, ±1 std over seeds)</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>`;
}

function pct(v: number): string {
  return (v * 100).toFixed(1);
}

/** Runs `graft <args>` from this checkout, as a user would, and returns its stdout. */
function graft(args: string[]): string {
  log(`graft ${args.join(' ')}`);
  return execFileSync(process.execPath, [path.join(ROOT, 'bin', 'graft'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** `graft train --config <recipe>` on the IDX folder, then `graft evaluate` on the test IDX file; timed together. */
function fullRun(work: string, name: string, extra: string[], quick?: { train: string; test: string }): Record<string, unknown> {
  const out = path.join(work, 'runs', name);
  const reportFile = path.join(work, 'runs', `${name}-report.json`);
  fs.rmSync(out, { recursive: true, force: true });
  // --quick smoke-tests the same commands on small PNG exports for one epoch.
  const trainData = quick?.train ?? FASHION_MNIST_DIR;
  const testData = quick?.test ?? path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz');
  const trainArgs = ['train', '--config', path.relative(process.cwd(), RECIPE), '--data', trainData, '--out', out, ...extra, ...(quick ? ['--epochs', '1'] : [])];
  // The recipe's evaluation: the mirror as a second view (chosen on the validation split; docs/recipes/README.md).
  const evalArgs = ['evaluate', '--model', out, '--data', testData, '--batch-size', '256', '--tta', '--out', reportFile, '--format', 'json'];
  const loadBefore = load();
  const start = Date.now();
  graft(trainArgs);
  const trainSeconds = (Date.now() - start) / 1000;
  graft(evalArgs);
  const seconds = (Date.now() - start) / 1000;
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as EvaluationReport;
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'graft.json'), 'utf8')) as { training: { epochs: number; data: Record<string, number> }; metrics?: Record<string, number> };
  const bytes = fs.readdirSync(out).filter((f) => f === 'model.json' || f.endsWith('.bin')).reduce((s, f) => s + fs.statSync(path.join(out, f)).size, 0);
  return {
    command: `graft ${trainArgs.join(' ')} && graft ${evalArgs.join(' ')}`.replaceAll(work, '<work>'),
    accuracy: report.metrics.accuracy,
    f1: report.metrics.averages.macro.f1,
    testImages: report.metrics.samples,
    seconds,
    trainSeconds,
    loadBefore,
    loadAfter: load(),
    epochs: meta.training.epochs,
    trainImages: meta.training.data.train,
    valAccuracy: meta.metrics?.val_accuracy ?? null,
    trainEngine: trainEngineOf(out),
    evalEngine: report.engine,
    modelBytes: bytes,
    out,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const backend = await initBackend({ log: null });
  log(`backend ${backend.label}; work folder ${args.work}; load ${load().toFixed(2)}`);
  const data = path.join(args.work, 'data');
  const resultsFile = path.join(args.work, 'results.json');
  fs.mkdirSync(args.work, { recursive: true });
  const results: Results = fs.existsSync(resultsFile) ? JSON.parse(fs.readFileSync(resultsFile, 'utf8')) : { sources: {}, grid: [], full: {} };
  results.sources ??= {};
  results.full ??= {};
  results.grid = (results.grid ?? []).filter((r) => r.source !== undefined);
  // Rows from before the compiled onnxruntime step existed did not record their engine: tfjs wasm trained them all.
  for (const r of results.grid) r.trainEngine ??= 'tfjs wasm';
  const persist = () => fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2));
  const trunkDir = (half: Half) => path.join(args.models, `fashion-mnist-${half}`);
  const largeDir = args.largeTrunk ?? path.join(args.work, 'runs', 'large-0-4');

  for (const half of ['0-4', '5-9'] as Half[]) {
    if (!args.only.has(`source-${half}`)) continue;
    // The recipe models/fashion-mnist-0-4 was made with (docs/RESULTS.md, issue 8); only --trunk-epochs may change it.
    const epochs = args.quick ? 1 : args.trunkEpochs;
    const perClass = args.quick ? 200 : args.trunkPerClass;
    const srcTrain = await exportOnce(path.join(data, `train-${half}${perClass ? `-first${perClass}` : ''}`), { classes: [half], split: 'train', perClass });
    const srcTest = await exportOnce(path.join(data, `test-${half}`), { classes: [half], split: 'test', perClass: args.quick ? 100 : undefined });
    log(`source: simple_cnn from scratch on classes ${half} -> ${trunkDir(half)}`);
    const r = await runOne(
      { data: srcTrain, arch: 'simple_cnn', weights: null, out: trunkDir(half), epochs, batchSize: 64, lr: 2e-3, valSplit: 0.1, seed: 0, progress: 'lines' },
      srcTest,
    );
    const { report, history, ...timed } = r;
    void report;
    void history;
    results.sources[half] = { arch: 'simple_cnn', epochs, trainImages: Math.round(0.9 * 5 * (perClass ?? 6000)), ...timed };
    log(`source ${half} test accuracy ${pct(r.accuracy)}% (${r.seconds.toFixed(0)} s, load ${r.loadBefore.toFixed(1)} -> ${r.loadAfter.toFixed(1)})`);
    persist();
  }

  if (args.only.has('large-source')) {
    const perClass = args.quick ? 40 : LARGE.perClass;
    const epochs = args.quick ? 2 : LARGE.epochs;
    const srcTrain = await exportOnce(path.join(data, `train-0-4-first${perClass}`), { classes: ['0-4'], split: 'train', perClass });
    // The same 5,000 test images as the simple_cnn trunk on classes 0-4.
    const srcTest = await exportOnce(path.join(data, 'test-0-4'), { classes: ['0-4'], split: 'test', perClass: args.quick ? 100 : undefined });
    log(`large source: ${LARGE.arch} at ${LARGE.inputShape.join('x')} from scratch on ${perClass} images per class of 0-4 -> ${largeDir}`);
    // Save-best on the held-out 10%: the epoch kept is chosen on validation loss, never on the test images.
    const { report, history, ...timed } = await runOne(
      { data: srcTrain, arch: LARGE.arch, weights: null, inputShape: LARGE.inputShape, out: largeDir, epochs, batchSize: LARGE.batchSize, lr: LARGE.lr, valSplit: 0.1, saveBest: true, seed: 0, progress: 'lines' },
      srcTest,
    );
    void report;
    const best = history.reduce((a, b) => ((b.val_loss ?? Infinity) < (a.val_loss ?? Infinity) ? b : a));
    results.sources[`${LARGE.arch}-0-4`] = {
      arch: LARGE.arch, inputShape: LARGE.inputShape, perClass, epochs, bestEpoch: best.epoch, valAccuracy: best.val_accuracy, trainImages: Math.round(perClass * 5 * 0.9), ...timed,
    };
    log(`large source: best epoch ${best.epoch} of ${epochs} on validation (${pct(best.val_accuracy ?? NaN)}%); test accuracy ${pct(timed.accuracy)}% (${timed.seconds.toFixed(0)} s, ${timed.trainEngine})`);
    persist();
  }

  const grids: Array<{ source: Half; trunk: string; dir: string; test: { perClass?: number } }> = [];
  for (const half of ['0-4', '5-9'] as Half[]) if (args.only.has(`grid-${half}`)) grids.push({ source: half, trunk: 'simple_cnn', dir: trunkDir(half), test: {} });
  if (args.only.has('large-grid')) grids.push({ source: '0-4', trunk: LARGE.arch, dir: largeDir, test: {} });
  for (const g of grids) {
    const target = HALVES[g.source];
    const pool = await exportOnce(path.join(data, `pool-${target}`), { classes: [target], split: 'train', perClass: 1000 });
    const test = await exportOnce(path.join(data, `test-${target}`), { classes: [target], split: 'test', perClass: args.quick ? 100 : undefined });
    // The larger trunk is only a source of transfer: scratch is the simple_cnn row of the same grid.
    const methods = g.trunk === 'simple_cnn' ? args.methods : args.methods.filter((m) => m !== 'scratch');
    for (let seed = args.firstSeed; seed < args.firstSeed + args.seeds; seed++) {
      for (const n of args.sizes) {
        const manifest = sampleManifest(pool, n, seed, path.join(args.work, 'manifests', `${target}-n${n}-seed${seed}.csv`));
        for (const method of methods) {
          const key = { source: g.source, trunk: g.trunk, n, method, seed };
          if (results.grid.some((r) => same(r, key))) continue;
          const out = path.join(args.work, 'runs', `${g.trunk}-${g.source}-n${n}-${method}-seed${seed}`);
          const r = await runOne(targetOptions(method, manifest, out, seed, g.dir, n, args.quick, {}), test);
          results.grid.push({ ...key, accuracy: r.accuracy, f1: r.f1, seconds: r.seconds, testImages: r.testImages, trainEngine: r.trainEngine, evalEngine: r.evalEngine, load: [r.loadBefore, r.loadAfter] });
          fs.rmSync(out, { recursive: true, force: true });
          log(`${g.trunk} ${g.source}->${target} n=${n} ${method} seed=${seed}: accuracy ${pct(r.accuracy)}% (${r.seconds.toFixed(0)} s, load ${r.loadAfter.toFixed(1)}, ${r.trainEngine})`);
          persist();
        }
      }
    }
  }

  const quickFull = args.quick && ['full-val', 'full', 'full-noaug'].some((p) => args.only.has(p as Part))
    ? {
        train: await exportOnce(path.join(data, 'quick-train'), { classes: ['0-9'], split: 'train', perClass: 20 }),
        test: await exportOnce(path.join(data, 'quick-test'), { classes: ['0-9'], split: 'test', perClass: 20 }),
      }
    : undefined;
  if (args.only.has('full-val')) {
    results.full.val = fullRun(args.work, 'full-val', ['--val-split', '0.1'], quickFull);
    persist();
  }
  if (args.only.has('full')) {
    results.full.aug = fullRun(args.work, 'full', [], quickFull);
    persist();
  }
  if (args.only.has('full-noaug')) {
    results.full.noaug = fullRun(args.work, 'full-noaug', ['--aug', 'none'], quickFull);
    persist();
  }

  for (const dir of args.merge) {
    if (!fs.existsSync(path.join(dir, 'results.json'))) {
      log(`${dir} has no results.json yet; skipped`);
      continue;
    }
    const other = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as Results;
    for (const [k, v] of Object.entries(other.sources ?? {})) results.sources[k] ??= v;
    for (const [k, v] of Object.entries(other.full ?? {})) results.full[k] ??= v;
    for (const row of other.grid ?? []) if (row.source !== undefined && !results.grid.some((r) => same(r, row))) results.grid.push({ ...row, trainEngine: row.trainEngine ?? 'tfjs wasm' });
  }
  if (args.merge.length) persist();
  if (!args.quick && args.only.has('report')) await writeResults(results, args);
}

/** The better transfer method at one size against scratch: the gap and whether it is beyond two standard errors. */
function verdict(rows: GridRow[], n: number): string {
  const stats = (method: Method) => {
    const xs = rows.filter((r) => r.n === n && r.method === method).map((r) => r.accuracy);
    return { ...meanStd(xs), k: xs.length };
  };
  const scratch = stats('scratch');
  const [name, best] = (['frozen', 'finetune'] as const).map((m) => [m, stats(m)] as const).reduce((a, b) => (b[1].mean > a[1].mean ? b : a));
  if (!scratch.k || !best.k) return `n=${n}: not measured`;
  const gap = (best.mean - scratch.mean) * 100;
  const se = 100 * Math.sqrt(scratch.std ** 2 / scratch.k + best.std ** 2 / best.k);
  const word = best.k < 2 || scratch.k < 2 ? 'one seed, no verdict' : gap > 2 * se ? 'transfer helps' : gap < -2 * se ? 'transfer hurts' : 'no clear difference';
  return `n=${n}: ${gap >= 0 ? '+' : ''}${gap.toFixed(1)} (${name}; ±${se.toFixed(1)}, ${word})`;
}

/** The paragraph on what a user should expect, from the two-direction grid. */
function expectations(grid: GridRow[], sources: Results['sources']): string[] {
  const mean = (source: Half, n: number, method: Method) => meanStd(grid.filter((r) => r.source === source && r.n === n && r.method === method).map((r) => r.accuracy));
  const sizes = [...new Set(grid.map((r) => r.n))].sort((a, b) => a - b);
  const lo = sizes[0];
  const gain = (source: Half, n: number) => (Math.max(mean(source, n, 'frozen').mean, mean(source, n, 'finetune').mean) - mean(source, n, 'scratch').mean) * 100;
  const directions = (['0-4', '5-9'] as Half[]).filter((h) => grid.some((r) => r.source === h));
  const range = (h: Half) => {
    const gains = sizes.map((n) => gain(h, n)).filter(Number.isFinite);
    return `${Math.min(...gains).toFixed(1)} to ${Math.max(...gains).toFixed(1)} points`;
  };
  const helps = (h: Half) => sizes.filter((n) => verdict(grid.filter((r) => r.source === h), n).includes('transfer helps'));
  const tune = directions.flatMap((h) => sizes.map((n) => (mean(h, n, 'finetune').mean - mean(h, n, 'frozen').mean) * 100)).filter(Number.isFinite);
  const spread = directions.map((h) => mean(h, lo, 'scratch').std * 100).filter(Number.isFinite);
  const said = directions.map((h) => {
    const yes = helps(h);
    return `${h === directions[0] ? 'From' : 'from'} the ${h} trunk to classes ${HALVES[h]} the better transfer method was ${range(h)} above scratch, ` +
      (yes.length ? `beyond two standard errors at n=${yes.join(', ')}` : 'never beyond two standard errors');
  });
  return [
    '## What a user should expect', '',
    `${said.join('; ')}.`,
    `The 0-4 trunk is the better source for two reasons these runs cannot separate: ${trunkGap(sources)}, and classes`,
    '0-4 (T-shirt, trouser, pullover, dress, coat) teach the shapes of',
    'garments, which are what the target 5-9 needs to tell a shirt from the rest, whereas sandals, sneakers, bags and',
    'boots teach little about the hard confusions inside 0-4 (T-shirt, pullover, coat and shirt-like tops). So: a trunk',
    'helps when it was trained on more data than you have and on images whose distinctions resemble yours; a trunk from',
    'an unrelated or easier task can be no better than starting from scratch, and the only way to know is to measure',
    'both on a few draws. Where transfer helps, the frozen trunk with a new head does nearly all of it: unfreezing',
    `afterwards changed accuracy by ${Math.min(...tune).toFixed(1)} to ${Math.max(...tune).toFixed(1)} points. With ${lo} images per class the draw of the images`,
    `matters as much as the method (scratch's seed-to-seed std ${spread.map((v) => v.toFixed(1)).join(' and ')} points). Augmentation must suit`,
    'the data: centred, size-normalised images want flips and small shifts at most (the first round measured the crop',
    'preset costing 1.8 to 5.1 points).', '',
  ];
}

/** How the two simple_cnn trunks' training differed, in words. */
function trunkGap(sources: Results['sources']): string {
  const t = (h: Half) => sources[h] as { trainImages?: number; epochs?: number } | undefined;
  const [a, b] = [t('0-4'), t('5-9')];
  if (!a?.trainImages || !b?.trainImages || !a.epochs || !b.epochs) return 'their training may differ (see the trunk table)';
  if (a.trainImages === b.trainImages && a.epochs === b.epochs) return 'not their training, which was the same';
  return `it saw ${(a.trainImages / b.trainImages).toFixed(0)} times as many images for ${(a.epochs / b.epochs).toFixed(0)} times as many epochs (see the trunk table)`;
}

/** What this round could and could not run (the machine was shared); kept beside the numbers it explains. */
const ROUND_NOTE = [
  '## This round\'s runs', '',
  'Measured on 2 cores shared with about seven other agents (1-minute load average 25 to 60 during the runs, every graft',
  'process at `nice -n 15`). So that the two-direction grid could finish, `models/fashion-mnist-5-9` was trained on the',
  'first 1,000 training images per class for 2 epochs (`--trunk-per-class 1000 --trunk-epochs 2`) instead of the 0-4',
  'trunk\'s 6,000 per class for 8 epochs; the grid ran as one process per seed and size (`--first-seed`, `--seeds 1`,',
  '`--sizes`; single-threaded with `GRAFT_THREADS=1`, which lost less time to the crowded machine) merged with `--merge`; the',
  'raw rows are in [fashion-mnist-results.json](fashion-mnist-results.json). The',
  'full-data run (`--only full,full-noaug`) did not run: its code is in the script, unmeasured.', '',
];

/** How the larger-trunk rows were run, and which of its grid did not run, from the rows themselves. */
function largeRoundNote(grid: GridRow[], sizes: number[]): string[] {
  const large = grid.filter((r) => r.trunk !== 'simple_cnn');
  if (!large.length) return ['The resnet50 trunk (`--only large-source,large-grid`) did not run: its code is in the script, unmeasured.', ''];
  const arch = large[0].trunk;
  // The simple_cnn grid's seeds are the ones the larger trunk is compared on.
  const allSeeds = [...new Set(grid.filter((r) => r.trunk === 'simple_cnn').map((r) => r.seed))].sort((a, b) => a - b);
  const missing = (['frozen', 'finetune'] as const).map((m) => {
    const gaps = sizes.map((n) => {
      const seeds = allSeeds.filter((seed) => !large.some((r) => r.method === m && r.n === n && r.seed === seed));
      return seeds.length ? `n=${n} seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}` : '';
    }).filter(Boolean);
    return gaps.length ? `${SHORT[m]}: ${gaps.join(', ')}` : '';
  }).filter(Boolean);
  return [
    `The ${arch} trunk and its grid ran in the last 35 minutes of the round, at normal priority (loads in the cost table): the trunk`,
    'as one process on both cores (`npm run experiment -- --only large-source`), then the grid as independent single-threaded',
    'processes (`GRAFT_THREADS=1 npm run experiment -- --only large-grid --large-trunk <trunk> --first-seed S --seeds 1 --sizes N',
    '--methods M`), two at a time, frozen trunk + head for every seed first, then fine-tuning seed by seed',
    '([scripts/fashion-mnist-large-runs.sh](../scripts/fashion-mnist-large-runs.sh)); their folders were',
    'merged with `--merge` into this report. Training on graft\'s step compiled for onnxruntime (`--train-engine auto`),',
    `which made the ${arch} grid affordable on 2 cores. ` +
      (missing.length ? `Not run before the deadline, so missing from the ${arch} rows: ${missing.join('; ')}.` : 'Every seed and size of its grid ran.'),
    '',
  ];
}

/** One table: rows are methods, columns sizes, cells mean ± std (seeds). */
function gridTable(rows: GridRow[], sizes: number[], methods: readonly Method[]): string[] {
  const lines = ['| method | ' + sizes.map((n) => `n=${n}`).join(' | ') + ' |', '| --- | ' + sizes.map(() => '---').join(' | ') + ' |'];
  for (const method of methods) {
    const cells = sizes.map((n) => {
      const xs = rows.filter((r) => r.n === n && r.method === method).map((r) => r.accuracy);
      if (!xs.length) return '–';
      const s = meanStd(xs);
      return `${pct(s.mean)} ± ${pct(s.std)} (${xs.length})`;
    });
    lines.push(`| ${LABELS[method]} | ${cells.join(' | ')} |`);
  }
  return lines;
}

/** One line of a chart: a label, a colour, solid or dashed, and the rows whose accuracies it averages per size. */
interface Series {
  label: string;
  colour: string;
  dashed: boolean;
  rows: GridRow[];
}

/** Accuracy versus labelled images per class in one panel, one line per series, ±1 std bars. */
function seriesChart(title: string, sizes: number[], series: Series[]): string {
  const PW = 460, H = 400, L = 60, T = 50, B = 50, LEG = 300;
  const W = L + PW + LEG;
  const accs = series.flatMap((s) => s.rows.map((r) => r.accuracy));
  const lo = Math.max(0, Math.floor(Math.min(...accs) * 20 - 1e-9) / 20), hi = Math.min(1, Math.ceil(Math.max(...accs) * 20) / 20);
  const y = (v: number) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const x = (i: number) => L + 10 + ((PW - 20) * i) / Math.max(1, sizes.length - 1);
  const parts: string[] = [];
  for (let v = lo; v <= hi + 1e-9; v += 0.05) {
    parts.push(`<line x1="${L}" x2="${L + PW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end" font-size="12">${(v * 100).toFixed(0)}%</text>`);
  }
  sizes.forEach((n, i) => parts.push(`<text x="${x(i)}" y="${H - B + 20}" text-anchor="middle" font-size="12">${n}</text>`));
  parts.push(`<text x="${L + PW / 2}" y="${H - 10}" text-anchor="middle" font-size="13">labelled training images per class</text>`);
  series.forEach((s, k) => {
    const dash = s.dashed ? ' stroke-dasharray="6,4"' : '';
    const pts = sizes.map((n, i) => ({ i, ...meanStd(s.rows.filter((r) => r.n === n).map((r) => r.accuracy)) })).filter((p) => Number.isFinite(p.mean));
    if (pts.length) {
      parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2"${dash} points="${pts.map((p) => `${x(p.i)},${y(p.mean)}`).join(' ')}"/>`);
      // Bars sit a little apart so that overlapping series stay readable.
      const dx = (k - (series.length - 1) / 2) * 4;
      for (const p of pts) parts.push(`<line x1="${x(p.i) + dx}" x2="${x(p.i) + dx}" y1="${y(p.mean - p.std)}" y2="${y(p.mean + p.std)}" stroke="${s.colour}"/><circle cx="${x(p.i)}" cy="${y(p.mean)}" r="3" fill="${s.colour}"/>`);
    }
    const lx = L + PW + 15, ly = T + 10 + k * 20;
    parts.push(`<line x1="${lx}" x2="${lx + 30}" y1="${ly}" y2="${ly}" stroke="${s.colour}" stroke-width="2"${dash}/><text x="${lx + 36}" y="${ly + 4}" font-size="12">${escapeXml(s.label)}</text>`);
  });
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>`;
}

/** Mean ± standard error of `a - b` over the seeds both have (the same draws), with a verdict at two standard errors. */
function paired(a: GridRow[], b: GridRow[], names: [string, string]): { text: string; gap: number; k: number } {
  const diffs = a.flatMap((r) => b.filter((o) => o.seed === r.seed).map((o) => (r.accuracy - o.accuracy) * 100));
  if (!diffs.length) return { text: 'not measured', gap: NaN, k: 0 };
  const { mean, std } = meanStd(diffs);
  const se = std / Math.sqrt(diffs.length);
  const word = diffs.length < 2 ? 'no verdict' : mean > 2 * se ? `${names[0]} better` : mean < -2 * se ? `${names[1]} better` : 'no clear difference';
  return { text: `${mean >= 0 ? '+' : ''}${mean.toFixed(1)} ± ${se.toFixed(1)} (${diffs.length} seed${diffs.length > 1 ? 's' : ''}, ${word})`, gap: mean, k: diffs.length };
}

/** The larger trunk against the simple_cnn trunk as sources for classes 5-9: table, paired differences, plot and cost. */
async function largeSection(results: Results, large: GridRow[], docs: string): Promise<string[]> {
  const arch = large[0].trunk;
  const sizes = [...new Set(large.map((r) => r.n))].sort((a, b) => a - b);
  const seeds = [...new Set(large.map((r) => r.seed))].sort((a, b) => a - b);
  // simple_cnn's rows of the same draws: same size and seed (a seed fixes the n images drawn).
  const small = results.grid.filter((r) => r.trunk === 'simple_cnn' && r.source === '0-4' && large.some((l) => l.n === r.n && l.seed === r.seed));
  type Source = Timed & { epochs: number; bestEpoch?: number; trainImages: number; perClass?: number; inputShape?: number[] };
  const src = results.sources[`${arch}-0-4`] as unknown as Source | undefined;
  const cnn = results.sources['0-4'] as unknown as Source;
  const pick = (rows: GridRow[], n: number, method: Method) => rows.filter((r) => r.n === n && r.method === method);
  const cell = (rows: GridRow[], n: number, method: Method) => {
    const xs = pick(rows, n, method).map((r) => r.accuracy);
    if (!xs.length) return '–';
    const m = meanStd(xs);
    return `${pct(m.mean)} ± ${pct(m.std)} (${xs.length})`;
  };
  const row = (label: string, rows: GridRow[], method: Method) => `| ${label} | ${sizes.map((n) => cell(rows, n, method)).join(' | ')} |`;
  const engines = (rows: GridRow[], key: 'trainEngine' | 'evalEngine') => [...new Set(rows.map((r) => r[key]))].join(', ');
  const lines = ['## A larger trunk as the source: resnet50 against simple_cnn', ''];
  if (src) {
    lines.push(`${arch} at ${(src.inputShape ?? []).join('x')} (the 28x28 grey images upsampled and replicated to three channels) trained from scratch on`,
      `${src.trainImages} images of classes 0-4 (the first ${src.perClass ?? '?'} training images per class, 10% of them held out for validation), Adam, one-cycle,`,
      `lr ${LARGE.lr}, batch ${LARGE.batchSize}, ${src.epochs} epochs with save-best on the validation loss (kept epoch ${src.bestEpoch}): ${pct(src.accuracy)}% on the`,
      `${src.testImages} test images of classes 0-4, against ${pct(cnn.accuracy)}% for the simple_cnn trunk (${cnn.trainImages} images, ${cnn.epochs} epochs). As a source for`,
      'classes 5-9 it gets the fixed target recipe of the grid above, unchanged (epochs per n, rates, batch, no augmentation: nothing',
      `chosen per trunk, nothing looked up on test images), the same draws of n images (seeds ${seeds.join(', ')}) and the same ${large[0].testImages} test images.`, '');
  }
  lines.push('| trunk, method | ' + sizes.map((n) => `n=${n}`).join(' | ') + ' |', '| --- | ' + sizes.map(() => '---').join(' | ') + ' |',
    row('simple_cnn trunk: (b) frozen + new head', small, 'frozen'),
    row('simple_cnn trunk: (c) then unfreeze, discriminative', small, 'finetune'),
    row(`${arch} trunk: (b) frozen + new head`, large, 'frozen'),
    row(`${arch} trunk: (c) then unfreeze, discriminative`, large, 'finetune'),
    row('(a) from scratch (simple_cnn, no trunk)', small, 'scratch'), '',
    `Training: simple_cnn rows ${engines(small, 'trainEngine')} (the earlier round); ${arch} rows ${engines(large, 'trainEngine')}.`,
    `Evaluation: simple_cnn rows ${engines(small, 'evalEngine')}; ${arch} rows ${engines(large, 'evalEngine')}.`, '');
  const diff = (method: Method) => sizes.map((n) => `n=${n}: ${paired(pick(large, n, method), pick(small, n, method), [arch, 'simple_cnn']).text}`).join('; ');
  lines.push(`${arch} trunk minus simple_cnn trunk, in accuracy points, paired by seed (the same draw), mean ± standard error, verdict at two`,
    `standard errors. Frozen trunk + new head: ${diff('frozen')}. Fine-tuned: ${diff('finetune')}.`, '',
    `${arch} trunk's better method minus scratch (verdict as in the tables above): ${sizes.map((n) => verdict([...large, ...pick(small, n, 'scratch')], n)).join('; ')}.`, '');
  const series: Series[] = [
    { label: 'from scratch', colour: COLOURS.scratch, dashed: false, rows: small.filter((r) => r.method === 'scratch') },
    { label: 'simple_cnn trunk, frozen + head', colour: COLOURS.frozen, dashed: false, rows: small.filter((r) => r.method === 'frozen') },
    { label: 'simple_cnn trunk, fine-tuned', colour: COLOURS.finetune, dashed: false, rows: small.filter((r) => r.method === 'finetune') },
    { label: `${arch} trunk, frozen + head`, colour: COLOURS.frozen, dashed: true, rows: large.filter((r) => r.method === 'frozen') },
    { label: `${arch} trunk, fine-tuned`, colour: COLOURS.finetune, dashed: true, rows: large.filter((r) => r.method === 'finetune') },
  ];
  await writeSvgAsPng(seriesChart(`Classes 0-4 trunk -> classes 5-9: ${arch} vs simple_cnn (mean, ±1 std over seeds)`, sizes, series), path.join(docs, 'fashion-mnist-large-trunk.png'));
  lines.push(`![accuracy versus labelled images per class, ${arch} and simple_cnn trunks](fashion-mnist-large-trunk.png)`, '');
  // Cost: the two grids ran on different engines and loads, so the seconds are listed with both, not divided.
  const loads = (rows: GridRow[]) => {
    const xs = rows.flatMap((r) => r.load ?? []);
    // The simple_cnn grid's rows predate the per-row load; its round ran at load 25 to 60 with GRAFT_THREADS=1.
    return xs.length ? `load ${Math.min(...xs).toFixed(1)} to ${Math.max(...xs).toFixed(1)}` : 'load 25 to 60 (earlier round)';
  };
  const seconds = (rows: GridRow[], method: Method) => {
    const xs = rows.filter((r) => r.method === method).map((r) => r.seconds);
    return xs.length ? `${meanStd(xs).mean.toFixed(0)} s` : '–';
  };
  lines.push('Cost in wall time (train and evaluate on 5,000 test images; 2 shared cores, so upper bounds):', '',
    '| trunk | source training | per target run: frozen + head | per target run: fine-tuned | target runs trained on |', '| --- | --- | --- | --- | --- |',
    `| simple_cnn | ${cnn.seconds.toFixed(0)} s (${cnn.trainImages} images x ${cnn.epochs} epochs, ${cnn.trainEngine ?? 'tfjs wasm'}) | ${seconds(small, 'frozen')} | ${seconds(small, 'finetune')} | ${engines(small, 'trainEngine')}, ${loads(small)} |`,
    src ? `| ${arch} | ${src.seconds.toFixed(0)} s (${src.trainImages} images x ${src.epochs} epochs, ${src.trainEngine}, load ${src.loadBefore.toFixed(1)} → ${src.loadAfter.toFixed(1)}) | ${seconds(large, 'frozen')} | ${seconds(large, 'finetune')} | ${engines(large, 'trainEngine')}, ${loads(large)} |` : `| ${arch} | – | ${seconds(large, 'frozen')} | ${seconds(large, 'finetune')} | ${engines(large, 'trainEngine')}, ${loads(large)} |`, '',
    ...largeNote({ arch, sizes, large, small, src, cnn, pick }), '');
  return lines;
}

/** What the larger-trunk comparison shows and what it cannot, from its rows: the words follow the numbers. */
function largeNote(c: {
  arch: string;
  sizes: number[];
  large: GridRow[];
  small: GridRow[];
  src?: Timed & { epochs: number; bestEpoch?: number; trainImages: number };
  cnn: Timed & { epochs: number; trainImages: number };
  pick: (rows: GridRow[], n: number, method: Method) => GridRow[];
}): string[] {
  const { arch, sizes, large, small, src, cnn, pick } = c;
  const summary = (method: Method) => {
    const d = sizes.map((n) => ({ n, ...paired(pick(large, n, method), pick(small, n, method), [arch, 'simple_cnn']) })).filter((x) => x.k);
    const label = SHORT[method][0].toUpperCase() + SHORT[method].slice(1);
    if (!d.length) return `${label}: not measured`;
    const gaps = d.map((x) => x.gap);
    const where = (word: string) => d.filter((x) => x.text.includes(word)).map((x) => `n=${x.n}`);
    const better = where(`${arch} better`), worse = where('simple_cnn better');
    const beyond = [better.length ? `in ${arch}'s favour at ${better.join(', ')}` : '', worse.length ? `in simple_cnn's favour at ${worse.join(', ')}` : ''].filter(Boolean);
    return `${label}: ${Math.min(...gaps).toFixed(1)} to ${Math.max(...gaps).toFixed(1)} points against the simple_cnn trunk` +
      ` (${beyond.length ? `beyond two standard errors ${beyond.join(' and ')}` : 'never beyond two standard errors'})`;
  };
  const vsScratch = sizes.map((n) => verdict([...large, ...pick(small, n, 'scratch')], n));
  const helps = sizes.filter((_, i) => vsScratch[i].includes('transfer helps'));
  const hurts = sizes.filter((_, i) => vsScratch[i].includes('transfer hurts'));
  const mean = (rows: GridRow[], method: Method) => meanStd(rows.filter((r) => r.method === method).map((r) => r.seconds)).mean;
  const lines = [
    `**What it shows.** ${summary('frozen')}. ${summary('finetune')}. Against scratch, the ${arch} trunk's better method helped beyond two standard errors`,
    `${helps.length ? `at n=${helps.join(', ')}` : 'at no size'}${hurts.length ? ` and hurt at n=${hurts.join(', ')}` : ''}.`,
  ];
  const unfreeze = sizes.map((n) => paired(pick(large, n, 'finetune'), pick(large, n, 'frozen'), ['fine-tuning', 'frozen']).gap).filter(Number.isFinite);
  if (unfreeze.length) lines.push(`Unfreezing the ${arch} trunk afterwards changed accuracy by ${Math.min(...unfreeze).toFixed(1)} to ${Math.max(...unfreeze).toFixed(1)} points against its frozen trunk (same seeds).`);
  if (src) {
    lines.push(`This compares the two trunks as they could be trained here, not the architectures: ${arch} saw ${src.trainImages} images for ${src.epochs} epochs`,
      `(kept ${src.bestEpoch}) where simple_cnn saw ${cnn.trainImages} for ${cnn.epochs}, and reached ${pct(src.accuracy)}% against ${pct(cnn.accuracy)}% on its own classes; its 23.6 million`,
      'weights were learnt from scratch on 28x28 images upsampled to 32x32, which is where ImageNet trunks are weakest, and each trunk gets its',
      `architecture's default new head (${arch}: average pooling and the output layer; simple_cnn: flatten, dense 128, dropout 0.5).`);
    const gaps = sizes.flatMap((n) => (['frozen', 'finetune'] as const).map((m) => paired(pick(large, n, m), pick(small, n, m), [arch, 'simple_cnn']).gap)).filter(Number.isFinite);
    if (gaps.length && Math.max(...gaps) < 0) {
      lines.push(`So a user should not expect an ImageNet-style architecture to be the better source by itself: a trunk transfers what it`,
        `learnt, and ${arch} trained from scratch on a few thousand small images learnt less here than simple_cnn did on ${cnn.trainImages}. The architecture`,
        'pays off with weights learnt on far more data (ImageNet): 2 cores cannot learn them in a round, and this machine cannot download them.');
    }
    lines.push(
      `**Cost.** Training and testing the ${arch} trunk took ${src.seconds.toFixed(0)} s (${((src.trainImages * src.epochs) / src.seconds).toFixed(1)} image-epochs per second, ${src.trainEngine}); the simple_cnn`,
      `trunk took ${cnn.seconds.toFixed(0)} s (${((cnn.trainImages * cnn.epochs) / cnn.seconds).toFixed(1)} per second, ${cnn.trainEngine ?? 'tfjs wasm'}, an earlier round at another load). A target run with the ${arch}`,
      `trunk took ${mean(large, 'frozen').toFixed(0)} s frozen and ${mean(large, 'finetune').toFixed(0)} s fine-tuned on one thread (the compiled step), the simple_cnn grid's runs`,
      `${mean(small, 'frozen').toFixed(0)} s and ${mean(small, 'finetune').toFixed(0)} s (tfjs wasm, one thread, load 25 to 60): the engines and loads differ, so these say what each cost, not which is faster.`);
  }
  return lines;
}

async function writeResults(results: Results, args: Args): Promise<void> {
  const docs = path.join(ROOT, 'docs');
  fs.mkdirSync(docs, { recursive: true });
  const lines = [
    '# Fashion-MNIST: transfer learning measured',
    '',
    'Produced by `npm run experiment` (scripts/fashion-mnist-experiment.ts), which calls only graft\'s public API',
    '(`exportFashionMnist` = `graft dataset`, `train` = `graft train`, `evaluate` = `graft evaluate`) and, for the',
    'full-data run, the `graft` CLI itself, on the IDX files of Debian\'s `dataset-fashion-mnist`. Each table names what',
    'trained (tfjs wasm with XNNPACK, or graft\'s training step compiled for onnxruntime) and what evaluated (onnxruntime or',
    'tfjs wasm) its numbers. Accuracy on held-out test images.',
    'All wall times were measured on a 2-core machine shared with other jobs, with the 1-minute load average recorded',
    'before and after each run: they are upper bounds, not benchmarks.',
    '',
  ];
  // models/fashion-mnist-0-4 was trained in the first round (issue 8) and is reused unchanged: its row comes from there.
  results.sources['0-4'] ??= { arch: 'simple_cnn', epochs: 8, trainImages: 27000, accuracy: 0.940, f1: 0.940, testImages: 5000, seconds: 4094, evalEngine: 'not recorded (issue 8 run)' };
  const sources = Object.entries(results.sources).sort(([a], [b]) => (a < b ? -1 : 1));
  if (sources.length) {
    lines.push('## Source trunks', '', '| trunk | training data | epochs | test accuracy | macro F1 | test images | wall time | load before → after | train engine | eval engine |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, s] of sources) {
      const t = s as unknown as Timed & { arch: string; epochs: number; bestEpoch?: number; trainImages: number; inputShape?: number[] };
      // The issue 8 trunk predates the compiled step: tfjs wasm trained it.
      const epochs = t.bestEpoch ? `${t.epochs} (kept ${t.bestEpoch}: lowest validation loss)` : `${t.epochs}`;
      lines.push(`| ${t.arch}${t.inputShape ? ` ${t.inputShape.join('x')}` : ''} on ${name.replace(/^.*?(\d-\d)$/, 'classes $1')} | ${t.trainImages} train images | ${epochs} | **${pct(t.accuracy)}%** | ${pct(t.f1)}% | ${t.testImages} | ${t.seconds.toFixed(0)} s | ${t.loadBefore?.toFixed(1) ?? '?'} → ${t.loadAfter?.toFixed(1) ?? '?'} | ${t.trainEngine ?? 'tfjs wasm'} | ${t.evalEngine ?? '?'} |`);
    }
    lines.push('', 'simple_cnn trunks: the default `simple_cnn` (conv 32, conv 64, dense 128), Adam, one-cycle, batch 64, lr 2e-3, 10% of the',
      'training images held out for validation, seed 0; images and epochs as in the table. Tested on all 5,000 test images of',
      'their own classes. Saved as `models/fashion-mnist-0-4` and `models/fashion-mnist-5-9`.', '');
  }
  const grid = results.grid.filter((r) => r.trunk === 'simple_cnn');
  if (grid.length) {
    const sizes = [...new Set(grid.map((r) => r.n))].sort((a, b) => a - b);
    lines.push('## Transfer in both directions', '',
      'n labelled training images per class, drawn per seed from the first 1,000 training images of each target class;',
      'test accuracy on all 5,000 test images of the target classes; mean ± std over seeds (number of seeds in brackets).',
      `${sizes.map((n) => `${epochsFor(n, false)} epochs for n=${n}`).join(', ')} (frozen: all of them on the head;`,
      'fine-tune: half (rounded up) on the head, then the rest with everything unfrozen at discriminative rates, lr-mult 10); Adam, one-cycle,',
      `batch 32, lr 2e-3, no augmentation. Scratch is the default simple_cnn. Training: ${[...new Set(grid.map((r) => r.trainEngine))].join(', ')}; evaluation:`,
      `${[...new Set(grid.map((r) => r.evalEngine))].join(', ')}.`, '');
    for (const source of ['0-4', '5-9'] as Half[]) {
      const rows = grid.filter((r) => r.source === source);
      if (!rows.length) continue;
      lines.push(`### Trunk on classes ${source} → classes ${HALVES[source]}`, '', ...gridTable(rows, sizes, METHODS), '');
      lines.push(`Transfer minus scratch, in accuracy points, with a verdict at two standard errors of the difference: ${sizes.map((n) => verdict(rows, n)).join('; ')}.`, '');
    }
    lines.push('![accuracy versus labelled images per class, both directions](fashion-mnist-transfer.png)', '');
    await writeSvgAsPng(gridChart(grid, sizes), path.join(docs, 'fashion-mnist-transfer.png'));
  }
  const large = results.grid.filter((r) => r.trunk !== 'simple_cnn');
  if (large.length) lines.push(...(await largeSection(results, large, docs)));
  const full = results.full as Record<string, Record<string, unknown> | undefined>;
  if (full.aug || full.noaug || full.val) {
    lines.push('## Full data: all ten classes', '', `Recipe: [docs/recipes/fashion-mnist-full.json](recipes/fashion-mnist-full.json), run by the \`graft\` CLI on the IDX files.`, '',
      '| run | epochs | train images | test accuracy | macro F1 | wall time (train + eval) | load before → after | eval engine |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const [key, label] of [['aug', 'recipe (flip + shift)'], ['noaug', 'recipe without augmentation'], ['val', 'recipe, 10% held out (validation)']] as const) {
      const f = full[key] as { accuracy: number; f1: number; seconds: number; trainSeconds: number; loadBefore: number; loadAfter: number; epochs: number; trainImages: number; evalEngine: string; valAccuracy: number | null } | undefined;
      if (!f) continue;
      lines.push(`| ${label} | ${f.epochs} | ${f.trainImages} | **${pct(f.accuracy)}%** | ${pct(f.f1)}% | ${f.seconds.toFixed(0)} s (${f.trainSeconds.toFixed(0)} + ${(f.seconds - f.trainSeconds).toFixed(0)}) | ${f.loadBefore.toFixed(1)} → ${f.loadAfter.toFixed(1)} | ${f.evalEngine} |`);
    }
    const cmd = (full.aug ?? full.noaug ?? full.val) as { command: string };
    lines.push('', 'Command:', '', '```', cmd.command, '```', '');
  } else {
    lines.push('## Full data: all ten classes', '', 'Not measured in this round (see the note at the end). The recipe is',
      '[docs/recipes/fashion-mnist-full.json](recipes/fashion-mnist-full.json); `npm run experiment -- --only full,full-noaug,report`',
      'runs it through the CLI and times it:', '', '```',
      `graft train --config docs/recipes/fashion-mnist-full.json --data ${FASHION_MNIST_DIR} --out <work>/runs/full`,
      `graft evaluate --model <work>/runs/full --data ${FASHION_MNIST_DIR}/t10k-images-idx3-ubyte.gz --batch-size 256 --tta`, '```', '',
      'The first round\'s baseline (default simple_cnn, no augmentation, 6 epochs, 60,000 images) reached 91.6% in 2,965 s.', '');
  }
  if (grid.length) lines.push(...expectations(grid, results.sources));
  lines.push(...ROUND_NOTE, ...largeRoundNote(results.grid, [...new Set(results.grid.map((r) => r.n))].sort((a, b) => a - b)));
  fs.writeFileSync(path.join(docs, 'RESULTS.md'), lines.join('\n'));
  // The raw rows beside the report they make (merged from every --merge folder).
  fs.writeFileSync(path.join(docs, 'fashion-mnist-results.json'), JSON.stringify(results, null, 2) + '\n');
  log(`wrote ${path.join(docs, 'RESULTS.md')}`);
  void args;
}

main().catch((err) => {
  process.stderr.write(`experiment: ${err instanceof Error ? err.stack : err}\n`);
  process.exitCode = 1;
});
