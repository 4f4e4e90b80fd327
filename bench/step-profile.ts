/**
 * Where a compiled training step spends its time: reads onnxruntime's profile (a Chrome-trace JSON array written
 * with `enableProfiling`), sums each operator's kernel time per step, and rates convolutions and matrix products in
 * GFLOP/s from the shapes the profile records. Pure functions, so the arithmetic is tested without onnxruntime.
 */

/** One event of onnxruntime's profile (the fields read here). */
export interface ProfileEvent {
  /** `Session` (model_run, session_initialization) or `Node` (one operator's kernel or fence). */
  cat: string;
  /** `model_run`, or `<node name>_kernel_time` / `_fence_before` / `_fence_after`. */
  name: string;
  /** Start, microseconds. */
  ts: number;
  /** Duration, microseconds. */
  dur: number;
  /** For Node events: op_name, input_type_shape, output_type_shape ([{ float: [dims] }, ...]). */
  args?: { op_name?: string; input_type_shape?: Array<Record<string, number[]>>; output_type_shape?: Array<Record<string, number[]>> };
}

/** One graph node's time per step. */
export interface NodeTime {
  /** Node name (the compiler names nodes after layers). */
  node: string;
  /** ONNX operator (as onnxruntime runs it, after fusion: e.g. FusedConv). */
  op: string;
  /** Input shapes, as recorded. */
  inputs: number[][];
  /** Milliseconds per step. */
  ms: number;
  /** Floating-point operations per step, for convolutions and matrix products. */
  flops?: number;
}

/** One operator type's time per step, all its nodes together. */
export interface OpTime {
  /** ONNX operator. */
  op: string;
  /** How many nodes of it ran. */
  nodes: number;
  /** Milliseconds per step. */
  ms: number;
  /** FLOPs per step (convolutions and matrix products only). */
  flops?: number;
}

/** A step's profile: operators and nodes, slowest first. */
export interface StepProfile {
  /** Runs averaged over (the first run, a warm-up, is left out when there are more). */
  runs: number;
  /** Mean wall milliseconds of a run as onnxruntime timed it (model_run). */
  runMs: number;
  /** Sum of kernel milliseconds per step (the rest of runMs is scheduling and copies). */
  kernelMs: number;
  /** Operators by total time. */
  ops: OpTime[];
  /** Nodes by time. */
  nodes: NodeTime[];
}

const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** The dims of each entry of an `input_type_shape` / `output_type_shape` list (whatever its element type). */
function shapes(list: Array<Record<string, number[]>> | undefined): number[][] {
  return (list ?? []).map((entry) => Object.values(entry)[0] ?? []);
}

/**
 * FLOPs (2 per multiply-add) of one node from its input and output shapes, for Conv-like ops (Conv, FusedConv, NCHWc
 * and NHWC forms, whatever the weight layout: the weight's size over the output channels is one output's taps),
 * ConvTranspose, Gemm and MatMul (FusedGemm, FusedMatMul); undefined for anything else or missing shapes.
 */
export function nodeFlops(op: string, inputs: number[][], outputs: number[][]): number | undefined {
  const [x, w] = inputs;
  const y = outputs[0];
  if (!x || !y || !x.length || !y.length) return undefined;
  if (/ConvTranspose$/.test(op)) {
    // Every input value scatters into (weight size / input channels) outputs.
    if (!w?.length) return undefined;
    const channels = op.startsWith('Nhwc') ? x[x.length - 1] : x[1];
    return (2 * size(x) * size(w)) / channels;
  }
  if (/Conv$/.test(op)) {
    if (!w?.length) return undefined;
    const channels = op.startsWith('Nhwc') ? y[y.length - 1] : y[1];
    return (2 * size(y) * size(w)) / channels;
  }
  if (/^(Fused)?(Gemm|MatMul)$/.test(op)) {
    // K from A's size over the output's leading dims: right whether or not A is transposed.
    const k = x.length === y.length ? size(x) / size(y.slice(0, -1)) : x[x.length - 1];
    return 2 * size(y) * k;
  }
  return undefined;
}

/** Sums an onnxruntime profile into per-step operator and node times. */
export function summarizeProfile(events: ProfileEvent[]): StepProfile {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  // The first run plans memory and packs weights: leave it out when there is anything else.
  const counted = runs.length > 1 ? runs.slice(1) : runs;
  const from = counted.length ? counted[0].ts : -Infinity;
  const perStep = Math.max(1, counted.length);
  const byNode = new Map<string, NodeTime>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.op_name || e.ts < from || /_fence_(before|after)$/.test(e.name)) continue;
    const node = e.name.replace(/_kernel_time$/, '');
    let t = byNode.get(node);
    if (!t) {
      const inputs = shapes(e.args.input_type_shape);
      t = { node, op: e.args.op_name, inputs, ms: 0, flops: nodeFlops(e.args.op_name, inputs, shapes(e.args.output_type_shape)) };
      byNode.set(node, t);
    }
    t.ms += e.dur / 1000 / perStep;
  }
  const nodes = [...byNode.values()].sort((a, b) => b.ms - a.ms);
  const byOp = new Map<string, OpTime>();
  for (const n of nodes) {
    const o = byOp.get(n.op) ?? { op: n.op, nodes: 0, ms: 0 };
    o.nodes += 1;
    o.ms += n.ms;
    if (n.flops !== undefined) o.flops = (o.flops ?? 0) + n.flops;
    byOp.set(n.op, o);
  }
  return {
    runs: counted.length,
    runMs: counted.reduce((a, r) => a + r.dur / 1000, 0) / perStep,
    kernelMs: nodes.reduce((a, n) => a + n.ms, 0),
    ops: [...byOp.values()].sort((a, b) => b.ms - a.ms),
    nodes,
  };
}

/** GFLOP/s of `flops` done in `ms` milliseconds. */
export const gflopsPerSecond = (flops: number, ms: number): number => flops / ms / 1e6;

/** A Markdown block: the top operators and the slowest nodes, with GFLOP/s where the FLOPs are known. */
export function formatStepProfile(title: string, p: StepProfile, top = 8): string[] {
  const rate = (flops: number | undefined, ms: number) => (flops === undefined ? '' : gflopsPerSecond(flops, ms).toFixed(1));
  const gflop = (flops: number | undefined) => (flops === undefined ? '' : (flops / 1e9).toFixed(2));
  const shape = (s: number[]) => (s.length ? s.join('x') : 'scalar');
  const inputs = (list: number[][]) => (list.length > 3 ? `${list.slice(0, 2).map(shape).join(', ')}, ... (${list.length} inputs)` : list.map(shape).join(', '));
  return [
    `**${title}** (onnxruntime profiler, mean of ${p.runs} step${p.runs === 1 ? '' : 's'} after a warm-up): ` +
      `${p.runMs.toFixed(1)} ms per step, ${p.kernelMs.toFixed(1)} ms of it in kernels.`,
    '',
    '| operator | nodes | ms per step | share of kernel time | GFLOP per step | GFLOP/s |',
    '|---|---:|---:|---:|---:|---:|',
    ...p.ops
      .slice(0, top)
      .map((o) => `| ${o.op} | ${o.nodes} | ${o.ms.toFixed(2)} | ${((100 * o.ms) / p.kernelMs).toFixed(0)}% | ${gflop(o.flops)} | ${rate(o.flops, o.ms)} |`),
    '',
    '| slowest nodes | operator | input shapes | ms per step | GFLOP/s |',
    '|---|---|---|---:|---:|',
    ...p.nodes.slice(0, top).map((n) => `| ${n.node} | ${n.op} | ${inputs(n.inputs)} | ${n.ms.toFixed(2)} | ${rate(n.flops, n.ms)} |`),
    '',
  ];
}
