/**
 * One converter per tfjs layer class: each turns a layer (its Keras-style config and weights) applied to ONNX values
 * into ONNX nodes. Values carry their tfjs shape and their layout: 4D tensors live in NCHW inside the graph (ONNX
 * convolutions are NCHW) and are transposed back to NHWC only where the order of values matters (Flatten, Reshape,
 * Dense on feature maps, graph outputs); see `ExportContext.as`.
 */
import { GraftError } from '../errors';
import { AttrValue, GraphBuilder } from './graph';
import { permute } from '../util/permute';

/** Where a value's axes are: `native` is the tfjs order (NHWC for 4D), `nchw` is ONNX's convolution order. */
export type Layout = 'native' | 'nchw';

/** A tensor in the ONNX graph. */
export interface Value {
  /** ONNX value name. */
  name: string;
  /** tfjs shape without the batch dimension ([h, w, c] for images, [features] for vectors). */
  shape: number[];
  /** Axis order in the graph. */
  layout: Layout;
}

/** A layer as model.json describes it. */
export interface LayerSpec {
  /** Layer name. */
  name: string;
  /** tfjs / Keras class name. */
  className: string;
  /** The layer's config (snake_case keys, as serialised). */
  config: Record<string, unknown>;
}

/** A decoded weight. */
export interface Weight {
  /** tfjs shape. */
  shape: number[];
  /** Values, row-major. */
  data: Float32Array;
}

/** What a converter may use: the graph, the layer weights and layout changes. */
export interface ExportContext {
  /** The graph being built. */
  g: GraphBuilder;
  /** Weight `<layer>/<suffix>`; throws naming the layer when missing. */
  weight(layer: LayerSpec, suffix: string): Weight;
  /** The value in `layout`, adding (and remembering) one Transpose when it is in the other layout. */
  as(v: Value, layout: Layout): Value;
}

/** Converts one layer applied to its inputs; returns its output. */
type Converter = (ctx: ExportContext, layer: LayerSpec, inputs: Value[]) => Value;

/** Maps a tfjs axis of a 4D tensor (with batch, NHWC; negatives allowed) to its NCHW position. */
function nchwAxis(axis: number): number {
  return [0, 2, 3, 1][axis < 0 ? axis + 4 : axis];
}

function pair(v: unknown, fallback?: number[]): number[] {
  if (v === undefined || v === null) return fallback!;
  return typeof v === 'number' ? [v, v] : (v as number[]);
}

function unsupported(layer: LayerSpec, what: string): GraftError {
  return new GraftError(`cannot export layer "${layer.name}" (${layer.className}) to ONNX: ${what} is not supported; export a model without it, or run it with --engine tfjs.`);
}

function channelsLast(layer: LayerSpec): void {
  const f = layer.config.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') throw unsupported(layer, `data_format ${JSON.stringify(f)}`);
}

/**
 * Pads and output size of one spatial axis as TensorFlow computes them: 'same' gives ceil(in / stride) outputs and
 * puts the odd pixel of padding at the end (bottom / right), which ONNX's SAME_UPPER would too, but explicit pads
 * keep the graph independent of each runtime's reading of auto_pad.
 */
export function spatialPads(size: number, kernel: number, stride: number, dilation: number, padding: string): { before: number; after: number; out: number } {
  const span = (kernel - 1) * dilation + 1;
  if (padding === 'valid') return { before: 0, after: 0, out: Math.floor((size - span) / stride) + 1 };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + span - size, 0);
  return { before: Math.floor(total / 2), after: total - Math.floor(total / 2), out };
}

/** Window attributes (kernel_shape, strides, dilations, pads) and output [h, w] for a conv or pool over `x`. */
function window(layer: LayerSpec, x: Value, kernel: number[], strides: number[], dilations: number[]): { attrs: Record<string, AttrValue>; hw: number[] } {
  const padding = String(layer.config.padding ?? 'valid');
  if (padding !== 'same' && padding !== 'valid') throw unsupported(layer, `padding ${JSON.stringify(padding)}`);
  const [ph, pw] = [0, 1].map((i) => spatialPads(x.shape[i], kernel[i], strides[i], dilations[i], padding));
  if (ph.out <= 0 || pw.out <= 0) {
    throw new GraftError(`layer "${layer.name}" (${layer.className}) gets a ${x.shape[0]}x${x.shape[1]} input, smaller than its window; use a larger input size.`);
  }
  return {
    attrs: { kernel_shape: kernel, strides, pads: [ph.before, pw.before, ph.after, pw.after] },
    hw: [ph.out, pw.out],
  };
}

/** Options for one ONNX Conv node. */
interface ConvArgs {
  /** Weights in ONNX order [out, in / group, kh, kw]. */
  w: Float32Array;
  /** Weight dimensions. */
  dims: number[];
  /** Bias per output channel. */
  bias?: Float32Array;
  /** Strides [h, w]. */
  strides: number[];
  /** Dilations [h, w]. */
  dilations: number[];
  /** Channel groups (input channels for depthwise). */
  group: number;
}

function conv(ctx: ExportContext, layer: LayerSpec, x: Value, a: ConvArgs, base = layer.name): Value {
  const input = ctx.as(x, 'nchw');
  const { attrs, hw } = window(layer, input, a.dims.slice(2), a.strides, a.dilations);
  const w = ctx.g.float(`${base}/kernel`, a.dims, a.w);
  const inputs = a.bias ? [input.name, w, ctx.g.float(`${base}/bias`, [a.dims[0]], a.bias)] : [input.name, w];
  const name = ctx.g.node('Conv', inputs, base, { ...attrs, dilations: a.dilations, group: a.group });
  return { name, shape: [...hw, a.dims[0]], layout: 'nchw' };
}

/**
 * A tfjs kernel [kh, kw, in, b] in ONNX's [out, in / group, kh, kw] order: for a convolution b is the output
 * channels; for a depthwise kernel b is the multiplier and input channel i, multiplier m becomes output i * b + m.
 */
function toOihw(k: Weight, options: { depthwise: boolean }): Float32Array {
  // Depthwise: [kh, kw, in, mult] -> [in, mult, kh, kw], so row i * mult + m; otherwise [out, in, kh, kw].
  return permute(k.data, k.shape, options.depthwise ? [2, 3, 0, 1] : [3, 2, 0, 1]);
}

function optionalBias(ctx: ExportContext, layer: LayerSpec): Float32Array | undefined {
  return layer.config.use_bias === false ? undefined : ctx.weight(layer, 'bias').data;
}

function convOptions(layer: LayerSpec): { strides: number[]; dilations: number[] } {
  channelsLast(layer);
  return { strides: pair(layer.config.strides, [1, 1]), dilations: pair(layer.config.dilation_rate, [1, 1]) };
}

const SELU_ALPHA = 1.6732632423543772;
const SELU_GAMMA = 1.0507009873554805;

/** Applies a tfjs activation by its serialised name; layout-preserving (softmax runs on the channel axis). */
export function activation(ctx: ExportContext, x: Value, fn: string, base: string, layer: LayerSpec): Value {
  const g = ctx.g;
  const same = (name: string): Value => ({ ...x, name });
  const unary = (op: string, attrs: Record<string, AttrValue> = {}) => same(g.node(op, [x.name], `${base}/${op.toLowerCase()}`, attrs));
  const scalar = (name: string, v: number) => g.float(`${base}/${name}`, [], Float32Array.of(v));
  switch (fn) {
    case 'linear':
      return x;
    case 'relu':
      return unary('Relu');
    case 'relu6':
      return same(g.node('Clip', [x.name, scalar('min', 0), scalar('max', 6)], `${base}/relu6`));
    case 'elu':
      return unary('Elu', { alpha: { float: 1 } });
    case 'selu':
      return unary('Selu', { alpha: { float: SELU_ALPHA }, gamma: { float: SELU_GAMMA } });
    case 'sigmoid':
      return unary('Sigmoid');
    case 'hard_sigmoid':
      return unary('HardSigmoid', { alpha: { float: 0.2 }, beta: { float: 0.5 } });
    case 'tanh':
      return unary('Tanh');
    case 'softplus':
      return unary('Softplus');
    case 'softsign':
      return unary('Softsign');
    case 'softmax':
      return unary('Softmax', { axis: x.layout === 'nchw' ? 1 : -1 });
    case 'swish':
      return same(g.node('Mul', [x.name, g.node('Sigmoid', [x.name], `${base}/sigmoid`)], `${base}/swish`));
    case 'mish': {
      const t = g.node('Tanh', [g.node('Softplus', [x.name], `${base}/softplus`)], `${base}/tanh`);
      return same(g.node('Mul', [x.name, t], `${base}/mish`));
    }
    case 'gelu': {
      // tfjs: 0.5 x (1 + erf(x / sqrt 2)); Gelu itself is only in opset 20.
      const erf = g.node('Erf', [g.node('Mul', [x.name, scalar('inv_sqrt2', Math.SQRT1_2)], `${base}/scaled`)], `${base}/erf`);
      const half = g.node('Mul', [x.name, scalar('half', 0.5)], `${base}/half`);
      return same(g.node('Mul', [half, g.node('Add', [erf, scalar('one', 1)], `${base}/onep`)], `${base}/gelu`));
    }
    case 'gelu_new': {
      // tfjs: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
      const cube = g.node('Mul', [x.name, g.node('Mul', [x.name, x.name], `${base}/sq`)], `${base}/cube`);
      const inner = g.node('Add', [x.name, g.node('Mul', [cube, scalar('c', 0.044715)], `${base}/cubec`)], `${base}/inner`);
      const t = g.node('Tanh', [g.node('Mul', [inner, scalar('k', Math.sqrt(2 / Math.PI))], `${base}/innerk`)], `${base}/tanh`);
      const half = g.node('Mul', [x.name, scalar('half', 0.5)], `${base}/half`);
      return same(g.node('Mul', [half, g.node('Add', [t, scalar('one', 1)], `${base}/onep`)], `${base}/gelu`));
    }
    default:
      throw unsupported(layer, `activation ${JSON.stringify(fn)}`);
  }
}

function withActivation(ctx: ExportContext, layer: LayerSpec, y: Value): Value {
  return activation(ctx, y, String(layer.config.activation ?? 'linear'), layer.name, layer);
}

/**
 * onnxruntime's PadFusion merges a zero Pad into the pooling after it as that op's own padding, which MaxPool fills
 * with -inf, not zeros (Keras ResNet v2 pads its stem with zeros before a max pool). Padding with -0.0 instead is
 * the same numbers but not byte-for-byte zero, so the rewrite is skipped.
 */
function guardZeroPad(ctx: ExportContext, value: string): void {
  const pad = ctx.g.producer(value);
  if (pad?.op === 'Pad' && pad.inputs.length === 2) pad.inputs.push(ctx.g.float(`${pad.name}/value`, [], Float32Array.of(-0)));
}

function pool(op: 'MaxPool' | 'AveragePool'): Converter {
  return (ctx, layer, [x]) => {
    channelsLast(layer);
    const input = ctx.as(x, 'nchw');
    guardZeroPad(ctx, input.name);
    const kernel = pair(layer.config.pool_size, [2, 2]);
    const strides = pair(layer.config.strides, kernel);
    const { attrs, hw } = window(layer, input, kernel, strides, [1, 1]);
    // TF 'same' average pooling divides by the number of real pixels under the window, never the padding.
    const extra: Record<string, AttrValue> = op === 'AveragePool' ? { count_include_pad: 0 } : {};
    return { name: ctx.g.node(op, [input.name], layer.name, { ...attrs, ...extra }), shape: [...hw, x.shape[2]], layout: 'nchw' };
  };
}

function globalPool(op: 'GlobalAveragePool' | 'GlobalMaxPool'): Converter {
  return (ctx, layer, [x]) => {
    channelsLast(layer);
    const input = ctx.as(x, 'nchw');
    const pooled = ctx.g.node(op, [input.name], `${layer.name}/pool`);
    const c = x.shape[2];
    if (layer.config.keepdims === true) return { name: pooled, shape: [1, 1, c], layout: 'nchw' };
    return { name: ctx.g.node('Flatten', [pooled], layer.name, { axis: 1 }), shape: [c], layout: 'native' };
  };
}

/** Elementwise merge of same-rank inputs, in NCHW when they are feature maps. */
function merge(op: 'Add' | 'Mul' | 'Sub' | 'Max' | 'Min' | 'Mean'): Converter {
  return (ctx, layer, inputs) => {
    const layout: Layout = inputs.every((v) => v.shape.length === 3) ? 'nchw' : 'native';
    const names = inputs.map((v) => ctx.as(v, layout).name);
    const shape = inputs[0].shape.map((_, i) => Math.max(...inputs.map((v) => v.shape[i])));
    let name: string;
    if (op === 'Add' || op === 'Mul' || op === 'Sub') {
      if (op === 'Sub' && names.length !== 2) throw unsupported(layer, `${names.length} inputs`);
      name = names.slice(1).reduce((acc, n, i) => ctx.g.node(op, [acc, n], i === names.length - 2 ? layer.name : `${layer.name}/partial`), names[0]);
    } else {
      name = ctx.g.node(op, names, layer.name);
    }
    return { name, shape, layout };
  };
}

/** Layers that are the identity at inference. */
const identity: Converter = (_ctx, _layer, [x]) => x;

const CONVERTERS: Record<string, Converter> = {
  Conv2D: (ctx, layer, [x]) => {
    const k = ctx.weight(layer, 'kernel');
    const y = conv(ctx, layer, x, { w: toOihw(k, { depthwise: false }), dims: [k.shape[3], k.shape[2], k.shape[0], k.shape[1]], bias: optionalBias(ctx, layer), group: 1, ...convOptions(layer) });
    return withActivation(ctx, layer, y);
  },
  DepthwiseConv2D: (ctx, layer, [x]) => {
    const k = ctx.weight(layer, 'depthwise_kernel');
    const [kh, kw, cin, mult] = k.shape;
    const y = conv(ctx, layer, x, { w: toOihw(k, { depthwise: true }), dims: [cin * mult, 1, kh, kw], bias: optionalBias(ctx, layer), group: cin, ...convOptions(layer) });
    return withActivation(ctx, layer, y);
  },
  SeparableConv2D: (ctx, layer, [x]) => {
    const d = ctx.weight(layer, 'depthwise_kernel');
    const p = ctx.weight(layer, 'pointwise_kernel');
    const [kh, kw, cin, mult] = d.shape;
    const depth = conv(ctx, layer, x, { w: toOihw(d, { depthwise: true }), dims: [cin * mult, 1, kh, kw], group: cin, ...convOptions(layer) }, `${layer.name}/depthwise`);
    const pointLayer = { ...layer, config: { ...layer.config, padding: 'valid' } };
    const point = conv(ctx, pointLayer, depth, { w: toOihw(p, { depthwise: false }), dims: [p.shape[3], p.shape[2], 1, 1], bias: optionalBias(ctx, layer), group: 1, strides: [1, 1], dilations: [1, 1] });
    return withActivation(ctx, layer, point);
  },
  BatchNormalization: (ctx, layer, [x]) => {
    const rank = x.shape.length + 1;
    const axis = Number(layer.config.axis ?? -1);
    if (!(rank === 4 && (axis === -1 || axis === 3)) && !(rank === 2 && (axis === -1 || axis === 1))) {
      throw unsupported(layer, `axis ${axis} on a rank-${rank} input`);
    }
    const input = ctx.as(x, 'nchw');
    const mean = ctx.weight(layer, 'moving_mean').data;
    const c = mean.length;
    const gamma = layer.config.scale === false ? new Float32Array(c).fill(1) : ctx.weight(layer, 'gamma').data;
    const beta = layer.config.center === false ? new Float32Array(c) : ctx.weight(layer, 'beta').data;
    const variance = ctx.weight(layer, 'moving_variance').data;
    const params = ([['gamma', gamma], ['beta', beta], ['mean', mean], ['variance', variance]] as const).map(([n, d]) =>
      ctx.g.float(`${layer.name}/${n}`, [c], Float32Array.from(d)),
    );
    const name = ctx.g.node('BatchNormalization', [input.name, ...params], layer.name, { epsilon: { float: Number(layer.config.epsilon ?? 1e-3) } });
    return { ...input, name };
  },
  Activation: (ctx, layer, [x]) => withActivation(ctx, layer, x),
  ReLU: (ctx, layer, [x]) => {
    const max = layer.config.max_value;
    if (max === undefined || max === null) return activation(ctx, x, 'relu', layer.name, layer);
    const lo = ctx.g.float(`${layer.name}/min`, [], Float32Array.of(0));
    const hi = ctx.g.float(`${layer.name}/max`, [], Float32Array.of(Number(max)));
    return { ...x, name: ctx.g.node('Clip', [x.name, lo, hi], layer.name) };
  },
  LeakyReLU: (ctx, layer, [x]) => ({ ...x, name: ctx.g.node('LeakyRelu', [x.name], layer.name, { alpha: { float: Number(layer.config.alpha ?? 0.3) } }) }),
  ELU: (ctx, layer, [x]) => ({ ...x, name: ctx.g.node('Elu', [x.name], layer.name, { alpha: { float: Number(layer.config.alpha ?? 1) } }) }),
  Softmax: (ctx, layer, [x]) => {
    const axis = Number(layer.config.axis ?? 1); // tfjs's default, unlike Keras's -1
    const onnxAxis = x.layout === 'nchw' ? nchwAxis(axis) : axis;
    return { ...x, name: ctx.g.node('Softmax', [x.name], layer.name, { axis: onnxAxis }) };
  },
  MaxPooling2D: pool('MaxPool'),
  AveragePooling2D: pool('AveragePool'),
  GlobalAveragePooling2D: globalPool('GlobalAveragePool'),
  GlobalMaxPooling2D: globalPool('GlobalMaxPool'),
  ZeroPadding2D: (ctx, layer, [x]) => {
    channelsLast(layer);
    const raw = layer.config.padding;
    const [[t, b], [l, r]] = typeof raw === 'number' ? [[raw, raw], [raw, raw]] : (raw as unknown[]).map((p) => pair(p));
    const input = ctx.as(x, 'nchw');
    const pads = ctx.g.int64(`${layer.name}/pads`, [0, 0, t, l, 0, 0, b, r]);
    return { name: ctx.g.node('Pad', [input.name, pads], layer.name), shape: [x.shape[0] + t + b, x.shape[1] + l + r, x.shape[2]], layout: 'nchw' };
  },
  Cropping2D: (ctx, layer, [x]) => {
    channelsLast(layer);
    const raw = layer.config.cropping;
    const [[t, b], [l, r]] = typeof raw === 'number' ? [[raw, raw], [raw, raw]] : (raw as unknown[]).map((p) => pair(p));
    const input = ctx.as(x, 'nchw');
    const [h, w] = [x.shape[0] - t - b, x.shape[1] - l - r];
    const g = ctx.g;
    const name = g.node('Slice', [input.name, g.int64(`${layer.name}/starts`, [t, l]), g.int64(`${layer.name}/ends`, [t + h, l + w]), g.int64(`${layer.name}/axes`, [2, 3])], layer.name);
    return { name, shape: [h, w, x.shape[2]], layout: 'nchw' };
  },
  Add: merge('Add'),
  Multiply: merge('Mul'),
  Subtract: merge('Sub'),
  Maximum: merge('Max'),
  Minimum: merge('Min'),
  Average: merge('Mean'),
  Concatenate: (ctx, layer, inputs) => {
    const rank = inputs[0].shape.length + 1;
    let axis = Number(layer.config.axis ?? -1);
    if (axis < 0) axis += rank;
    const layout: Layout = rank === 4 ? 'nchw' : 'native';
    const shape = [...inputs[0].shape];
    shape[axis - 1] = inputs.reduce((n, v) => n + v.shape[axis - 1], 0);
    const names = inputs.map((v) => ctx.as(v, layout).name);
    return { name: ctx.g.node('Concat', names, layer.name, { axis: layout === 'nchw' ? nchwAxis(axis) : axis }), shape, layout };
  },
  Flatten: (ctx, layer, [x]) => {
    // tfjs flattens in NHWC order, so the feature maps go back to NHWC first or a Dense after it sees shuffled inputs.
    const input = ctx.as(x, 'native');
    if (x.shape.length === 1) return input;
    const n = x.shape.reduce((a, b) => a * b, 1);
    return { name: ctx.g.node('Flatten', [input.name], layer.name, { axis: 1 }), shape: [n], layout: 'native' };
  },
  Reshape: (ctx, layer, [x]) => {
    const target = (layer.config.target_shape as number[]).map(Number);
    const total = x.shape.reduce((a, b) => a * b, 1);
    const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const shape = target.map((d) => (d === -1 ? total / known : d));
    const input = ctx.as(x, 'native');
    const dims = ctx.g.int64(`${layer.name}/shape`, [0, ...target]);
    return { name: ctx.g.node('Reshape', [input.name, dims], layer.name), shape, layout: 'native' };
  },
  Dense: (ctx, layer, [x]) => {
    const k = ctx.weight(layer, 'kernel');
    const bias = optionalBias(ctx, layer);
    const input = ctx.as(x, 'native');
    const units = k.shape[1];
    const w = ctx.g.float(`${layer.name}/kernel`, k.shape, Float32Array.from(k.data));
    const b = bias ? ctx.g.float(`${layer.name}/bias`, [units], Float32Array.from(bias)) : undefined;
    let name: string;
    if (x.shape.length === 1) {
      name = ctx.g.node('Gemm', b ? [input.name, w, b] : [input.name, w], layer.name);
    } else {
      // Dense on a higher-rank tensor acts on the last (channel) axis, which MatMul broadcasts over.
      name = ctx.g.node('MatMul', [input.name, w], b ? `${layer.name}/matmul` : layer.name);
      if (b) name = ctx.g.node('Add', [name, b], layer.name);
    }
    return withActivation(ctx, layer, { name, shape: [...x.shape.slice(0, -1), units], layout: 'native' });
  },
  Rescaling: (ctx, layer, [x]) => {
    const raw = layer.config.scale ?? 1;
    const offset = Number(layer.config.offset ?? 0);
    // A per-channel scale (EfficientNet's stem) broadcasts over the channel axis of whichever layout x is in.
    const perChannel = Array.isArray(raw) ? Float32Array.from((raw as unknown[]).map(Number)) : undefined;
    const dims = perChannel ? (x.layout === 'nchw' && x.shape.length === 3 ? [perChannel.length, 1, 1] : [perChannel.length]) : [];
    const scale = ctx.g.float(`${layer.name}/scale`, dims, perChannel ?? Float32Array.of(Number(raw)));
    let name = ctx.g.node('Mul', [x.name, scale], offset ? `${layer.name}/scaled` : layer.name);
    if (offset) name = ctx.g.node('Add', [name, ctx.g.float(`${layer.name}/offset`, [], Float32Array.of(offset))], layer.name);
    return { ...x, name };
  },
  Dropout: identity,
  SpatialDropout1D: identity,
  SpatialDropout2D: identity,
  AlphaDropout: identity,
  GaussianDropout: identity,
  GaussianNoise: identity,
};

/** Layer classes the exporter converts. */
export const SUPPORTED_LAYERS = ['InputLayer', ...Object.keys(CONVERTERS)];

/** Converts one layer; an unknown class is an error naming the layer. */
export function convertLayer(ctx: ExportContext, layer: LayerSpec, inputs: Value[]): Value {
  const convert = CONVERTERS[layer.className];
  if (!convert) {
    throw new GraftError(
      `cannot export layer "${layer.name}" (${layer.className}) to ONNX; supported layers: ${SUPPORTED_LAYERS.join(', ')}. Run this model with --engine tfjs.`,
    );
  }
  return convert(ctx, layer, inputs);
}
