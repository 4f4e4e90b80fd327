/**
 * The building context of a compiled training step: a GraphBuilder plus a tape. Every differentiable operation the
 * forward pass emits records how to turn its output's gradient into its inputs' gradients; `backward` replays the
 * tape in reverse, summing the contributions of values read more than once (residual connections). Only values
 * that depend on a trained weight carry gradients, so nothing is spent on the input's gradient.
 */
import { GraftError } from '../../errors';
import { AttrValue, GraphBuilder } from '../graph';

/** Where a 4D value's axes are: `native` is tfjs's NHWC, `nchw` is ONNX's convolution order. */
export type Layout = 'native' | 'nchw';

/** A tensor of the step graph. */
export interface TValue {
  /** ONNX value name. */
  name: string;
  /** tfjs shape including the (fixed) batch dimension, NHWC for images, whatever the layout. */
  shape: number[];
  /** Axis order in the graph. */
  layout: Layout;
}

/** Turns the gradient of an entry's output into gradients for the inputs that need one (undefined otherwise). */
export type BackwardFn = (dy: string, need: boolean[]) => Array<string | undefined>;

interface TapeEntry {
  inputs: TValue[];
  output: TValue;
  backward: BackwardFn;
}

/** A weight (or BN statistic) the step reads: a graph input keyed by the tfjs weight's original name. */
export interface WeightInput {
  /** Original name, e.g. `conv1/kernel`; also the graph input's name. */
  key: string;
  /** tfjs shape. */
  shape: number[];
  /** Whether the step computes its gradient and updates it. */
  trainable: boolean;
  /** The graph holds it as the tfjs value transposed by this permutation (absent: as tfjs holds it). */
  perm?: number[];
}

/** The graph's dims of a value (NCHW when its layout is nchw). */
export function dimsOf(v: TValue): number[] {
  return v.layout === 'nchw' && v.shape.length === 4 ? [v.shape[0], v.shape[3], v.shape[1], v.shape[2]] : v.shape;
}

/** The graph's dims of a weight: its tfjs shape, permuted when the graph holds it transposed. */
export function graphDims(w: { shape: number[]; perm?: number[] }): number[] {
  return w.perm ? w.perm.map((i) => w.shape[i]) : w.shape;
}

/** Number of elements of a shape. */
export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Builds the step graph: nodes, constants, weight inputs, the tape and the gradients it produces. */
export class StepContext {
  readonly g = new GraphBuilder();
  /** Weights read, in first-use order. */
  readonly weights = new Map<string, WeightInput>();
  /** Gradient value per trainable weight key. */
  readonly weightGrads = new Map<string, string[]>();
  /** New values of BN moving statistics (key -> value name). */
  readonly stateUpdates = new Map<string, string>();
  /** The input of each ReLU by its output's name (a max pool after a ReLU differentiates through both at once). */
  readonly reluInputs = new Map<string, TValue>();
  /** Extra float inputs (dropout masks): name and dims. */
  readonly extraInputs: Array<{ name: string; dims: number[]; rate: number; layer: string }> = [];
  private readonly tape: TapeEntry[] = [];
  private readonly requires = new Set<string>();
  private readonly rawLayouts = new Map<string, string>();
  private readonly transposed = new Map<string, TValue>();
  private readonly consts = new Map<string, string>();

  /**
   * `shapes` maps every weight of the model (original name) to its shape: shapes come from the weights rather
   * than the configs, which tfjs does not always serialise completely (SeparableConv2D drops depth_multiplier).
   */
  constructor(
    private readonly trainableKeys: Set<string>,
    private readonly shapes: Map<string, number[]>,
  ) {}

  /** Adds a node; returns its (single) output name. */
  op(op: string, inputs: string[], base: string, attrs: Record<string, AttrValue> = {}): string {
    return this.g.node(op, inputs, base, attrs);
  }

  /** Adds a node with several outputs. */
  opMulti(op: string, inputs: string[], bases: string[], attrs: Record<string, AttrValue> = {}): string[] {
    const outs = bases.map((b) => this.g.fresh(b));
    this.g.nodes.push({ op, inputs, outputs: outs, attrs, name: outs[0] });
    return outs;
  }

  /** A float32 scalar constant (shared by value). */
  scalar(v: number): string {
    const key = `f${Math.fround(v)}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.g.float(`const/${Math.fround(v)}`, [], Float32Array.of(v));
      this.consts.set(key, name);
    }
    return name;
  }

  /**
   * A rank-0 value (a constant or a graph scalar such as the learning rate) as a tensor of `rank` ones, shared per
   * value and rank. Elementwise ops on a [O, I, 1, 1] kernel with a rank-0 operand ran 25 times slower in onnxruntime
   * 1.30 (31 ms against 1.2 ms for 2 M floats: its broadcaster walks such shapes element by element) than with the
   * operand at the tensor's rank.
   */
  scalarAs(value: string, rank: number): string {
    if (rank <= 1) return value;
    const key = `r${rank}:${value}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.op('Reshape', [value, this.ints(new Array(rank).fill(1))], `${value}/rank${rank}`);
      this.consts.set(key, name);
    }
    return name;
  }

  /** A float32 tensor constant. */
  tensor(base: string, dims: number[], data: Float32Array): string {
    return this.g.float(base, dims, data);
  }

  /** An int64 vector constant (shapes, axes, pads; shared by value). */
  ints(values: number[]): string {
    const key = `i${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.g.int64(`const/i64_${values.join('_').replace(/-/g, 'm')}`, values);
      this.consts.set(key, name);
    }
    return name;
  }

  /**
   * The graph input of a weight (created on first use); a missing weight is an error naming it. With `perm`, the
   * graph holds the weight transposed that way (a convolution's HWIO kernel as ONNX's OIHW), so no step transposes
   * it again: the runner transposes on the way in and out, and its gradient and optimiser slots share the layout.
   * `shape` is always the tfjs shape.
   */
  weight(key: string, perm?: number[]): { name: string; trainable: boolean; shape: number[] } {
    let w = this.weights.get(key);
    if (!w) {
      const shape = this.shapes.get(key);
      if (!shape) throw new GraftError(`the model has no weight ${key}; it does not match its own layer configs (save and load it again).`);
      w = { key, shape, trainable: this.trainableKeys.has(key), perm };
      this.weights.set(key, w);
      this.g.reserve(key);
    } else if (String(w.perm) !== String(perm)) {
      throw new GraftError(`internal: weight ${key} is read in two layouts by the compiled step.`);
    }
    return { name: key, trainable: w.trainable, shape: w.shape };
  }

  /** Records a gradient contribution for a trainable weight. */
  addWeightGrad(key: string, grad: string): void {
    const list = this.weightGrads.get(key) ?? [];
    list.push(grad);
    this.weightGrads.set(key, list);
  }

  /** Whether a value depends on a trained weight. */
  requiresGrad(v: TValue): boolean {
    return this.requires.has(v.name);
  }

  /**
   * Records a differentiable operation. `own` says the operation reads trained weights itself (so its output needs
   * a gradient even when its inputs do not).
   */
  record(inputs: TValue[], output: TValue, backward: BackwardFn, own = false): TValue {
    if (own || inputs.some((v) => this.requires.has(v.name))) {
      this.requires.add(output.name);
      this.tape.push({ inputs, output, backward });
    }
    return output;
  }

  /** `v` in `layout`, with one recorded Transpose (remembered, so every reader shares it). */
  as(v: TValue, layout: Layout): TValue {
    if (v.layout === layout || v.shape.length !== 4) return v;
    const key = `${v.name}>${layout}`;
    let t = this.transposed.get(key);
    if (!t) {
      const perm = layout === 'nchw' ? [0, 3, 1, 2] : [0, 2, 3, 1];
      const back = layout === 'nchw' ? [0, 2, 3, 1] : [0, 3, 1, 2];
      t = { name: this.op('Transpose', [v.name], `${v.name}/${layout}`, { perm }), shape: v.shape, layout };
      this.transposed.set(key, t);
      this.record([v], t, (dy) => [this.op('Transpose', [dy], `${v.name}/${layout}/grad`, { perm: back })]);
    }
    return t;
  }

  /**
   * A 4D value as [C, N, H, W] without a tape entry (for weight gradients, which need no gradient themselves);
   * shared by every reader.
   */
  channelsFirst(v: TValue): string {
    let name = this.rawLayouts.get(v.name);
    if (!name) {
      const [n, h, w, c] = v.shape;
      if (v.layout === 'nchw' && (n === 1 || c === 1)) name = this.op('Reshape', [v.name, this.ints([c, n, h, w])], `${v.name}/cnhw`);
      else name = this.op('Transpose', [v.name], `${v.name}/cnhw`, { perm: v.layout === 'nchw' ? [1, 0, 2, 3] : [3, 0, 1, 2] });
      this.rawLayouts.set(v.name, name);
    }
    return name;
  }

  /**
   * Back-propagates from `seeds` (value name -> its gradient) through the tape. Weight gradients land in
   * `weightGrads` through the entries' backward functions.
   */
  backward(seeds: Map<string, string>): void {
    const grads = new Map<string, string[]>();
    for (const [k, v] of seeds) grads.set(k, [v]);
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const e = this.tape[i];
      const dy = this.sum(grads.get(e.output.name), `${e.output.name}/grad`);
      if (!dy) continue;
      const need = e.inputs.map((v) => this.requires.has(v.name));
      const dx = e.backward(dy, need);
      e.inputs.forEach((v, j) => {
        if (!need[j]) return;
        const d = dx[j];
        if (!d) throw new GraftError(`internal: no gradient for ${v.name} from ${e.output.name}`);
        const list = grads.get(v.name) ?? [];
        list.push(d);
        grads.set(v.name, list);
      });
    }
  }

  /** Sum of gradient contributions (undefined when there are none). */
  sum(list: string[] | undefined, base: string): string | undefined {
    if (!list || !list.length) return undefined;
    if (list.length === 1) return list[0];
    return this.op('Sum', list, `${base}/sum`);
  }
}
