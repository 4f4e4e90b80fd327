/**
 * Forward and reverse mode of each tfjs layer class in plain ONNX operators (opset 17, no training ops). Feature
 * maps stay NCHW as in the exporter. The gradient formulations are the measured ones of the reference notes:
 * im2col + one Gemm for a convolution's filter gradient, a Conv with the flipped transposed filter (stride 1) or a
 * ConvTranspose (strided) for its input gradient, MaxPool indices + MaxUnpool (tiled windows) or ScatterElements
 * (overlapping ones) for max pooling. Every rule
 * follows what tfjs's autodiff computes for the same layer, so the two engines train alike.
 */
import { GraftError } from '../../errors';
import { AttrValue } from '../graph';
import { spatialPads } from '../layers';
import { StepContext, TValue, dimsOf, sizeOf } from './tape';

/** A layer as model.json describes it. */
export interface StepLayer {
  /** Layer name. */
  name: string;
  /** tfjs class name. */
  className: string;
  /** Serialised config (snake_case keys). */
  config: Record<string, unknown>;
  /** Whether the layer is trainable (a frozen BN runs in inference mode). */
  trainable: boolean;
}

type Rule = (ctx: StepContext, layer: StepLayer, inputs: TValue[]) => TValue;

/** The error `--train-engine auto` reports when it falls back to tfjs. */
export function unsupportedLayer(layer: StepLayer, what?: string): GraftError {
  const detail = what ? `: ${what} is not supported` : '';
  return new GraftError(
    `the compiled training step cannot train layer "${layer.name}" (${layer.className})${detail}; supported layers: ${TRAIN_STEP_LAYERS.join(', ')}. Use --train-engine tfjs.`,
  );
}

function pair(v: unknown, fallback: number[]): number[] {
  if (v === undefined || v === null) return fallback;
  return typeof v === 'number' ? [v, v] : (v as number[]);
}

function channelsLast(layer: StepLayer): void {
  const f = layer.config.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') throw unsupportedLayer(layer, `data_format ${JSON.stringify(f)}`);
}

/** The four pads [top, left, bottom, right] and output size of a window over an NHWC shape. */
function windowGeometry(layer: StepLayer, x: TValue, kernel: number[], strides: number[], dilations: number[]) {
  const padding = String(layer.config.padding ?? 'valid');
  if (padding !== 'same' && padding !== 'valid') throw unsupportedLayer(layer, `padding ${JSON.stringify(padding)}`);
  const [ph, pw] = [0, 1].map((i) => spatialPads(x.shape[i + 1], kernel[i], strides[i], dilations[i], padding));
  if (ph.out <= 0 || pw.out <= 0) {
    throw new GraftError(`layer "${layer.name}" (${layer.className}) gets a ${x.shape[1]}x${x.shape[2]} input, smaller than its window; use a larger input size.`);
  }
  return { pads: [ph.before, pw.before, ph.after, pw.after], out: [ph.out, pw.out] };
}

/** Reverse of a Reshape / Flatten: the gradient takes the input's dims back. */
function reshapeBack(ctx: StepContext, dy: string, v: TValue, base: string): string {
  return ctx.op('Reshape', [dy, ctx.ints(dimsOf(v))], base);
}

// ---------------------------------------------------------------------------------------------------------------
// Activations

/** Applies a tfjs activation by serialised name, recording its reverse rule. */
export function applyActivation(ctx: StepContext, x: TValue, fn: string, base: string, layer: StepLayer): TValue {
  const s = (v: number) => ctx.scalar(v);
  const out = (name: string): TValue => ({ ...x, name });
  const rec = (y: TValue, back: (dy: string) => string) => ctx.record([x], y, (dy) => [back(dy)]);
  const b = `${base}/grad`;
  switch (fn) {
    case 'linear':
      return x;
    case 'relu': {
      const y = out(ctx.op('Relu', [x.name], `${base}/relu`));
      ctx.reluInputs.set(y.name, x);
      // tfjs: dy * step(x), read off the output (x > 0 exactly where relu(x) > 0) so that nothing else reads x and
      // onnxruntime can fuse the Relu into the Conv before it; Mul by the cast mask is faster than Where's broadcast.
      return rec(y, (dy) => ctx.op('Mul', [dy, positive(ctx, y.name, b)], b));
    }
    case 'relu6': {
      const y = out(ctx.op('Clip', [x.name, s(0), s(6)], `${base}/relu6`));
      // tfjs: dy * (x <= 6) * step(x).
      const mask = ctx.op('And', [ctx.op('Greater', [x.name, s(0)], `${b}/pos`), ctx.op('LessOrEqual', [x.name, s(6)], `${b}/le6`)], `${b}/mask`);
      return rec(y, (dy) => ctx.op('Where', [mask, dy, s(0)], b));
    }
    case 'sigmoid': {
      const y = out(ctx.op('Sigmoid', [x.name], `${base}/sigmoid`));
      return rec(y, (dy) => ctx.op('Mul', [dy, ctx.op('Mul', [y.name, ctx.op('Sub', [s(1), y.name], `${b}/1my`)], `${b}/dsig`)], b));
    }
    case 'tanh': {
      const y = out(ctx.op('Tanh', [x.name], `${base}/tanh`));
      return rec(y, (dy) => ctx.op('Mul', [dy, ctx.op('Sub', [s(1), ctx.op('Mul', [y.name, y.name], `${b}/y2`)], `${b}/dtanh`)], b));
    }
    case 'softmax': {
      const axis = x.layout === 'nchw' ? 1 : -1;
      return softmax(ctx, x, axis, base);
    }
    case 'elu': {
      const y = out(ctx.op('Elu', [x.name], `${base}/elu`, { alpha: { float: 1 } }));
      // tfjs EluGrad: dy where y >= 0, dy * (y + 1) elsewhere.
      return rec(y, (dy) => ctx.op('Where', [ctx.op('GreaterOrEqual', [y.name, s(0)], `${b}/pos`), dy, ctx.op('Mul', [dy, ctx.op('Add', [y.name, s(1)], `${b}/y1`)], `${b}/neg`)], b));
    }
    case 'selu': {
      const alpha = 1.6732632423543772;
      const scale = 1.0507009873554805;
      const y = out(ctx.op('Selu', [x.name], `${base}/selu`, { alpha: { float: alpha }, gamma: { float: scale } }));
      return rec(y, (dy) => {
        const neg = ctx.op('Mul', [ctx.op('Mul', [dy, s(alpha * scale)], `${b}/dsa`), ctx.op('Exp', [x.name], `${b}/exp`)], `${b}/neg`);
        return ctx.op('Where', [ctx.op('Greater', [x.name, s(0)], `${b}/pos`), ctx.op('Mul', [dy, s(scale)], `${b}/ds`), neg], b);
      });
    }
    case 'swish':
    case 'silu': {
      const sig = ctx.op('Sigmoid', [x.name], `${base}/sigmoid`);
      const y = out(ctx.op('Mul', [sig, x.name], `${base}/swish`));
      // d(x s(x)) = s + x s (1 - s).
      return rec(y, (dy) => {
        const xs1s = ctx.op('Mul', [y.name, ctx.op('Sub', [s(1), sig], `${b}/1ms`)], `${b}/xs1s`);
        return ctx.op('Mul', [dy, ctx.op('Add', [sig, xs1s], `${b}/d`)], b);
      });
    }
    case 'hard_sigmoid':
    case 'hardSigmoid': {
      const lin = ctx.op('Add', [ctx.op('Mul', [x.name, s(0.2)], `${base}/x02`), s(0.5)], `${base}/lin`);
      const y = out(ctx.op('Clip', [lin, s(0), s(1)], `${base}/hard_sigmoid`));
      return rec(y, (dy) => {
        const inside = ctx.op('And', [ctx.op('GreaterOrEqual', [lin, s(0)], `${b}/ge0`), ctx.op('LessOrEqual', [lin, s(1)], `${b}/le1`)], `${b}/in`);
        return ctx.op('Where', [inside, ctx.op('Mul', [dy, s(0.2)], `${b}/d02`), s(0)], b);
      });
    }
    case 'softplus': {
      const y = out(ctx.op('Softplus', [x.name], `${base}/softplus`));
      return rec(y, (dy) => ctx.op('Mul', [dy, ctx.op('Sigmoid', [x.name], `${b}/sig`)], b));
    }
    case 'softsign': {
      const den = ctx.op('Add', [s(1), ctx.op('Abs', [x.name], `${base}/abs`)], `${base}/den`);
      const y = out(ctx.op('Div', [x.name, den], `${base}/softsign`));
      return rec(y, (dy) => ctx.op('Div', [dy, ctx.op('Mul', [den, den], `${b}/den2`)], b));
    }
    case 'gelu': {
      const erf = ctx.op('Erf', [ctx.op('Mul', [x.name, s(Math.SQRT1_2)], `${base}/scaled`)], `${base}/erf`);
      const cdf = ctx.op('Mul', [ctx.op('Add', [erf, s(1)], `${base}/onep`), s(0.5)], `${base}/cdf`);
      const y = out(ctx.op('Mul', [x.name, cdf], `${base}/gelu`));
      // d = cdf + x * exp(-x^2 / 2) / sqrt(2 pi).
      return rec(y, (dy) => {
        const pdf = ctx.op('Mul', [ctx.op('Exp', [ctx.op('Mul', [ctx.op('Mul', [x.name, x.name], `${b}/x2`), s(-0.5)], `${b}/mx2`)], `${b}/exp`), s(1 / Math.sqrt(2 * Math.PI))], `${b}/pdf`);
        return ctx.op('Mul', [dy, ctx.op('Add', [cdf, ctx.op('Mul', [x.name, pdf], `${b}/xpdf`)], `${b}/d`)], b);
      });
    }
    case 'gelu_new': {
      const k = Math.sqrt(2 / Math.PI);
      const x2 = ctx.op('Mul', [x.name, x.name], `${base}/x2`);
      const inner = ctx.op('Mul', [ctx.op('Add', [x.name, ctx.op('Mul', [ctx.op('Mul', [x2, x.name], `${base}/x3`), s(0.044715)], `${base}/cx3`)], `${base}/in`), s(k)], `${base}/ink`);
      const t = ctx.op('Tanh', [inner], `${base}/tanh`);
      const y = out(ctx.op('Mul', [ctx.op('Mul', [x.name, s(0.5)], `${base}/half`), ctx.op('Add', [t, s(1)], `${base}/onep`)], `${base}/gelu`));
      // d = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2).
      return rec(y, (dy) => {
        const a = ctx.op('Mul', [ctx.op('Add', [t, s(1)], `${b}/1pt`), s(0.5)], `${b}/a`);
        const sech = ctx.op('Sub', [s(1), ctx.op('Mul', [t, t], `${b}/t2`)], `${b}/sech`);
        const dinner = ctx.op('Mul', [ctx.op('Add', [s(1), ctx.op('Mul', [x2, s(3 * 0.044715)], `${b}/3cx2`)], `${b}/di`), s(k)], `${b}/dik`);
        const bterm = ctx.op('Mul', [ctx.op('Mul', [ctx.op('Mul', [x.name, s(0.5)], `${b}/hx`), sech], `${b}/hxs`), dinner], `${b}/b`);
        return ctx.op('Mul', [dy, ctx.op('Add', [a, bterm], `${b}/d`)], b);
      });
    }
    case 'mish': {
      const sp = ctx.op('Softplus', [x.name], `${base}/softplus`);
      const t = ctx.op('Tanh', [sp], `${base}/tanh`);
      const y = out(ctx.op('Mul', [x.name, t], `${base}/mish`));
      // d = t + x (1 - t^2) sigmoid(x).
      return rec(y, (dy) => {
        const sech = ctx.op('Sub', [s(1), ctx.op('Mul', [t, t], `${b}/t2`)], `${b}/sech`);
        const term = ctx.op('Mul', [ctx.op('Mul', [x.name, sech], `${b}/xs`), ctx.op('Sigmoid', [x.name], `${b}/sig`)], `${b}/term`);
        return ctx.op('Mul', [dy, ctx.op('Add', [t, term], `${b}/d`)], b);
      });
    }
    default:
      throw unsupportedLayer(layer, `activation ${JSON.stringify(fn)}`);
  }
}

/**
 * 1 where `v` > 0, else 0, as floats (the step function tfjs's ReLU gradient multiplies by). Greater + Cast: on a
 * [16, 256, 56, 56] map onnxruntime's Sign (one op) took twice as long, and Where with a scalar three times.
 */
function positive(ctx: StepContext, v: string, base: string): string {
  return ctx.op('Cast', [ctx.op('Greater', [v, ctx.scalar(0)], `${base}/pos`)], `${base}/step`, { to: 1 });
}

/** Softmax over a graph axis; reverse y * (dy - sum(dy * y)). */
function softmax(ctx: StepContext, x: TValue, axis: number, base: string): TValue {
  const b = `${base}/grad`;
  const y: TValue = { ...x, name: ctx.op('Softmax', [x.name], `${base}/softmax`, { axis }) };
  return ctx.record([x], y, (dy) => {
    const dyy = ctx.op('Mul', [dy, y.name], `${b}/dyy`);
    const sum = ctx.op('ReduceSum', [dyy, ctx.ints([axis])], `${b}/sum`, { keepdims: 1 });
    return [ctx.op('Sub', [dyy, ctx.op('Mul', [y.name, sum], `${b}/ysum`)], b)];
  });
}

function withActivation(ctx: StepContext, layer: StepLayer, y: TValue): TValue {
  return applyActivation(ctx, y, String(layer.config.activation ?? 'linear'), layer.name, layer);
}

// ---------------------------------------------------------------------------------------------------------------
// Convolutions

interface ConvGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
  out: number[];
}

function convGeometry(layer: StepLayer, x: TValue, kernel: number[]): ConvGeometry {
  channelsLast(layer);
  const strides = pair(layer.config.strides, [1, 1]);
  const dilations = pair(layer.config.dilation_rate, [1, 1]);
  if ((strides[0] > 1 || strides[1] > 1) && (dilations[0] > 1 || dilations[1] > 1)) throw unsupportedLayer(layer, 'strides with dilation');
  return { kernel, strides, dilations, ...windowGeometry(layer, x, kernel, strides, dilations) };
}

function convAttrs(geo: ConvGeometry, group: number): Record<string, AttrValue> {
  return { kernel_shape: geo.kernel, strides: geo.strides, dilations: geo.dilations, pads: geo.pads, group };
}

/**
 * im2col of `x` for a window, transposed: [C * kh * kw, N * Ho * Wo], channel-major then tap (the column order of
 * an OIHW kernel flattened to [out, C * kh * kw]). Built from x as [C, N, H, W], so that every copy moves whole rows:
 * the transposes move H x W planes, the taps' Concat stacks blocks of N x Ho x Wo. (The NHWC form, a
 * channel-interleaving Concat plus two pixel-by-pixel transposes, took twice as long around a small network's
 * filter-gradient Gemm.)
 */
function im2colT(ctx: StepContext, x: TValue, geo: ConvGeometry, base: string): string {
  const [n, h, w, c] = x.shape;
  const [kh, kw] = geo.kernel;
  const [sh, sw] = geo.strides;
  const [dh, dw] = geo.dilations;
  const [ho, wo] = geo.out;
  let src = ctx.channelsFirst(x);
  const [pt, pl, pb, pr] = geo.pads;
  if (pt || pl || pb || pr) src = ctx.op('Pad', [src, ctx.ints([0, 0, pt, pl, 0, 0, pb, pr])], `${base}/pad`);
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && ho === h && wo === w) return ctx.op('Reshape', [src, ctx.ints([c, n * h * w])], `${base}/cols`);
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const starts = [i * dh, j * dw];
      const ends = [i * dh + sh * (ho - 1) + 1, j * dw + sw * (wo - 1) + 1];
      const tap = ctx.op('Slice', [src, ctx.ints(starts), ctx.ints(ends), ctx.ints([2, 3]), ctx.ints([sh, sw])], `${base}/tap`);
      taps.push(kh * kw === 1 ? tap : ctx.op('Unsqueeze', [tap, ctx.ints([1])], `${base}/tap_u`));
    }
  }
  const cat = taps.length === 1 ? taps[0] : ctx.op('Concat', taps, `${base}/taps`, { axis: 1 });
  return ctx.op('Reshape', [cat, ctx.ints([c * kh * kw, n * ho * wo])], `${base}/cols`);
}

/** dY (NCHW) as [C, N * Ho * Wo]: a transpose that moves whole Ho x Wo planes. */
function planesOf(ctx: StepContext, dy: string, y: TValue, base: string): string {
  const [n, ho, wo, c] = y.shape;
  const t = n === 1 || c === 1 ? dy : ctx.op('Transpose', [dy], `${base}/dy_cnhw`, { perm: [1, 0, 2, 3] });
  return ctx.op('Reshape', [t, ctx.ints([c, n * ho * wo])], `${base}/dy_planes`);
}

/**
 * Gradient of a convolution's input: a Conv of dY with the flipped, transposed filter for stride 1, ConvTranspose
 * with the forward filter otherwise. `oihw` is the forward filter [out, in / group, kh, kw].
 */
function convInputGrad(ctx: StepContext, dy: string, x: TValue, geo: ConvGeometry, oihw: string, group: number, base: string): string {
  const [kh, kw] = geo.kernel;
  const [dh, dw] = geo.dilations;
  const span = [(kh - 1) * dh + 1, (kw - 1) * dw + 1];
  const [pt, pl, pb, pr] = geo.pads;
  if (geo.strides[0] === 1 && geo.strides[1] === 1 && group === 1) {
    const t = ctx.op('Transpose', [oihw], `${base}/w_t`, { perm: [1, 0, 2, 3] });
    const flipped = ctx.op('Slice', [t, ctx.ints([-1, -1]), ctx.ints([-kh - 1, -kw - 1]), ctx.ints([2, 3]), ctx.ints([-1, -1])], `${base}/w_flip`);
    const pads = [span[0] - 1 - pt, span[1] - 1 - pl, span[0] - 1 - pb, span[1] - 1 - pr];
    return ctx.op('Conv', [dy, flipped], `${base}/dx`, { kernel_shape: geo.kernel, dilations: geo.dilations, pads, strides: [1, 1] });
  }
  const [, h, w] = x.shape;
  const outputPadding = [h - ((geo.out[0] - 1) * geo.strides[0] + span[0] - pt - pb), w - ((geo.out[1] - 1) * geo.strides[1] + span[1] - pl - pr)];
  return ctx.op('ConvTranspose', [dy, oihw], `${base}/dx`, {
    kernel_shape: geo.kernel,
    strides: geo.strides,
    dilations: geo.dilations,
    pads: geo.pads,
    output_padding: outputPadding,
    group,
  });
}

function biasGrad(ctx: StepContext, dy: string, rank: number, base: string): string {
  return ctx.op('ReduceSum', [dy, ctx.ints(rank === 4 ? [0, 2, 3] : [0])], `${base}/db`, { keepdims: 0 });
}

function addBias(ctx: StepContext, layer: StepLayer, y: string, channels: number): { name: string; key?: string } {
  if (layer.config.use_bias === false) return { name: y };
  const key = `${layer.name}/bias`;
  const b = ctx.weight(key);
  // Into the Conv itself when it has no bias yet: one pass over the output fewer.
  const conv = ctx.g.producer(y);
  if (conv?.op === 'Conv' && conv.inputs.length === 2) {
    conv.inputs.push(b.name);
    return { name: y, key };
  }
  const b4 = ctx.op('Reshape', [b.name, ctx.ints([1, channels, 1, 1])], `${layer.name}/bias4`);
  return { name: ctx.op('Add', [y, b4], `${layer.name}/biased`), key };
}

/** A tfjs convolution kernel [kh, kw, Cin, Cout] as ONNX's [Cout, Cin, kh, kw]. */
const OIHW = [3, 2, 0, 1];

/**
 * A convolution with a [kh, kw, Cin, Cout] kernel: Conv2D itself, and the pointwise half of a SeparableConv2D (`tag`
 * `p` names its nodes apart). Filter gradient: im2col + one Gemm; input gradient: see `convInputGrad`.
 */
function convolution(ctx: StepContext, layer: StepLayer, x0: TValue, key: string, tag = ''): TValue {
  // The graph holds the kernel as OIHW (see StepContext.weight): no per-step transpose of it, forward or backward.
  const k = ctx.weight(key, OIHW);
  const [kh, kw, cin, cout] = k.shape;
  const kernelShape = [kh, kw];
  const x = ctx.as(x0, 'nchw');
  const geo = convGeometry(layer, x, kernelShape);
  const oihw = k.name;
  const base = `${layer.name}/${tag}grad`;
  const n = x.shape[0];
  const [ho, wo] = geo.out;
  // On small maps a trained kernel's forward pass is one Gemm over the im2col its filter gradient needs anyway:
  // onnxruntime's Conv multiplies image by image, with as many columns as output pixels, which on a 7x7 map ran at
  // 29 GFLOP/s (a 3x3, 64-channel layer, batch 128) against 100 for the batch-wide Gemm.
  const viaGemm = k.trainable && ho * wo <= GEMM_FORWARD_PIXELS && n > 1;
  const cols = viaGemm ? im2colT(ctx, x, geo, base) : undefined;
  let bias: { name: string; key?: string };
  let yName: string;
  if (cols) {
    const w2d = ctx.op('Reshape', [oihw, ctx.ints([cout, cin * kh * kw])], `${layer.name}/${tag}w2d`);
    const useBias = layer.config.use_bias !== false;
    const bkey = `${layer.name}/bias`;
    const b = useBias ? ctx.op('Reshape', [ctx.weight(bkey).name, ctx.ints([cout, 1])], `${layer.name}/${tag}bias_col`) : undefined;
    const planes = ctx.op('Gemm', b ? [w2d, cols, b] : [w2d, cols], `${layer.name}/${tag}conv_mat`);
    const nchw = ctx.op('Transpose', [ctx.op('Reshape', [planes, ctx.ints([cout, n, ho * wo])], `${layer.name}/${tag}conv_cnp`)], `${layer.name}/${tag}conv_ncp`, { perm: [1, 0, 2] });
    yName = ctx.op('Reshape', [nchw, ctx.ints([n, cout, ho, wo])], `${layer.name}/${tag}conv`);
    bias = { name: yName, key: useBias ? bkey : undefined };
  } else {
    const conv = ctx.op('Conv', [x.name, oihw], `${layer.name}/${tag}conv`, convAttrs(geo, 1));
    bias = addBias(ctx, layer, conv, cout);
    yName = bias.name;
  }
  const y: TValue = { name: yName, shape: [n, ho, wo, cout], layout: 'nchw' };
  const biasTrainable = bias.key !== undefined && ctx.weights.get(bias.key)!.trainable;
  ctx.record(
    [x],
    y,
    (dy, [needX]) => {
      if (k.trainable) {
        const dw = ctx.op('Gemm', [planesOf(ctx, dy, y, base), cols ?? im2colT(ctx, x, geo, base)], `${base}/dw_mat`, { transB: 1 });
        ctx.addWeightGrad(key, ctx.op('Reshape', [dw, ctx.ints([cout, cin, kh, kw])], `${base}/dw`));
      }
      if (biasTrainable) ctx.addWeightGrad(bias.key!, biasGrad(ctx, dy, 4, base));
      return [needX ? convInputGrad(ctx, dy, x, geo, oihw, 1, base) : undefined];
    },
    k.trainable || biasTrainable,
  );
  return withActivation(ctx, layer, y);
}

/** Output pixels per image up to which a trained convolution runs forward as one batch-wide Gemm (a 10x10 map: on 14x14 maps Conv and the Gemm ran alike). */
const GEMM_FORWARD_PIXELS = 100;

const conv2d: Rule = (ctx, layer, [x0]) => convolution(ctx, layer, x0, `${layer.name}/kernel`);

/**
 * A depthwise convolution (channel multiplier m): tfjs kernel [kh, kw, C, m] is ONNX [C * m, 1, kh, kw] with group C.
 * Its filter gradient sums tap products per channel: one Mul + ReduceSum per tap on im2col-style slices.
 */
function depthwise(ctx: StepContext, layer: StepLayer, x: TValue, key: string, base: string): { y: TValue; trainable: boolean; backward: (dy: string, needX: boolean) => string | undefined } {
  const k = ctx.weight(key);
  const [kh, kw, c, mult] = k.shape;
  const kernelShape = [kh, kw];
  const geo = convGeometry(layer, x, kernelShape);
  // [kh, kw, C, m] -> [C, m, kh, kw] -> [C * m, 1, kh, kw].
  const oihw = ctx.op('Reshape', [ctx.op('Transpose', [k.name], `${base}/t`, { perm: [2, 3, 0, 1] }), ctx.ints([c * mult, 1, kh, kw])], `${base}/oihw`);
  const conv = ctx.op('Conv', [x.name, oihw], `${base}/conv`, convAttrs(geo, c));
  const y: TValue = { name: conv, shape: [x.shape[0], ...geo.out, c * mult], layout: 'nchw' };
  return {
    y,
    trainable: k.trainable,
    backward(dy, needX) {
      const b = `${base}/grad`;
      if (k.trainable) {
        const n = x.shape[0];
        const [ho, wo] = geo.out;
        const [pt, pl, pb, pr] = geo.pads;
        let src = x.name;
        if (pt || pl || pb || pr) src = ctx.op('Pad', [src, ctx.ints([0, 0, pt, pl, 0, 0, pb, pr])], `${b}/pad`);
        // dY [N, C*m, Ho, Wo] -> [N, C, m, Ho*Wo]; each tap's filter gradient is sum over N and pixels of tap x dY:
        // one Mul + ReduceSum per tap. (Concatenating the taps for one batched MatMul copied them all again and
        // ran N * C tiny products: 3.4x slower on Xception's exit-flow shapes.)
        const dyg = ctx.op('Reshape', [dy, ctx.ints([n, c, mult, ho * wo])], `${b}/dy_g`);
        const perTap: string[] = [];
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const starts = [i * geo.dilations[0], j * geo.dilations[1]];
            const ends = [starts[0] + geo.strides[0] * (ho - 1) + 1, starts[1] + geo.strides[1] * (wo - 1) + 1];
            const tap = ctx.op('Slice', [src, ctx.ints(starts), ctx.ints(ends), ctx.ints([2, 3]), ctx.ints(geo.strides)], `${b}/tap`);
            const prod = ctx.op('Mul', [ctx.op('Reshape', [tap, ctx.ints([n, c, 1, ho * wo])], `${b}/tap_r`), dyg], `${b}/tap_dy`);
            perTap.push(ctx.op('ReduceSum', [prod, ctx.ints([0, 3])], `${b}/tap_sum`, { keepdims: 0 }));
          }
        }
        // [kh * kw, C, m] is the HWCM kernel's layout.
        const stacked = perTap.length === 1 ? perTap[0] : ctx.op('Concat', perTap, `${b}/taps`, { axis: 0 });
        const hwcm = ctx.op('Reshape', [stacked, ctx.ints([kh, kw, c, mult])], `${b}/dw`);
        ctx.addWeightGrad(key, hwcm);
      }
      return needX ? convInputGrad(ctx, dy, x, geo, oihw, c, b) : undefined;
    },
  };
}

const depthwiseConv2d: Rule = (ctx, layer, [x0]) => {
  const x = ctx.as(x0, 'nchw');
  const dw = depthwise(ctx, layer, x, `${layer.name}/depthwise_kernel`, layer.name);
  const channels = dw.y.shape[3];
  const bias = addBias(ctx, layer, dw.y.name, channels);
  const y: TValue = { ...dw.y, name: bias.name };
  const biasTrainable = bias.key !== undefined && ctx.weights.get(bias.key)!.trainable;
  ctx.record(
    [x],
    y,
    (dy, [needX]) => {
      if (biasTrainable) ctx.addWeightGrad(bias.key!, biasGrad(ctx, dy, 4, `${layer.name}/grad`));
      return [dw.backward(dy, needX)];
    },
    dw.trainable || biasTrainable,
  );
  return withActivation(ctx, layer, y);
};

const separableConv2d: Rule = (ctx, layer, [x0]) => {
  const x = ctx.as(x0, 'nchw');
  const dw = depthwise(ctx, layer, x, `${layer.name}/depthwise_kernel`, `${layer.name}/depthwise`);
  const depth = ctx.record([x], dw.y, (dy, [needX]) => [dw.backward(dy, needX)], dw.trainable);
  const pointLayer: StepLayer = { ...layer, config: { ...layer.config, padding: 'valid', strides: 1, dilation_rate: 1, kernel_size: 1, use_bias: layer.config.use_bias } };
  // The pointwise half is a 1x1 Conv2D whose kernel is stored as `pointwise_kernel`.
  return pointwise(ctx, pointLayer, depth, `${layer.name}/pointwise_kernel`);
};

function pointwise(ctx: StepContext, layer: StepLayer, x: TValue, key: string): TValue {
  return convolution(ctx, layer, x, key, 'p');
}

// ---------------------------------------------------------------------------------------------------------------
// Dense, batch normalization

const dense: Rule = (ctx, layer, [x]) => {
  if (x.shape.length !== 2) throw unsupportedLayer(layer, `a rank-${x.shape.length} input (flatten or pool first)`);
  const key = `${layer.name}/kernel`;
  const k = ctx.weight(key);
  const units = k.shape[1];
  const useBias = layer.config.use_bias !== false;
  const bkey = `${layer.name}/bias`;
  const b = useBias ? ctx.weight(bkey) : undefined;
  const name = ctx.op('Gemm', b ? [x.name, k.name, b.name] : [x.name, k.name], `${layer.name}/gemm`);
  const y: TValue = { name, shape: [x.shape[0], units], layout: 'native' };
  ctx.record(
    [x],
    y,
    (dy, [needX]) => {
      const base = `${layer.name}/grad`;
      if (k.trainable) ctx.addWeightGrad(key, ctx.op('Gemm', [x.name, dy], `${base}/dw`, { transA: 1 }));
      if (b?.trainable) ctx.addWeightGrad(bkey, biasGrad(ctx, dy, 2, base));
      return [needX ? ctx.op('Gemm', [dy, k.name], `${base}/dx`, { transB: 1 }) : undefined];
    },
    k.trainable || Boolean(b?.trainable),
  );
  return withActivation(ctx, layer, y);
};

const batchNorm: Rule = (ctx, layer, [x0]) => {
  const rank = x0.shape.length;
  const axis = Number(layer.config.axis ?? -1);
  if (!((rank === 4 && (axis === -1 || axis === 3)) || (rank === 2 && (axis === -1 || axis === 1)))) throw unsupportedLayer(layer, `axis ${axis} on a rank-${rank} input`);
  const x = ctx.as(x0, 'nchw');
  const c = x.shape[rank - 1];
  const eps = Number(layer.config.epsilon ?? 1e-3);
  const momentum = Number(layer.config.momentum ?? 0.99);
  const axes = rank === 4 ? [0, 2, 3] : [0];
  const base = layer.name;
  const useScale = layer.config.scale !== false;
  const useCenter = layer.config.center !== false;
  const gamma = useScale ? ctx.weight(`${base}/gamma`) : undefined;
  const beta = useCenter ? ctx.weight(`${base}/beta`) : undefined;
  const mm = ctx.weight(`${base}/moving_mean`);
  const mv = ctx.weight(`${base}/moving_variance`);
  const reduceMean = (v: string, b: string) => ctx.op('ReduceMean', [v], b, { axes, keepdims: 1 });
  const reduceSum = (v: string, b: string) => ctx.op('ReduceSum', [v, ctx.ints(axes)], b, { keepdims: 0 });
  const trainable = Boolean(gamma?.trainable || beta?.trainable);

  const vecs = new Map<number, string>();
  const vec = (v: number, name: string) => {
    if (!vecs.has(v)) vecs.set(v, ctx.tensor(`${base}/${name}`, [c], new Float32Array(c).fill(v)));
    return vecs.get(v)!;
  };
  const flat = (v: string) => ctx.op('Reshape', [v, ctx.ints([c])], `${v}/flat`);
  // (v - m) * s + b per channel as one BatchNormalization node (unit variance, epsilon 0): onnxruntime runs it as one
  // vectorised pass, where Sub, Mul and Add against [1, C, 1, 1] tensors took three broadcast passes.
  const affine = (v: string, o: { scale: string; bias?: string; mean?: string }, name: string) =>
    ctx.op('BatchNormalization', [v, o.scale, o.bias ?? vec(0, 'zeros'), o.mean ?? vec(0, 'zeros'), vec(1, 'ones')], name, { epsilon: { float: 0 } });

  if (!layer.trainable) {
    // Frozen: inference mode with the moving statistics, nothing updated (freeze.ts's contract).
    const inv = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [mv.name, ctx.scalar(eps)], `${base}/var_eps`)], `${base}/std`)], `${base}/inv`);
    const scale = gamma ? ctx.op('Mul', [inv, gamma.name], `${base}/scale`) : inv;
    const y: TValue = { ...x, name: affine(x.name, { scale, bias: beta?.name, mean: mm.name }, `${base}/bn`) };
    return ctx.record([x], y, (dy) => [affine(dy, { scale }, `${base}/grad/dx`)]);
  }

  // Passes over the map: mean, xc = x - mean, the sum of its squares, then y = xc * scale + beta in one pass with the
  // per-channel scale inv * gamma (xhat itself is never written: the backward pass reads xc with inv folded into its
  // coefficients). Everything after the mean reads xc, not x, so x is freed once xc exists: the step keeps one map
  // per batch norm for its backward pass instead of two (whole ResNet50 at batch 16: peak RSS 4.1 -> 2.6 GB).
  const count = sizeOf(x.shape) / c;
  const mean = reduceMean(x.name, `${base}/mean`);
  const xc = ctx.op('Sub', [x.name, mean], `${base}/xc`);
  const variance = ctx.op('Mul', [ctx.op('ReduceSumSquare', [xc], `${base}/xc2_sum`, { axes, keepdims: 1 }), ctx.scalar(1 / count)], `${base}/var`);
  const inv = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance, ctx.scalar(eps)], `${base}/var_eps`)], `${base}/std`)], `${base}/inv`);
  const invC = flat(inv);
  const meanC = flat(mean);
  const scale = gamma ? ctx.op('Mul', [invC, gamma.name], `${base}/scale`) : invC;
  const yn = affine(xc, { scale, bias: beta?.name }, `${base}/bn`);
  // tfjs-layers: moving = moving - (moving - batch) * (1 - momentum), with the biased batch variance.
  const decay = ctx.scalar(1 - momentum);
  const update = (moving: string, batch: string, b: string) => ctx.op('Sub', [moving, ctx.op('Mul', [ctx.op('Sub', [moving, batch], `${b}/delta`), decay], `${b}/scaled`)], b);
  ctx.stateUpdates.set(mm.name, update(mm.name, meanC, `${base}/moving_mean_next`));
  ctx.stateUpdates.set(mv.name, update(mv.name, flat(variance), `${base}/moving_variance_next`));
  const y: TValue = { ...x, name: yn };
  return ctx.record(
    [x],
    y,
    (dy, [needX]) => {
      const b = `${base}/grad`;
      const sumDy = reduceSum(dy, `${b}/dbeta`);
      // sum(dy * xhat) = inv * sum(dy * xc), per channel.
      const sumDyXhat = ctx.op('Mul', [reduceSum(ctx.op('Mul', [dy, xc], `${b}/dyxc`), `${b}/dyxc_sum`), invC], `${b}/dgamma`);
      if (beta?.trainable) ctx.addWeightGrad(beta.name, sumDy);
      if (gamma?.trainable) ctx.addWeightGrad(gamma.name, sumDyXhat);
      if (!needX) return [undefined];
      // dX = inv * gamma * (dy - mean(dy) - xhat * mean(dy * xhat)) = scale * dy + c1 * xc + c0 per channel,
      // with c1 = -scale * inv * mean(dy * xhat) and c0 = -scale * mean(dy): two affine passes and an Add.
      const coef = (sum: string, factor: string, name: string) => ctx.op('Mul', [factor, ctx.op('Mul', [sum, ctx.scalar(-1 / count)], `${name}_mean`)], name);
      const c1 = coef(sumDyXhat, ctx.op('Mul', [scale, invC], `${b}/scale_inv`), `${b}/c1`);
      const c0 = coef(sumDy, scale, `${b}/c0`);
      return [ctx.op('Add', [affine(dy, { scale }, `${b}/a_dy`), affine(xc, { scale: c1, bias: c0 }, `${b}/c1_xc`)], `${b}/dx`)];
    },
    trainable,
  );
};

// ---------------------------------------------------------------------------------------------------------------
// Pooling

/** Keeps onnxruntime from merging a zero Pad into a max pool as -inf padding (see the exporter's guardZeroPad). */
function guardZeroPad(ctx: StepContext, value: string): void {
  const pad = ctx.g.producer(value);
  if (pad?.op === 'Pad' && pad.inputs.length === 2) pad.inputs.push(ctx.tensor(`${pad.name}/value`, [], Float32Array.of(-0)));
}

function poolGeometry(layer: StepLayer, x: TValue) {
  channelsLast(layer);
  const kernel = pair(layer.config.pool_size, [2, 2]);
  const strides = pair(layer.config.strides, kernel);
  return { kernel, strides, dilations: [1, 1], ...windowGeometry(layer, x, kernel, strides, [1, 1]) };
}

const maxPool: Rule = (ctx, layer, [x0]) => {
  const x = ctx.as(x0, 'nchw');
  guardZeroPad(ctx, x.name);
  const geo = poolGeometry(layer, x);
  const [n, h, w, c] = x.shape;
  const [ho, wo] = geo.out;
  const tiled = geo.kernel[0] === geo.strides[0] && geo.kernel[1] === geo.strides[1] && geo.pads.every((p) => p === 0);
  const attrs = { kernel_shape: geo.kernel, strides: geo.strides, pads: geo.pads };
  if (tiled) {
    // Windows that tile the input (VGG's 2x2 / 2): no two windows share a pixel, so the gradient is MaxUnpool of dy
    // to the indices MaxPool returns (each window's first maximum in row-major order, as tfjs routes ties): one
    // scatter pass, where ScatterElements (needed when windows overlap) walks every index generically.
    const [yName, indices] = ctx.opMulti('MaxPool', [x.name], [`${layer.name}/maxpool`, `${layer.name}/indices`], attrs);
    const y: TValue = { name: yName, shape: [n, ho, wo, c], layout: 'nchw' };
    const b = `${layer.name}/grad`;
    const unpool = (dy: string) => ctx.op('MaxUnpool', [dy, indices, ctx.ints([n, c, h, w])], `${b}/dx`, { kernel_shape: geo.kernel, strides: geo.strides });
    // After a ReLU (conv, relu, pool), the pool differentiates straight to the ReLU's input: each window's gradient
    // lands on its maximum, where the ReLU passes it exactly when the maximum is positive. So the ReLU's mask is
    // applied to dy at the pooled size (a quarter of the pixels) and the ReLU's own full-size pass is skipped
    // (its tape entry gets no gradient unless something else reads its output).
    const pre = ctx.reluInputs.get(x.name);
    if (pre && ctx.requiresGrad(pre)) return ctx.record([pre], y, (dy) => [unpool(ctx.op('Mul', [dy, positive(ctx, yName, b)], `${b}/relu`))]);
    return ctx.record([x], y, (dy) => [unpool(dy)]);
  }
  const [yName, indices] = ctx.opMulti('MaxPool', [x.name], [`${layer.name}/maxpool`, `${layer.name}/indices`], attrs);
  const y: TValue = { name: yName, shape: [n, ho, wo, c], layout: 'nchw' };
  return ctx.record([x], y, (dy) => {
    // Indices address the flattened NCHW input; each gradient goes to its window's first maximum, as in tfjs.
    const b = `${layer.name}/grad`;
    const total = n * h * w * c;
    const zeros = ctx.tensor(`${b}/zeros`, [total], new Float32Array(total));
    const flatIdx = ctx.op('Reshape', [indices, ctx.ints([-1])], `${b}/idx`);
    const flatDy = ctx.op('Reshape', [dy, ctx.ints([-1])], `${b}/dy`);
    const scattered = ctx.op('ScatterElements', [zeros, flatIdx, flatDy], `${b}/scatter`, { axis: 0, reduction: 'add' });
    return [reshapeBack(ctx, scattered, x, `${b}/dx`)];
  });
};

const avgPool: Rule = (ctx, layer, [x0]) => {
  const x = ctx.as(x0, 'nchw');
  const geo = poolGeometry(layer, x);
  const name = ctx.op('AveragePool', [x.name], `${layer.name}/avgpool`, { kernel_shape: geo.kernel, strides: geo.strides, pads: geo.pads, count_include_pad: 0 });
  const c = x.shape[3];
  const y: TValue = { name, shape: [x.shape[0], ...geo.out, c], layout: 'nchw' };
  return ctx.record([x], y, (dy) => {
    // Each output spreads dy / (real pixels under its window) back over that window: a ConvTranspose with ones.
    const b = `${layer.name}/grad`;
    const [ho, wo] = geo.out;
    const [h, w] = [x.shape[1], x.shape[2]];
    const inv = new Float32Array(ho * wo);
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        const r0 = i * geo.strides[0] - geo.pads[0];
        const c0 = j * geo.strides[1] - geo.pads[1];
        const rows = Math.min(r0 + geo.kernel[0], h) - Math.max(r0, 0);
        const cols = Math.min(c0 + geo.kernel[1], w) - Math.max(c0, 0);
        inv[i * wo + j] = 1 / (rows * cols);
      }
    }
    const scaled = ctx.op('Mul', [dy, ctx.tensor(`${b}/inv_count`, [1, 1, ho, wo], inv)], `${b}/scaled`);
    const ones = ctx.tensor(`${b}/ones`, [c, 1, ...geo.kernel], new Float32Array(c * geo.kernel[0] * geo.kernel[1]).fill(1));
    const span = geo.kernel;
    const outputPadding = [h - ((ho - 1) * geo.strides[0] + span[0] - geo.pads[0] - geo.pads[2]), w - ((wo - 1) * geo.strides[1] + span[1] - geo.pads[1] - geo.pads[3])];
    return [ctx.op('ConvTranspose', [scaled, ones], `${b}/dx`, { kernel_shape: geo.kernel, strides: geo.strides, pads: geo.pads, output_padding: outputPadding, group: c })];
  });
};

function globalPool(kind: 'avg' | 'max'): Rule {
  return (ctx, layer, [x0]) => {
    channelsLast(layer);
    const x = ctx.as(x0, 'nchw');
    const [n, h, w, c] = x.shape;
    const pooled = kind === 'avg'
      ? ctx.op('ReduceMean', [x.name], `${layer.name}/pool`, { axes: [2, 3], keepdims: 1 })
      : ctx.op('ReduceMax', [x.name], `${layer.name}/pool`, { axes: [2, 3], keepdims: 1 });
    const keep = layer.config.keepdims === true;
    const y: TValue = keep
      ? { name: pooled, shape: [n, 1, 1, c], layout: 'nchw' }
      : { name: ctx.op('Reshape', [pooled, ctx.ints([n, c])], `${layer.name}/flat`), shape: [n, c], layout: 'native' };
    return ctx.record([x], y, (dy) => {
      const b = `${layer.name}/grad`;
      const dy4 = ctx.op('Reshape', [dy, ctx.ints([n, c, 1, 1])], `${b}/dy4`);
      if (kind === 'avg') {
        return [ctx.op('Expand', [ctx.op('Mul', [dy4, ctx.scalar(1 / (h * w))], `${b}/scaled`), ctx.ints([n, c, h, w])], `${b}/dx`)];
      }
      // tfjs's max reduction gradient: dy to every element equal to the maximum.
      const mask = ctx.op('Cast', [ctx.op('Equal', [x.name, pooled], `${b}/eq`)], `${b}/mask`, { to: 1 });
      return [ctx.op('Mul', [mask, dy4], `${b}/dx`)];
    });
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Shape and merge layers

const flatten: Rule = (ctx, layer, [x0]) => {
  if (x0.shape.length === 2) return x0;
  // tfjs flattens in NHWC order.
  const x = ctx.as(x0, 'native');
  const n = x.shape[0];
  const f = sizeOf(x.shape.slice(1));
  const y: TValue = { name: ctx.op('Reshape', [x.name, ctx.ints([n, f])], `${layer.name}/flat`), shape: [n, f], layout: 'native' };
  return ctx.record([x], y, (dy) => [reshapeBack(ctx, dy, x, `${layer.name}/grad`)]);
};

const reshape: Rule = (ctx, layer, [x0]) => {
  const x = ctx.as(x0, 'native');
  const target = (layer.config.target_shape as number[]).map(Number);
  const total = sizeOf(x.shape.slice(1));
  const known = sizeOf(target.filter((d) => d !== -1));
  const shape = [x.shape[0], ...target.map((d) => (d === -1 ? total / known : d))];
  const y: TValue = { name: ctx.op('Reshape', [x.name, ctx.ints(shape)], `${layer.name}/reshape`), shape, layout: 'native' };
  return ctx.record([x], y, (dy) => [reshapeBack(ctx, dy, x, `${layer.name}/grad`)]);
};

function twoSided(layer: StepLayer, raw: unknown): number[][] {
  return typeof raw === 'number' ? [[raw, raw], [raw, raw]] : (raw as unknown[]).map((p) => pair(p, [0, 0]));
}

const zeroPadding: Rule = (ctx, layer, [x0]) => {
  channelsLast(layer);
  const [[t, b], [l, r]] = twoSided(layer, layer.config.padding ?? 1);
  const x = ctx.as(x0, 'nchw');
  const [n, h, w, c] = x.shape;
  const y: TValue = { name: ctx.op('Pad', [x.name, ctx.ints([0, 0, t, l, 0, 0, b, r])], `${layer.name}/pad`), shape: [n, h + t + b, w + l + r, c], layout: 'nchw' };
  return ctx.record([x], y, (dy) => [ctx.op('Slice', [dy, ctx.ints([t, l]), ctx.ints([t + h, l + w]), ctx.ints([2, 3])], `${layer.name}/grad`)]);
};

const cropping: Rule = (ctx, layer, [x0]) => {
  channelsLast(layer);
  const [[t, b], [l, r]] = twoSided(layer, layer.config.cropping ?? 0);
  const x = ctx.as(x0, 'nchw');
  const [n, h, w, c] = x.shape;
  const [ho, wo] = [h - t - b, w - l - r];
  const y: TValue = { name: ctx.op('Slice', [x.name, ctx.ints([t, l]), ctx.ints([t + ho, l + wo]), ctx.ints([2, 3])], `${layer.name}/crop`), shape: [n, ho, wo, c], layout: 'nchw' };
  return ctx.record([x], y, (dy) => [ctx.op('Pad', [dy, ctx.ints([0, 0, t, l, 0, 0, b, r])], `${layer.name}/grad`)]);
};

/** Sums a broadcast gradient back to the shape of the operand it came from. */
function unbroadcast(ctx: StepContext, grad: string, from: TValue, to: TValue, base: string): string {
  const gd = dimsOf(from);
  const td = dimsOf(to);
  const axes = gd.map((d, i) => (td[i] === 1 && d !== 1 ? i : -1)).filter((i) => i >= 0);
  return axes.length ? ctx.op('ReduceSum', [grad, ctx.ints(axes)], `${base}/unbroadcast`, { keepdims: 1 }) : grad;
}

function mergeInputs(ctx: StepContext, layer: StepLayer, inputs: TValue[]): TValue[] {
  if (inputs.some((v) => v.shape.length !== inputs[0].shape.length)) throw unsupportedLayer(layer, 'inputs of different ranks');
  return inputs.map((v) => ctx.as(v, v.shape.length === 4 ? 'nchw' : 'native'));
}

const add: Rule = (ctx, layer, inputs0) => {
  const inputs = mergeInputs(ctx, layer, inputs0);
  const shape = inputs[0].shape.map((_, i) => Math.max(...inputs.map((v) => v.shape[i])));
  const name = inputs.length === 1 ? inputs[0].name : ctx.op('Sum', inputs.map((v) => v.name), `${layer.name}/add`);
  const y: TValue = { name, shape, layout: inputs[0].layout };
  return ctx.record(inputs, y, (dy, need) => inputs.map((v, i) => (need[i] ? unbroadcast(ctx, dy, y, v, `${layer.name}/grad${i}`) : undefined)));
};

const multiply: Rule = (ctx, layer, inputs0) => {
  const inputs = mergeInputs(ctx, layer, inputs0);
  const shape = inputs[0].shape.map((_, i) => Math.max(...inputs.map((v) => v.shape[i])));
  const name = inputs.slice(1).reduce((acc, v) => ctx.op('Mul', [acc, v.name], `${layer.name}/mul`), inputs[0].name);
  const y: TValue = { name, shape, layout: inputs[0].layout };
  return ctx.record(inputs, y, (dy, need) =>
    inputs.map((v, i) => {
      if (!need[i]) return undefined;
      const others = inputs.filter((_, j) => j !== i).reduce((acc, o) => ctx.op('Mul', [acc, o.name], `${layer.name}/grad${i}/mul`), dy);
      return unbroadcast(ctx, others, y, v, `${layer.name}/grad${i}`);
    }),
  );
};

const concatenate: Rule = (ctx, layer, inputs0) => {
  const inputs = mergeInputs(ctx, layer, inputs0);
  const rank = inputs[0].shape.length;
  let axis = Number(layer.config.axis ?? -1);
  if (axis < 0) axis += rank;
  const graphAxis = rank === 4 ? [0, 2, 3, 1][axis] : axis;
  const shape = [...inputs[0].shape];
  shape[axis] = inputs.reduce((s, v) => s + v.shape[axis], 0);
  const y: TValue = { name: ctx.op('Concat', inputs.map((v) => v.name), `${layer.name}/concat`, { axis: graphAxis }), shape, layout: inputs[0].layout };
  return ctx.record(inputs, y, (dy) => ctx.opMulti('Split', [dy, ctx.ints(inputs.map((v) => v.shape[axis]))], inputs.map((_, i) => `${layer.name}/grad${i}`), { axis: graphAxis }));
};

const rescaling: Rule = (ctx, layer, [x]) => {
  const scale = Number(layer.config.scale ?? 1);
  const offset = Number(layer.config.offset ?? 0);
  let name = ctx.op('Mul', [x.name, ctx.scalar(scale)], `${layer.name}/scaled`);
  if (offset) name = ctx.op('Add', [name, ctx.scalar(offset)], `${layer.name}/offset`);
  return ctx.record([x], { ...x, name }, (dy) => [ctx.op('Mul', [dy, ctx.scalar(scale)], `${layer.name}/grad`)]);
};

/**
 * Dropout in training mode: multiplies by a mask input (0 or 1 / keep, drawn by the runner from the step's seed).
 * With a `noise_shape` (EfficientNet's stochastic depth, [null, 1, 1, 1]) the mask has that shape and broadcasts.
 */
const dropout: Rule = (ctx, layer, [x]) => {
  const rate = Number(layer.config.rate ?? 0);
  if (!(rate > 0)) return x;
  const mask = ctx.g.reserve(`dropout_mask/${layer.name}`);
  ctx.extraInputs.push({ name: mask, dims: dropoutMaskDims(layer, x), rate, layer: layer.name });
  const y: TValue = { ...x, name: ctx.op('Mul', [x.name, mask], `${layer.name}/dropout`) };
  return ctx.record([x], y, (dy) => [ctx.op('Mul', [dy, mask], `${layer.name}/grad`)]);
};

/** The dims of a dropout mask in the graph's layout: the value's, or the layer's `noise_shape` (null: the value's). */
function dropoutMaskDims(layer: StepLayer, x: TValue): number[] {
  const dims = dimsOf(x);
  const noise = layer.config.noise_shape as Array<number | null> | null | undefined;
  if (noise === undefined || noise === null) return dims;
  // noise_shape is in tfjs's order (batch, ..., channels); 4-D values live in NCHW inside the graph.
  const nchw = x.layout === 'nchw' && dims.length === 4;
  const native = nchw ? [dims[0], dims[2], dims[3], dims[1]] : dims;
  if (noise.length !== native.length) throw unsupportedLayer(layer, `noise_shape ${JSON.stringify(noise)} for an input of rank ${native.length}`);
  const m = native.map((d, i) => (noise[i] === null || noise[i] === undefined ? d : Number(noise[i])));
  if (m.some((d, i) => d !== 1 && d !== native[i])) throw unsupportedLayer(layer, `noise_shape ${JSON.stringify(noise)}`);
  return nchw ? [m[0], m[3], m[1], m[2]] : m;
}

const RULES: Record<string, Rule> = {
  Conv2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  SeparableConv2D: separableConv2d,
  Dense: dense,
  BatchNormalization: batchNorm,
  Activation: (ctx, layer, [x]) => withActivation(ctx, layer, x),
  ReLU: (ctx, layer, [x]) => {
    const max = layer.config.max_value;
    if (max === undefined || max === null) return applyActivation(ctx, x, 'relu', layer.name, layer);
    if (Number(max) === 6 && !layer.config.negative_slope && !layer.config.threshold) return applyActivation(ctx, x, 'relu6', layer.name, layer);
    throw unsupportedLayer(layer, `max_value ${JSON.stringify(max)}`);
  },
  LeakyReLU: (ctx, layer, [x]) => {
    const alpha = Number(layer.config.alpha ?? 0.3);
    const y: TValue = { ...x, name: ctx.op('LeakyRelu', [x.name], `${layer.name}/leaky`, { alpha: { float: alpha } }) };
    const b = `${layer.name}/grad`;
    return ctx.record([x], y, (dy) => [ctx.op('Where', [ctx.op('Greater', [x.name, ctx.scalar(0)], `${b}/pos`), dy, ctx.op('Mul', [dy, ctx.scalar(alpha)], `${b}/neg`)], b)]);
  },
  ELU: (ctx, layer, [x]) => {
    // tfjs-layers implements alpha = 1 only.
    if (Number(layer.config.alpha ?? 1) !== 1) throw unsupportedLayer(layer, `alpha ${JSON.stringify(layer.config.alpha)}`);
    return applyActivation(ctx, x, 'elu', layer.name, layer);
  },
  Softmax: (ctx, layer, [x]) => {
    // tfjs's Softmax layer defaults to axis 1 (Keras's to -1).
    let axis = Number(layer.config.axis ?? 1);
    if (axis < 0) axis += x.shape.length;
    return softmax(ctx, x, x.layout === 'nchw' ? [0, 2, 3, 1][axis] : axis, layer.name);
  },
  MaxPooling2D: maxPool,
  AveragePooling2D: avgPool,
  GlobalAveragePooling2D: globalPool('avg'),
  GlobalMaxPooling2D: globalPool('max'),
  Flatten: flatten,
  Reshape: reshape,
  ZeroPadding2D: zeroPadding,
  Cropping2D: cropping,
  Add: add,
  Multiply: multiply,
  Concatenate: concatenate,
  Rescaling: rescaling,
  Dropout: dropout,
};

/** Layer classes the compiled training step can train through. */
export const TRAIN_STEP_LAYERS = ['InputLayer', ...Object.keys(RULES)];

/** Applies one layer's forward rule (recording its reverse rule); an unknown class is a GraftError naming it. */
export function applyLayer(ctx: StepContext, layer: StepLayer, inputs: TValue[]): TValue {
  const rule = RULES[layer.className];
  if (!rule) throw unsupportedLayer(layer);
  return rule(ctx, layer, inputs);
}
