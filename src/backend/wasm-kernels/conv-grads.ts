/**
 * Convolution gradients for the wasm backend, written as forward convolutions so XNNPACK does the arithmetic.
 * In one spatial axis, with stride s, dilation d, top pad p and filter length K, the forward pass is
 * y[o] = sum_k x[o*s + k*d - p] w[k]. Then:
 * - filter gradient: dW[k] = sum_o x[k*d + o*s - p] dy[o], a convolution over x (transposed so the batch is the
 *   channel axis) whose filter is dy, with stride d and dilation s;
 * - input gradient: dx[i] = sum_k D[i + k*d - ((K-1)*d - p)] w[K-1-k], where D is dy zero-dilated by s: a stride-1
 *   convolution of D with the flipped filter.
 * Depthwise convolutions follow the same algebra per channel; their filter gradient folds the batch into the
 * channel axis and sums it out afterwards.
 */
import * as tf from '@tensorflow/tfjs';
import { composed, KernelArgs, KernelScope, view } from './scope';
import { placeSpatial, sampleSpatial } from './place';

type Pad = number | 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** Geometry of one forward convolution, from tfjs's own `computeConv2DInfo` so padding matches it exactly. */
interface Geometry {
  /** Input batch, height, width, channels. */
  inShape: [number, number, number, number];
  /** Output height and width. */
  out: [number, number];
  /** Filter height and width. */
  filter: [number, number];
  /** Strides. */
  strides: [number, number];
  /** Dilations. */
  dilations: [number, number];
  /** Top and left padding. */
  padBefore: [number, number];
}

function geometry(
  inShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
  options: { depthwise: boolean },
): Geometry {
  const format = (attrs.dataFormat as string | undefined) ?? 'NHWC';
  if (format !== 'NHWC' && format !== 'channelsLast') {
    throw new Error(`graft wasm convolution gradients support NHWC data only; received dataFormat ${format}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations as number | [number, number] | undefined) ?? 1,
    attrs.pad as Pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    options.depthwise,
  );
  return {
    inShape: inShape as Geometry['inShape'],
    out: [info.outHeight, info.outWidth],
    filter: [info.filterHeight, info.filterWidth],
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    padBefore: [info.padInfo.top, info.padInfo.left],
  };
}

type Pads = [[number, number], [number, number], [number, number], [number, number]];

/**
 * Brings `x` (NHWC) into the frame a convolution needs, given the top/left pads and the length the padded input
 * must have per axis. Positive pads are passed to the convolution; negative ones (rows no output uses) and stride
 * dilation need a copy.
 */
function frame(
  scope: KernelScope,
  x: tf.TensorInfo,
  args: { dilate: [number, number]; before: [number, number]; length: [number, number] },
): { input: tf.TensorInfo; pad: Pads } {
  const { dilate, before, length } = args;
  const after = [0, 1].map((a) => length[a] - before[a] - x.shape[a + 1] * dilate[a]);
  const dilated = dilate[0] > 1 || dilate[1] > 1;
  if (!dilated && before[0] >= 0 && before[1] >= 0 && after[0] >= 0 && after[1] >= 0) {
    return { input: x, pad: [[0, 0], [before[0], after[0]], [before[1], after[1]], [0, 0]] };
  }
  const input = placeSpatial(scope, x, { strides: dilate, begin: [-before[0], -before[1]], size: length });
  return { input, pad: [[0, 0], [0, 0], [0, 0], [0, 0]] };
}

/** `Conv2DBackpropFilter`: dW[kh, kw, ci, co] from x and dy. */
export function conv2DBackpropFilter({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const g = geometry(x.shape, filterShape, attrs, { depthwise: false });
  return composed(backend, (scope) => {
    const [n, , , ci] = g.inShape;
    const co = filterShape[3];
    if (g.filter[0] === 1 && g.filter[1] === 1) {
      // A 1x1 filter's gradient is one matrix product, X^T dY over every output pixel, where X holds the input
      // pixels the outputs read. XNNPACK runs it at full GEMM speed, 1.3-3x the convolution form below.
      const xs = sampleSpatial(scope, x, { strides: g.strides, begin: [-g.padBefore[0], -g.padBefore[1]], size: g.out });
      const pixels = n * g.out[0] * g.out[1];
      const dw = scope.run('BatchMatMul', { a: view(xs, [1, pixels, ci]), b: view(dy, [1, pixels, co]) }, { transposeA: true, transposeB: false });
      dw.shape = [1, 1, ci, co];
      return dw;
    }
    // The batch becomes the channel axis: x -> [ci, h, w, n], dy -> filter [oh, ow, n, co].
    const xT = scope.run('Transpose', { x }, { perm: [3, 1, 2, 0] });
    const dyT = scope.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const { input, pad } = frame(scope, xT, filterGradFrame(g));
    const dw = scope.run(
      'Conv2D',
      { x: input, filter: view(dyT, [g.out[0], g.out[1], n, co]) },
      { strides: g.dilations, pad, dilations: g.strides, dataFormat: 'NHWC' },
    );
    return scope.run('Transpose', { x: dw }, { perm: [1, 2, 0, 3] });
  });
}

/** `Conv2DBackpropInput`: dx from dy and the filter. */
export function conv2DBackpropInput({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[];
  const g = geometry(inputShape, filter.shape, attrs, { depthwise: false });
  return composed(backend, (scope) => {
    const [, h, w] = g.inShape;
    if (g.filter[0] === 1 && g.filter[1] === 1) {
      // A 1x1 filter touches one input pixel per output: multiply at the output resolution, then dilate.
      const wT = scope.run('Transpose', { x: filter }, { perm: [0, 1, 3, 2] });
      const z = scope.run('Conv2D', { x: dy, filter: wT }, { strides: 1, pad: 'valid', dilations: 1, dataFormat: 'NHWC' });
      return placeSpatial(scope, z, { strides: g.strides, begin: g.padBefore, size: [h, w] });
    }
    // The flipped filter with input and output channels swapped: [kh, kw, co, ci].
    const flipped = scope.run('Reverse', { x: filter }, { dims: [0, 1] });
    const wT = scope.run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
    const { input, pad } = frame(scope, dy, inputGradFrame(g));
    return scope.run('Conv2D', { x: input, filter: wT }, { strides: 1, pad, dilations: g.dilations, dataFormat: 'NHWC' });
  });
}

/** Frame of x (padded, or cropped to the rows some output reads) for the filter-gradient convolution. */
function filterGradFrame(g: Geometry): { dilate: [number, number]; before: [number, number]; length: [number, number] } {
  const span = (a: number) => (g.filter[a] - 1) * g.dilations[a] + (g.out[a] - 1) * g.strides[a] + 1;
  return { dilate: [1, 1], before: g.padBefore, length: [span(0), span(1)] };
}

/** Frame of the stride-dilated dy that a stride-1 convolution with the flipped filter turns into dx. */
function inputGradFrame(g: Geometry): { dilate: [number, number]; before: [number, number]; length: [number, number] } {
  const reach = [0, 1].map((a) => (g.filter[a] - 1) * g.dilations[a]);
  return {
    dilate: g.strides,
    before: [reach[0] - g.padBefore[0], reach[1] - g.padBefore[1]],
    length: [g.inShape[1] + reach[0], g.inShape[2] + reach[1]],
  };
}

/** `DepthwiseConv2dNativeBackpropInput`: dx from dy and the depthwise filter [kh, kw, c, m]. */
export function depthwiseConv2dNativeBackpropInput({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[];
  const g = geometry(inputShape, filter.shape, attrs, { depthwise: true });
  return composed(backend, (scope) => {
    const [n, h, w, c] = g.inShape;
    const [kh, kw, , m] = filter.shape;
    // Each of the c*m output channels convolves back on its own, then the m multipliers of a channel add up.
    const flipped = scope.run('Reverse', { x: filter }, { dims: [0, 1] });
    const { input, pad } = frame(scope, dy, inputGradFrame(g));
    const dxm = scope.run(
      'DepthwiseConv2dNative',
      { x: input, filter: view(flipped, [kh, kw, c * m, 1]) },
      { strides: 1, pad, dilations: g.dilations, dataFormat: 'NHWC' },
    );
    if (m === 1) return dxm;
    return scope.run('Sum', { x: view(dxm, [n, h, w, c, m]) }, { axis: [4], keepDims: false });
  });
}

/** `DepthwiseConv2dNativeBackpropFilter`: dW [kh, kw, c, m] from x and dy. */
export function depthwiseConv2dNativeBackpropFilter({ inputs, backend, attrs = {} }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const g = geometry(x.shape, filterShape, attrs, { depthwise: true });
  return composed(backend, (scope) => {
    const [n, h, w, c] = g.inShape;
    const [kh, kw, , m] = filterShape;
    // Batch folded into channels: x -> [1, h, w, n*c], dy -> per-channel filter [oh, ow, n*c, m].
    const xT = scope.run('Transpose', { x }, { perm: [1, 2, 0, 3] });
    const dyT = scope.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const { input, pad } = frame(scope, view(xT, [1, h, w, n * c]), filterGradFrame(g));
    const per = scope.run(
      'DepthwiseConv2dNative',
      { x: input, filter: view(dyT, [g.out[0], g.out[1], n * c, m]) },
      { strides: g.dilations, pad, dilations: g.strides, dataFormat: 'NHWC' },
    );
    const summed = scope.run('Sum', { x: view(per, [kh * kw, n, c * m]) }, { axis: [1], keepDims: false });
    summed.shape = [kh, kw, c, m];
    return summed;
  });
}
