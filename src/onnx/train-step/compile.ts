/**
 * Compiles a tfjs layers model's training step into one ONNX graph: forward in training mode, the classification
 * loss on the model's probabilities (as `train/losses.ts` computes it), reverse mode per layer, clipping by global
 * norm, and the optimiser update of every trained weight with GroupOptimizer's rules. Weights, optimiser slots and
 * BN moving statistics are graph inputs and their new values graph outputs, so a runner can feed each step's
 * outputs to the next step and keep the whole state inside onnxruntime.
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../../errors';
import { GRAFT_VERSION } from '../../version';
import { functionalLayers, InboundRef } from '../export';
import { GraphIO } from '../graph';
import { applyLayer, StepLayer } from './layers';
import { StepContext, TValue, graphDims } from './tape';

/** Update rules the compiled step implements (GroupOptimizer's). */
export type StepOptimizerType = 'sgd' | 'adam' | 'adamw' | 'rmsprop';

/** Optimiser hyper-parameters (every field as GroupOptimizer reads it; train/optim.ts's OptimizerConfig fits). */
export interface StepOptimizer {
  /** Which update rule. */
  type: StepOptimizerType;
  /** SGD / RMSprop momentum (0 for none). */
  momentum?: number;
  /** SGD: Nesterov momentum. */
  nesterov?: boolean;
  /** Adam / AdamW first-moment decay. */
  beta1?: number;
  /** Adam / AdamW second-moment decay. */
  beta2?: number;
  /** RMSprop squared-gradient decay. */
  rho?: number;
  /** Added to denominators. */
  epsilon?: number;
  /** L2 added to the gradient (sgd, adam, rmsprop) or decoupled decay (adamw). */
  weightDecay?: number;
}

/** A group of weights trained with one learning rate (and, for Adam, one step count). */
export interface StepGroup {
  /** Group name. */
  name: string;
  /** Original names of its weights (`conv1/kernel`). */
  weights: string[];
}

/** Options for `compileTrainStep`. */
export interface CompileTrainStepOptions {
  /** Batch size the graph is built for. */
  batchSize: number;
  /** `softmax`: categorical cross-entropy; `sigmoid`: binary cross-entropy per output. */
  outputActivation: 'softmax' | 'sigmoid';
  /** Weight groups to train; every other weight is a constant input. */
  groups: StepGroup[];
  /** The optimiser; without one the graph outputs the gradients instead of updating (the gradients-only variant). */
  optimizer?: StepOptimizer;
  /** Clip the gradients to this global L2 norm. */
  clipNorm?: number;
}

/** An input or output of the step graph. */
export interface StepTensor {
  /** Graph value name. */
  name: string;
  /** Dimensions. */
  dims: number[];
}

/** A piece of state the step reads and (unless constant) writes back. */
export interface StateTensor extends StepTensor {
  /** What it is: a weight, a BN moving statistic, or an optimiser slot `<weight>::<slot>`. */
  kind: 'weight' | 'stat' | 'slot';
  /** Weight original name, or `<weight>::<slot>` for a slot (GroupOptimizer's key). */
  key: string;
  /** Output carrying the new value (absent for constants). */
  next?: string;
  /** `dims` are the tfjs shape transposed by this permutation (a convolution kernel held as OIHW). */
  perm?: number[];
}

/** A compiled training step. */
export interface CompiledTrainStep {
  /** ONNX model bytes. */
  bytes: Uint8Array;
  /** Batch size it was built for. */
  batchSize: number;
  /** The batch input: NHWC (or [N, features]) float32. */
  x: StepTensor;
  /** Targets [N, units]: one-hot (label-smoothed) rows, or 0/1 for a one-unit sigmoid. */
  targets: StepTensor;
  /** Per-sample loss scale [N]: class weight / batch size, 0 for padding samples. */
  sampleScale: string;
  /** Dropout mask inputs (0 or 1 / (1 - rate), in the graph's layout for that value). */
  masks: Array<StepTensor & { rate: number; layer: string }>;
  /** Per-group scalar inputs: learning rate, bias corrections (1 - beta^t) and AdamW's (1 - lr * decay). */
  groupInputs: Array<{ group: string; lr: string; bc1?: string; bc2?: string; decay?: string }>;
  /** Weights, BN statistics and optimiser slots. */
  state: StateTensor[];
  /** Scalar batch loss. */
  loss: string;
  /** Model output [N, units]. */
  probs: string;
  /** Gradients by weight key (gradients-only variant). */
  grads: Record<string, string>;
}

/**
 * Why the compiled step cannot train `model` (the first layer it does not cover, as one line), or undefined when it
 * can: what `--train-engine auto` reports when it falls back to tfjs.
 */
export async function trainStepBlocker(model: tf.LayersModel): Promise<string | undefined> {
  try {
    await compileTrainStep(model, { batchSize: 1, outputActivation: 'softmax', groups: [{ name: 'all', weights: model.trainableWeights.map((w) => w.originalName) }] });
    return undefined;
  } catch (err) {
    if (err instanceof GraftError) return err.message;
    throw err;
  }
}

/** Keras's probability clip before the log (train/losses.ts). */
const LOSS_EPS = 1e-7;

/**
 * Builds the training-step graph of `model` (single input, single output). Frozen layers inside the model read
 * their weights as inputs and get neither gradients nor updates; frozen BN layers normalise with their moving
 * statistics. A layer the compiler does not cover is a GraftError naming it.
 */
export async function compileTrainStep(model: tf.LayersModel, options: CompileTrainStepOptions): Promise<CompiledTrainStep> {
  const n = options.batchSize;
  if (!Number.isInteger(n) || n < 1) throw new GraftError(`batchSize must be a positive integer; received ${n}.`);
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new GraftError(`the compiled training step needs a model with one input and one output; ${model.name} has ${model.inputs.length} and ${model.outputs.length}. Use --train-engine tfjs.`);
  }
  const trainable = new Set(options.groups.flatMap((g) => g.weights));
  const ctx = new StepContext(trainable, new Map(model.weights.map((w) => [w.originalName, w.shape as number[]])));
  const topology = model.toJSON(undefined, false) as unknown as Record<string, unknown>;
  const { layers, outputs } = functionalLayers(topology);
  const byName = new Map(model.layers.map((l) => [l.name, l]));

  const values = new Map<string, TValue>();
  const key = (ref: InboundRef) => `${ref[0]}:${ref[1]}:${ref[2]}`;
  let input: StepTensor | undefined;
  for (const spec of layers) {
    const name = spec.name!;
    if (spec.class_name === 'InputLayer') {
      const shape = ((spec.config.batch_input_shape ?? spec.config.batch_shape) as Array<number | null>).slice(1);
      if (shape.some((d) => d === null)) throw new GraftError(`input "${name}" has an unknown size (${JSON.stringify(shape)}); the compiled step needs a fixed input shape.`);
      input = { name: ctx.g.reserve('x'), dims: [n, ...(shape as number[])] };
      values.set(`${name}:0:0`, { name: input.name, shape: input.dims, layout: 'native' });
      continue;
    }
    const tfLayer = byName.get(name);
    const layer: StepLayer = { name, className: spec.class_name, config: spec.config, trainable: tfLayer ? tfLayer.trainable : true };
    (spec.inbound_nodes ?? []).forEach((node, index) => {
      const args = node.map((ref) => {
        const v = values.get(key(ref));
        if (!v) throw new GraftError(`model ${model.name}: layer "${name}" reads ${ref[0]} before it is defined.`);
        return v;
      });
      values.set(`${name}:${index}:0`, applyLayer(ctx, layer, args));
    });
  }
  if (!input) throw new GraftError(`model ${model.name} has no input layer.`);
  for (const k of trainable) {
    if (!ctx.weights.has(k)) throw new GraftError(`weight ${k} is in a trained group but no layer of ${model.name} reads it; rebuild the groups for this model.`);
  }

  const out = ctx.as(values.get(key(outputs[0]))!, 'native');
  if (out.shape.length !== 2) throw new GraftError(`the model's output has shape ${JSON.stringify(out.shape)}; the compiled step trains classifiers with [batch, classes] outputs.`);
  const units = out.shape[1];
  const g = ctx.g;
  const s = (v: number) => ctx.scalar(v);

  // Loss on the probabilities, exactly as classificationLoss: clip, cross-entropy, per-sample scale, sum.
  const targets = g.reserve('targets');
  const scale = g.reserve('sample_scale');
  const p = out.name;
  const pc = ctx.op('Clip', [p, s(LOSS_EPS), s(1 - LOSS_EPS)], 'loss/clipped');
  const logp = ctx.op('Log', [pc], 'loss/logp');
  const scale2 = ctx.op('Unsqueeze', [scale, ctx.ints([1])], 'loss/scale2');
  let perSample: string;
  let dpc: string;
  if (options.outputActivation === 'softmax') {
    perSample = ctx.op('Neg', [ctx.op('ReduceSum', [ctx.op('Mul', [targets, logp], 'loss/tlogp'), ctx.ints([1])], 'loss/sum', { keepdims: 0 })], 'loss/per_sample');
    dpc = ctx.op('Neg', [ctx.op('Mul', [ctx.op('Div', [targets, pc], 'loss/t_p'), scale2], 'loss/scaled')], 'loss/dpc');
  } else {
    const omt = ctx.op('Sub', [s(1), targets], 'loss/1mt');
    const omp = ctx.op('Sub', [s(1), pc], 'loss/1mp');
    const both = ctx.op('Add', [ctx.op('Mul', [targets, logp], 'loss/tlogp'), ctx.op('Mul', [omt, ctx.op('Log', [omp], 'loss/log1mp')], 'loss/t1log')], 'loss/both');
    perSample = ctx.op('Neg', [ctx.op('ReduceMean', [both], 'loss/mean', { axes: [1], keepdims: 0 })], 'loss/per_sample');
    const d = ctx.op('Sub', [ctx.op('Div', [targets, pc], 'loss/t_p'), ctx.op('Div', [omt, omp], 'loss/1mt_1mp')], 'loss/d');
    dpc = ctx.op('Mul', [ctx.op('Mul', [d, scale2], 'loss/scaled'), s(-1 / units)], 'loss/dpc');
  }
  const lossName = ctx.op('ReduceSum', [ctx.op('Mul', [perSample, scale], 'loss/weighted'), ctx.ints([0])], 'loss/total', { keepdims: 0 });
  // tfjs's clipByValue gradient passes where lo <= p <= hi.
  const inside = ctx.op('And', [ctx.op('GreaterOrEqual', [p, s(LOSS_EPS)], 'loss/ge'), ctx.op('LessOrEqual', [p, s(1 - LOSS_EPS)], 'loss/le')], 'loss/inside');
  const dp = ctx.op('Where', [inside, dpc, s(0)], 'loss/dp');
  ctx.backward(new Map([[out.name, dp]]));

  const grads = new Map<string, string>();
  for (const k of trainable) {
    const gsum = ctx.sum(ctx.weightGrads.get(k), `${k}/grad`);
    if (!gsum) throw new GraftError(`internal: no gradient reached ${k}`);
    grads.set(k, gsum);
  }

  if (options.clipNorm !== undefined) {
    const squares = [...grads.values()].map((gv) => ctx.op('ReduceSumSquare', [gv], `${gv}/sq`, { keepdims: 0 }));
    const norm = ctx.op('Sqrt', [squares.length === 1 ? squares[0] : ctx.op('Sum', squares, 'clip/sumsq')], 'clip/norm');
    const factor = ctx.op('Min', [s(1), ctx.op('Div', [s(options.clipNorm), ctx.op('Add', [norm, s(1e-12)], 'clip/norm_eps')], 'clip/ratio')], 'clip/factor');
    for (const [k, gv] of grads) grads.set(k, ctx.op('Mul', [gv, ctx.scalarAs(factor, graphDims(ctx.weights.get(k)!).length)], `${k}/clipped`));
  }

  const state: StateTensor[] = [];
  const graphOutputs: GraphIO[] = [
    { name: g.reserve('loss'), shape: [] },
    { name: g.reserve('probs'), shape: [n, units] },
  ];
  g.nodeTo('Identity', [lossName], 'loss');
  g.nodeTo('Identity', [out.name], 'probs');
  const nextOf = (name: string, value: string, dims: number[]) => {
    const outName = g.reserve(`${name}:next`);
    g.nodeTo('Identity', [value], outName);
    graphOutputs.push({ name: outName, shape: dims });
    return outName;
  };
  const slotValues = new Map<string, string>();
  const groupInputs: CompiledTrainStep['groupInputs'] = [];
  const gradOutputs: Record<string, string> = {};

  if (options.optimizer) {
    const c = options.optimizer;
    for (const group of options.groups) {
      const lr = g.reserve(`lr/${group.name}`);
      const gi: CompiledTrainStep['groupInputs'][number] = { group: group.name, lr };
      if (c.type === 'adam' || c.type === 'adamw') {
        gi.bc1 = g.reserve(`bc1/${group.name}`);
        gi.bc2 = g.reserve(`bc2/${group.name}`);
        if (c.type === 'adamw' && c.weightDecay) gi.decay = g.reserve(`decay/${group.name}`);
      }
      groupInputs.push(gi);
      const adam = gi.bc1 ? adamScalars(ctx, gi, c.epsilon ?? 1e-7) : undefined;
      for (const k of group.weights) {
        const w = ctx.weights.get(k)!;
        const slot = (name: string) => {
          const id = `${k}::${name}`;
          g.reserve(id);
          const entry: StateTensor = { name: id, dims: graphDims(w), kind: 'slot', key: id, ...(w.perm && { perm: w.perm }) };
          state.push(entry);
          return entry;
        };
        const updated = optimizerUpdate(ctx, c, k, grads.get(k)!, gi, slot, slotValues, adam);
        state.push({ name: k, dims: graphDims(w), kind: 'weight', key: k, next: nextOf(k, updated, graphDims(w)), ...(w.perm && { perm: w.perm }) });
      }
    }
    for (const st of state) if (st.kind === 'slot') st.next = nextOf(st.name, slotValues.get(st.name)!, st.dims);
  } else {
    for (const [k, gv] of grads) {
      const outName = g.reserve(`grad/${k}`);
      g.nodeTo('Identity', [gv], outName);
      graphOutputs.push({ name: outName, shape: graphDims(ctx.weights.get(k)!) });
      gradOutputs[k] = outName;
    }
  }
  // Constant weights (frozen layers) and BN moving statistics.
  for (const w of ctx.weights.values()) {
    if (state.some((st) => st.key === w.key)) continue;
    const update = ctx.stateUpdates.get(w.key);
    const layout = w.perm && { perm: w.perm };
    if (update) state.push({ name: w.key, dims: graphDims(w), kind: 'stat', key: w.key, next: nextOf(w.key, update, graphDims(w)), ...layout });
    else state.push({ name: w.key, dims: graphDims(w), kind: 'weight', key: w.key, ...layout });
  }

  const graphInputs: GraphIO[] = [
    { name: input.name, shape: input.dims },
    { name: targets, shape: [n, units] },
    { name: scale, shape: [n] },
    ...ctx.extraInputs.map((m) => ({ name: m.name, shape: m.dims })),
    ...groupInputs.flatMap((gi) => [gi.lr, gi.bc1, gi.bc2, gi.decay].filter((x): x is string => Boolean(x)).map((name) => ({ name, shape: [] }))),
    ...state.map((st) => ({ name: st.name, shape: st.dims })),
  ];
  elideOutputCopies(ctx, new Set(graphInputs.map((i) => i.name)));
  const bytes = g.encode({
    name: `${model.name}_train_step`,
    inputs: graphInputs,
    outputs: graphOutputs,
    producerVersion: GRAFT_VERSION,
    docString: `graft training step for ${model.name}, batch ${n}`,
  });
  return {
    bytes,
    batchSize: n,
    x: input,
    targets: { name: targets, dims: [n, units] },
    sampleScale: scale,
    masks: ctx.extraInputs.map((m) => ({ name: m.name, dims: m.dims, rate: m.rate, layer: m.layer })),
    groupInputs,
    state,
    loss: 'loss',
    probs: 'probs',
    grads: gradOutputs,
  };
}

/**
 * Drops the Identity nodes that name graph outputs: the producing node writes the output directly (its other readers
 * read it there), which saves onnxruntime a copy of every weight and slot each step.
 */
function elideOutputCopies(ctx: StepContext, graphInputs: Set<string>): void {
  const nodes = ctx.g.nodes;
  const producer = new Map<string, { node: (typeof nodes)[number]; index: number }>();
  for (const n of nodes) n.outputs.forEach((o, index) => producer.set(o, { node: n, index }));
  const drop = new Set<(typeof nodes)[number]>();
  const renamed = new Set<string>();
  for (const n of nodes) {
    if (n.op !== 'Identity') continue;
    const src = n.inputs[0];
    const p = producer.get(src);
    // A graph input, or a value already renamed to another output, still needs its copy.
    if (!p || graphInputs.has(src) || renamed.has(src) || p.node.op === 'Identity' || drop.has(p.node)) continue;
    const out = n.outputs[0];
    p.node.outputs[p.index] = out;
    for (const m of nodes) m.inputs = m.inputs.map((i) => (i === src ? out : i));
    producer.delete(src);
    producer.set(out, p);
    renamed.add(out);
    drop.add(n);
  }
  const kept = nodes.filter((n) => !drop.has(n));
  nodes.splice(0, nodes.length, ...kept);
}

/** Adam's per-group scalars lr * sqrt(bc2) / bc1 and eps * sqrt(bc2) (scalar nodes, made once per group). */
function adamScalars(ctx: StepContext, gi: CompiledTrainStep['groupInputs'][number], epsilon: number): AdamScalars {
  const base = `adam/${gi.group}`;
  const root = ctx.op('Sqrt', [gi.bc2!], `${base}/sqrt_bc2`);
  return {
    rate: ctx.op('Div', [ctx.op('Mul', [gi.lr, root], `${base}/lr_root`), gi.bc1!], `${base}/rate`),
    eps: ctx.op('Mul', [root, ctx.scalar(epsilon)], `${base}/eps`),
  };
}

interface AdamScalars {
  rate: string;
  eps: string;
}

/**
 * GroupOptimizer.apply for one weight, as graph nodes; returns the new weight value. The scalar hyper-parameters
 * are float32 constants computed in double precision first, as tfjs's scalar arguments are.
 */
function optimizerUpdate(
  ctx: StepContext,
  c: StepOptimizer,
  k: string,
  grad: string,
  gi: CompiledTrainStep['groupInputs'][number],
  slot: (name: string) => StateTensor,
  slotValues: Map<string, string>,
  adam?: AdamScalars,
): string {
  // Every rank-0 operand at the weight's rank (see StepContext.scalarAs).
  const rank = graphDims(ctx.weights.get(k)!).length;
  const r = (name: string) => ctx.scalarAs(name, rank);
  const s = (v: number) => r(ctx.scalar(v));
  const op = (o: string, inputs: string[], base: string) => ctx.op(o, inputs, `${k}/opt/${base}`);
  const wd = c.weightDecay ?? 0;
  let g = grad;
  if (c.type !== 'adamw' && wd) g = op('Add', [g, op('Mul', [k, s(wd)], 'wd')], 'g_wd');
  switch (c.type) {
    case 'sgd': {
      const mom = c.momentum ?? 0;
      if (mom) {
        const buf = slot('momentum');
        // PyTorch starts the buffer at the first gradient: with a zero buffer, 0 * m + g is exactly g.
        const next = op('Add', [op('Mul', [buf.name, s(mom)], 'buf_m'), g], 'buf');
        slotValues.set(buf.name, next);
        g = c.nesterov ? op('Add', [g, op('Mul', [next, s(mom)], 'nest_m')], 'nest') : next;
      }
      return op('Sub', [k, op('Mul', [g, r(gi.lr)], 'step')], 'new');
    }
    case 'adam':
    case 'adamw': {
      let p = k;
      if (gi.decay) p = op('Mul', [k, r(gi.decay)], 'decayed');
      const b1 = c.beta1 ?? 0.9;
      const b2 = c.beta2 ?? 0.999;
      const m = slot('m');
      const v = slot('v');
      const mNext = op('Add', [op('Mul', [m.name, s(b1)], 'm_b'), op('Mul', [g, s(1 - b1)], 'g_b')], 'm');
      const vNext = op('Add', [op('Mul', [v.name, s(b2)], 'v_b'), op('Mul', [op('Mul', [g, g], 'g2'), s(1 - b2)], 'g2_b')], 'v');
      slotValues.set(m.name, mNext);
      slotValues.set(v.name, vNext);
      // lr * (m / bc1) / (sqrt(v / bc2) + eps) = (lr sqrt(bc2) / bc1) * m / (sqrt(v) + eps sqrt(bc2)): the bias
      // corrections fold into two per-group scalars, so each weight takes five passes here instead of seven.
      const { rate, eps } = adam!;
      const upd = op('Div', [mNext, op('Add', [op('Sqrt', [vNext], 'v_sqrt'), r(eps)], 'den')], 'ratio');
      return op('Sub', [p, op('Mul', [upd, r(rate)], 'step')], 'new');
    }
    case 'rmsprop': {
      const rho = c.rho ?? 0.9;
      const sq = slot('sq');
      const sqNext = op('Add', [op('Mul', [sq.name, s(rho)], 'sq_r'), op('Mul', [op('Mul', [g, g], 'g2'), s(1 - rho)], 'g2_r')], 'sq');
      slotValues.set(sq.name, sqNext);
      let update = op('Div', [g, op('Add', [op('Sqrt', [sqNext], 'sq_sqrt'), s(c.epsilon ?? 1e-7)], 'den')], 'ratio');
      if (c.momentum) {
        const buf = slot('momentum');
        update = op('Add', [op('Mul', [buf.name, s(c.momentum)], 'buf_m'), update], 'buf');
        slotValues.set(buf.name, update);
      }
      return op('Sub', [k, op('Mul', [update, r(gi.lr)], 'step')], 'new');
    }
  }
}
