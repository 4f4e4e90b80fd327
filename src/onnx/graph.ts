/**
 * A small builder for ONNX graphs on top of the `onnx-proto` schema classes: unique value names, float32 / int64
 * initializers kept as typed arrays until serialisation (so a later pass can fold batch normalization into a
 * convolution's weights in place), and nodes with typed attributes.
 */
import { onnx } from 'onnx-proto';

/** ONNX opset graft exports to (every op graft emits has a stable definition there). */
export const ONNX_OPSET = 17;
/** IR version matching opset 17 (ONNX 1.12), loadable by onnxruntime 1.12 and later. */
const IR_VERSION = 8;

/** An attribute value: numbers become INT unless listed as floats, arrays become INTS / FLOATS, strings STRING. */
export type AttrValue = number | string | number[] | { floats: number[] } | { float: number };

/** A float32 weight tensor still owned by the builder, editable until `encode`. */
export interface Initializer {
  /** Value name in the graph. */
  name: string;
  /** Dimensions. */
  dims: number[];
  /** Values, row-major. */
  data: Float32Array | BigInt64Array;
}

/** A node as the builder holds it (plain data, editable until `encode`). */
export interface GraphNode {
  /** ONNX operator type. */
  op: string;
  /** Input value names ('' for an omitted optional input). */
  inputs: string[];
  /** Output value names. */
  outputs: string[];
  /** Attributes by name. */
  attrs: Record<string, AttrValue>;
  /** Node name (for readable graphs and runtime profiles). */
  name: string;
}

/** A graph input or output: name and shape with `null` for the dynamic batch dimension. */
export interface GraphIO {
  /** Value name. */
  name: string;
  /** Dimensions; `null` is the batch dimension. */
  shape: Array<number | null>;
}

/** Builds one ONNX graph. */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly initializers = new Map<string, Initializer>();
  private readonly used = new Set<string>();
  private readonly producers = new Map<string, GraphNode>();

  /** Reserves `name` exactly (graph inputs and outputs keep the tfjs layer names). */
  reserve(name: string): string {
    this.used.add(name);
    return name;
  }

  /** A value name not used yet, derived from `base`. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Adds a float32 initializer and returns its name. */
  float(base: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(base);
    this.initializers.set(name, { name, dims, data });
    return name;
  }

  /** Adds an int64 initializer (shapes, pads, axes) and returns its name. */
  int64(base: string, values: number[]): string {
    const name = this.fresh(base);
    this.initializers.set(name, { name, dims: [values.length], data: BigInt64Array.from(values.map((v) => BigInt(v))) });
    return name;
  }

  /** Adds a node with one output named after `base` and returns the output name. */
  node(op: string, inputs: string[], base: string, attrs: Record<string, AttrValue> = {}): string {
    const out = this.fresh(base);
    this.nodeTo(op, inputs, out, attrs);
    return out;
  }

  /** Adds a node whose output name is already reserved (graph outputs). */
  nodeTo(op: string, inputs: string[], out: string, attrs: Record<string, AttrValue> = {}): void {
    const node = { op, inputs, outputs: [out], attrs, name: out };
    this.nodes.push(node);
    this.producers.set(out, node);
  }

  /** The node producing `value`, if the graph has one yet. */
  producer(value: string): GraphNode | undefined {
    return this.producers.get(value);
  }

  /**
   * Folds every BatchNormalization whose input is a Conv used by nothing else into that Conv's weights and bias
   * (W' = W * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta, per output channel), so the runtime
   * runs one op instead of two. Returns how many were folded.
   */
  foldBatchNorm(graphOutputs: string[]): number {
    const uses = new Map<string, number>();
    for (const n of this.nodes) for (const i of n.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const o of graphOutputs) uses.set(o, (uses.get(o) ?? 0) + 1);
    const floats = (name: string) => this.initializers.get(name)?.data as Float32Array | undefined;
    const removed = new Set<GraphNode>();
    for (const bn of this.nodes) {
      if (bn.op !== 'BatchNormalization') continue;
      const conv = this.producers.get(bn.inputs[0]);
      if (!conv || conv.op !== 'Conv' || uses.get(bn.inputs[0]) !== 1) continue;
      const w = floats(conv.inputs[1]);
      const [gamma, beta, mean, variance] = bn.inputs.slice(1).map(floats);
      if (!w || !gamma || !beta || !mean || !variance || uses.get(conv.inputs[1]) !== 1) continue;
      if (conv.inputs[2] && uses.get(conv.inputs[2]) !== 1) continue;
      const eps = (bn.attrs.epsilon as { float: number }).float;
      const channels = gamma.length;
      const per = w.length / channels;
      const bias = new Float32Array(channels);
      const oldBias = conv.inputs[2] ? floats(conv.inputs[2]) : undefined;
      for (let o = 0; o < channels; o++) {
        const scale = gamma[o] / Math.sqrt(variance[o] + eps);
        for (let j = o * per; j < (o + 1) * per; j++) w[j] = w[j] * scale;
        bias[o] = ((oldBias?.[o] ?? 0) - mean[o]) * scale + beta[o];
      }
      if (conv.inputs[2]) this.initializers.get(conv.inputs[2])!.data = bias;
      else conv.inputs[2] = this.float(`${conv.name}/bias`, [channels], bias);
      for (const name of bn.inputs.slice(1)) if (uses.get(name) === 1) this.initializers.delete(name);
      this.producers.delete(conv.outputs[0]);
      conv.outputs[0] = bn.outputs[0];
      this.producers.set(conv.outputs[0], conv);
      removed.add(bn);
    }
    const kept = this.nodes.filter((n) => !removed.has(n));
    this.nodes.splice(0, this.nodes.length, ...kept);
    return removed.size;
  }

  /** Serialises the graph as an ONNX model (protobuf bytes). */
  encode(args: { name: string; inputs: GraphIO[]; outputs: GraphIO[]; producerVersion: string; docString?: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'graft',
      producerVersion: args.producerVersion,
      docString: args.docString ?? '',
      graph: {
        name: args.name,
        node: this.nodes.map((n) => ({ opType: n.op, input: n.inputs, output: n.outputs, name: n.name, attribute: encodeAttrs(n.attrs) })),
        initializer: [...this.initializers.values()].map(encodeTensor),
        input: args.inputs.map(valueInfo),
        output: args.outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function encodeTensor(t: Initializer): onnx.ITensorProto {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return {
    name: t.name,
    dims: t.dims,
    dataType: t.data instanceof Float32Array ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64,
    rawData: bytes,
  };
}

function encodeAttrs(attrs: Record<string, AttrValue>): onnx.IAttributeProto[] {
  const T = onnx.AttributeProto.AttributeType;
  return Object.entries(attrs).map(([name, v]) => {
    if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
    if (typeof v === 'number') return { name, type: T.INT, i: v };
    if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
    if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
    return { name, type: T.FLOAT, f: v.float };
  });
}

function valueInfo(io: GraphIO): onnx.IValueInfoProto {
  return {
    name: io.name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: io.shape.map((d) => (d === null ? { dimParam: 'batch' } : { dimValue: d })) },
      },
    },
  };
}
