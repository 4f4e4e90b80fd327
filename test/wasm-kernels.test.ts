import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { registerWasmKernels, wasmKernelsRegistered, WASM_KERNEL_NAMES } from '../src/backend/wasm-kernels';
import { liveCounts, randomValues, relativeError, valuesOn } from './helpers/compare-backends';

type Pad = 'same' | 'valid' | number;

/** Runs a kernel by name on both backends with the same inputs; returns [wasm, cpu] values. */
async function bothBackends(
  kernel: string,
  inputs: Record<string, { shape: number[]; values: Float32Array | Int32Array }>,
  attrs: Record<string, unknown>,
): Promise<[Float32Array, Float32Array, number[]]> {
  let shape: number[] = [];
  const run = () =>
    tf.tidy(() => {
      const tensors: Record<string, tf.Tensor> = {};
      for (const [name, v] of Object.entries(inputs)) tensors[name] = tf.tensor(v.values, v.shape, v.values instanceof Int32Array ? 'int32' : 'float32');
      const out = tf.engine().runKernel(kernel, tensors as never, attrs as never) as tf.Tensor;
      shape = out.shape;
      return out;
    });
  const [cpu] = await valuesOn('cpu', run);
  const [wasm] = await valuesOn('wasm', run);
  return [wasm, cpu, shape];
}

function rand(seed: string, shape: number[]): { shape: number[]; values: Float32Array } {
  return { shape, values: randomValues(seed, tf.util.sizeFromShape(shape)) };
}

/** Output spatial size of a forward convolution, from tfjs itself. */
function convOut(xShape: number[], filterShape: number[], strides: [number, number], pad: Pad, dilations: [number, number], depthwise: boolean) {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad,
    pad === 'same' || pad === 'valid' ? undefined : 'floor',
    depthwise,
  );
  return [info.outHeight, info.outWidth];
}

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

describe('graft wasm kernels', () => {
  test('initBackend registers them for wasm, and registering again changes nothing', async () => {
    expect(wasmKernelsRegistered()).toBe(true);
    const before = WASM_KERNEL_NAMES.map((n) => tf.getKernel(n, 'wasm')!.kernelFunc);
    registerWasmKernels();
    expect(WASM_KERNEL_NAMES.map((n) => tf.getKernel(n, 'wasm')!.kernelFunc)).toEqual(before);
  });

  // [batch, h, w, cin, cout, [kh, kw], strides, pad]
  const convCases: Array<[number, number, number, number, number, [number, number], [number, number], Pad]> = [
    [1, 7, 7, 3, 4, [3, 3], [1, 1], 'same'],
    [2, 8, 9, 5, 3, [3, 3], [2, 2], 'same'],
    [3, 9, 6, 2, 4, [3, 3], [2, 2], 'valid'],
    [2, 8, 8, 4, 6, [1, 1], [2, 2], 'valid'],
    [2, 7, 7, 4, 6, [1, 1], [2, 2], 'same'],
    [1, 10, 7, 3, 2, [5, 3], [2, 1], 'valid'],
    [2, 11, 11, 3, 5, [7, 7], [2, 2], 'same'],
    [2, 8, 7, 3, 4, [3, 3], [2, 2], 1],
    [1, 6, 6, 2, 3, [3, 3], [1, 1], 'valid'],
    // 1x1 filters take the matrix-product path: stride 1, odd sizes, a numeric pad (zeros read), stride 3.
    [3, 5, 6, 5, 4, [1, 1], [1, 1], 'same'],
    [2, 5, 4, 3, 2, [1, 1], [2, 2], 1],
    [1, 10, 8, 3, 4, [1, 1], [3, 3], 'valid'],
  ];

  test.each(convCases)('Conv2D gradients n=%i %ix%i %i->%i filter %p strides %p pad %p match cpu', async (n, h, w, ci, co, k, s, pad) => {
    const xShape = [n, h, w, ci];
    const filterShape = [k[0], k[1], ci, co];
    const [oh, ow] = convOut(xShape, filterShape, s, pad, [1, 1], false);
    const dimRoundingMode = typeof pad === 'number' ? 'floor' : undefined;
    const dy = rand(`dy${n}${h}${w}`, [n, oh, ow, co]);
    const [dwWasm, dwCpu, dwShape] = await bothBackends(
      'Conv2DBackpropFilter',
      { x: rand(`x${n}${h}${w}`, xShape), dy },
      { strides: s, pad, dataFormat: 'NHWC', dimRoundingMode, filterShape },
    );
    expect(dwShape).toEqual(filterShape);
    expect(relativeError(dwWasm, dwCpu)).toBeLessThan(1e-5);
    const [dxWasm, dxCpu, dxShape] = await bothBackends(
      'Conv2DBackpropInput',
      { dy, filter: rand(`f${n}${h}${w}`, filterShape) },
      { strides: s, pad, dataFormat: 'NHWC', dimRoundingMode, inputShape: xShape },
    );
    expect(dxShape).toEqual(xShape);
    expect(relativeError(dxWasm, dxCpu)).toBeLessThan(1e-5);
  });

  // [batch, h, w, channels, multiplier, [kh, kw], strides, pad, dilations]
  const depthwiseCases: Array<[number, number, number, number, number, [number, number], [number, number], Pad, [number, number]]> = [
    [2, 7, 7, 3, 1, [3, 3], [1, 1], 'same', [1, 1]],
    [1, 9, 8, 2, 2, [3, 3], [2, 2], 'same', [1, 1]],
    [3, 8, 8, 4, 1, [3, 3], [2, 2], 'valid', [1, 1]],
  ];

  test.each(depthwiseCases)(
    'DepthwiseConv2dNative gradients n=%i %ix%i c=%i x%i filter %p strides %p pad %p dilations %p match cpu',
    async (n, h, w, c, m, k, s, pad, d) => {
      const xShape = [n, h, w, c];
      const filterShape = [k[0], k[1], c, m];
      const [oh, ow] = convOut(xShape, filterShape, s, pad, d, true);
      const dy = rand(`ddy${n}${h}${w}${m}`, [n, oh, ow, c * m]);
      const [dwWasm, dwCpu, dwShape] = await bothBackends(
        'DepthwiseConv2dNativeBackpropFilter',
        { x: rand(`dx${n}${h}${w}${m}`, xShape), dy },
        { strides: s, pad, dilations: d, filterShape },
      );
      expect(dwShape).toEqual(filterShape);
      expect(relativeError(dwWasm, dwCpu)).toBeLessThan(1e-5);
      const [dxWasm, dxCpu, dxShape] = await bothBackends(
        'DepthwiseConv2dNativeBackpropInput',
        { dy, filter: rand(`df${n}${h}${w}${m}`, filterShape) },
        { strides: s, pad, dilations: d, inputShape: xShape },
      );
      expect(dxShape).toEqual(xShape);
      expect(relativeError(dxWasm, dxCpu)).toBeLessThan(1e-5);
    },
  );

  // tfjs's cpu kernels ignore dilations in depthwise gradients (its ops refuse dilated gradients), so dilated cases
  // are checked by the adjoint identities <dy, conv(x, W)> = <dW, W> = <dx, x>, with the forward conv on cpu.
  test.each([
    [2, 9, 9, 2, 3, [3, 3], [1, 1], 'valid', [2, 2]],
    [2, 8, 10, 3, 2, [5, 5], [1, 1], 'same', [2, 2]],
  ] as Array<[number, number, number, number, number, [number, number], [number, number], Pad, [number, number]]>)(
    'DepthwiseConv2dNative gradients n=%i %ix%i c=%i x%i filter %p strides %p pad %p dilations %p are adjoint to the forward conv',
    async (n, h, w, c, m, k, s, pad, d) => {
      const x = rand(`ax${n}${h}`, [n, h, w, c]);
      const filter = rand(`af${n}${h}`, [k[0], k[1], c, m]);
      const [oh, ow] = convOut(x.shape, filter.shape, s, pad, d, true);
      const dy = rand(`ady${n}${h}`, [n, oh, ow, c * m]);
      const t = (v: { shape: number[]; values: Float32Array }) => tf.tensor(v.values, v.shape);
      const [forward] = await valuesOn('cpu', () =>
        tf.sum(tf.mul(t(dy), tf.depthwiseConv2d(t(x) as tf.Tensor4D, t(filter) as tf.Tensor4D, s, pad as 'same', 'NHWC', d))),
      );
      const [viaFilter, viaInput] = await valuesOn('wasm', () => {
        const dW = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: t(x), dy: t(dy) }, { strides: s, pad, dilations: d, filterShape: filter.shape } as never) as tf.Tensor;
        const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: t(dy), filter: t(filter) }, { strides: s, pad, dilations: d, inputShape: x.shape } as never) as tf.Tensor;
        return [tf.sum(tf.mul(dW, t(filter))), tf.sum(tf.mul(dx, t(x)))];
      });
      expect(Math.abs(viaFilter[0] - forward[0])).toBeLessThan(1e-4 * Math.abs(forward[0]) + 1e-3);
      expect(Math.abs(viaInput[0] - forward[0])).toBeLessThan(1e-4 * Math.abs(forward[0]) + 1e-3);
    },
  );

  // [a shape, b shape, transposeA, transposeB]
  const matmulCases: Array<[number[], number[], boolean, boolean]> = [
    [[1, 5, 7], [1, 7, 3], false, false],
    [[1, 7, 5], [1, 7, 3], true, false],
    [[1, 5, 7], [1, 3, 7], false, true],
    [[1, 7, 5], [1, 3, 7], true, true],
    [[4, 5, 6], [1, 6, 3], false, false],
    [[3, 4, 5], [3, 5, 2], false, false],
    [[3, 5, 4], [3, 2, 5], true, true],
    [[1, 4, 5], [3, 5, 2], false, false],
    [[2, 3, 4, 5], [2, 3, 5, 6], false, false],
    [[33, 17], [33, 9], true, false],
    // A large transposed right operand (a dense layer's input gradient) takes the swapped product.
    [[2, 7], [40, 7], false, true],
    [[7, 2], [40, 7], true, true],
  ];

  test.each(matmulCases)('BatchMatMul %p x %p transposeA=%p transposeB=%p matches cpu', async (aShape, bShape, ta, tb) => {
    const [wasm, cpu, shape] = await bothBackends(
      'BatchMatMul',
      { a: rand(`a${aShape}`, aShape), b: rand(`b${bShape}`, bShape) },
      { transposeA: ta, transposeB: tb },
    );
    const m = ta ? aShape[aShape.length - 1] : aShape[aShape.length - 2];
    const n = tb ? bShape[bShape.length - 2] : bShape[bShape.length - 1];
    expect(shape.slice(-2)).toEqual([m, n]);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  // [shape, begin, size]
  const sliceCases: Array<[number[], number[], number[]]> = [
    [[10, 6], [3, 0], [4, 6]],
    [[4, 5, 6, 7], [1, 2, 0, 3], [2, 3, 6, 4]],
    [[4, 5, 6, 7], [0, 0, 0, 2], [4, 5, 6, 3]],
    [[3, 4, 5], [1, 0, 0], [-1, -1, -1]],
    [[2, 3, 4, 5, 6], [1, 1, 1, 0, 0], [1, 2, 2, 5, 6]],
    [[5], [2], [0]],
  ];

  test.each(sliceCases)('Slice of %p at %p size %p copies only the selection and matches cpu', async (shape, begin, size) => {
    const [wasm, cpu, outShape] = await bothBackends('Slice', { x: rand(`s${shape}`, shape) }, { begin, size });
    expect(outShape).toEqual(size.map((s, i) => (s === -1 ? shape[i] - begin[i] : s)));
    expect(wasm).toEqual(cpu);
  });

  // [x shape, per-channel parameter shape, with offset, with scale]
  const batchNormCases: Array<[number[], number[], boolean, boolean]> = [
    [[2, 5, 6, 3], [3], true, true],
    [[7, 4], [4], false, false],
    [[3, 4, 4, 5], [1, 1, 1, 5], true, false],
    [[2, 3, 1], [1], false, true],
  ];

  test.each(batchNormCases)('FusedBatchNorm of %p with parameters %p (offset %p, scale %p) matches cpu', async (shape, param, withOffset, withScale) => {
    const positive = rand(`var${shape}`, param);
    positive.values = positive.values.map((v) => 0.5 + Math.abs(v));
    const inputs = {
      x: rand(`bn${shape}`, shape),
      mean: rand(`mean${shape}`, param),
      variance: positive,
      ...(withOffset ? { offset: rand(`off${shape}`, param) } : {}),
      ...(withScale ? { scale: rand(`scale${shape}`, param) } : {}),
    };
    const [wasm, cpu, outShape] = await bothBackends('FusedBatchNorm', inputs, { varianceEpsilon: 0.001 });
    expect(outShape).toEqual(shape);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  const tileCases: Array<[number[], number[]]> = [
    [[1, 1, 1, 5], [3, 4, 2, 1]],
    [[2, 3], [2, 2]],
    [[3], [4]],
    [[2, 1, 3], [1, 3, 2]],
    [[2, 3, 2], [2, 1, 3]],
  ];

  test.each(tileCases)('Tile of %p by %p matches cpu (float32 and int32)', async (shape, reps) => {
    const [wasm, cpu, outShape] = await bothBackends('Tile', { x: rand(`tile${shape}`, shape) }, { reps });
    expect(outShape).toEqual(shape.map((s, i) => s * reps[i]));
    expect(wasm).toEqual(cpu);
    const ints = { shape, values: Int32Array.from({ length: tf.util.sizeFromShape(shape) }, (_, i) => i * 7 - 3) };
    const [wasmInt, cpuInt] = await bothBackends('Tile', { x: ints }, { reps });
    expect(Array.from(wasmInt)).toEqual(Array.from(cpuInt));
  });

  const sumCases: Array<[number[], number[], boolean]> = [
    [[2, 3, 4, 5], [0, 1, 2], false],
    [[2, 3, 4, 5], [0, 1, 2], true],
    [[7, 3], [0], false],
    [[2, 3, 4], [1], false],
    [[2, 3, 4], [0, 1, 2], false],
  ];

  test.each(sumCases)('Sum of %p over axes %p (keepDims %p) matches cpu', async (shape, axis, keepDims) => {
    const [wasm, cpu, outShape] = await bothBackends('Sum', { x: rand(`sum${shape}${axis}`, shape) }, { axis, keepDims });
    const expected = keepDims ? shape.map((s, i) => (axis.includes(i) ? 1 : s)) : shape.filter((_, i) => !axis.includes(i));
    expect(outShape).toEqual(expected);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  test('FusedBatchNorm with batch statistics far from zero (training mode) subtracts the mean first, like cpu', async () => {
    // x = 1000 + small spread: folding mean into one multiply-add (x * k - mean * k) would lose ~3 digits here.
    const shape = [6, 3];
    const noise = randomValues('bn-far', 18);
    const x = Float32Array.from(noise, (v) => 1000 + 0.01 * v);
    const mean = Float32Array.from({ length: 3 }, (_, c) => x.filter((_, i) => i % 3 === c).reduce((a, v) => a + v, 0) / 6);
    const variance = Float32Array.from({ length: 3 }, (_, c) => x.filter((_, i) => i % 3 === c).reduce((a, v) => a + (v - mean[c]) ** 2, 0) / 6);
    const inputs = { x: { shape, values: x }, mean: { shape: [3], values: mean }, variance: { shape: [3], values: variance } };
    const [wasm, cpu] = await bothBackends('FusedBatchNorm', inputs, { varianceEpsilon: 1e-6 });
    expect(Math.max(...cpu.map(Math.abs))).toBeGreaterThan(0.5);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
  });

  // [input shape, pool size, strides, pad]: tfjs 4.22's own wasm MaxPoolGrad is wrong for the first two.
  const poolCases: Array<[number[], number, number, 'same' | 'valid']> = [
    [[2, 8, 8, 3], 3, 2, 'same'],
    [[1, 33, 33, 2], 3, 2, 'same'],
    [[2, 9, 9, 3], 2, 2, 'valid'],
    [[1, 7, 6, 2], 3, 1, 'same'],
  ];

  test.each(poolCases)('MaxPoolGrad of %p, pool %i, stride %i, %s padding matches cpu exactly', async (shape, size, stride, pad) => {
    const x = randomValues(`pool${shape}`, tf.util.sizeFromShape(shape));
    const grad = () =>
      tf.grad((t: tf.Tensor) => {
        const y = tf.maxPool(t as tf.Tensor4D, size, stride, pad);
        // A different weight per output, so a gradient routed to the wrong input shows.
        return tf.sum(tf.mul(y, tf.reshape(tf.range(1, 1 + y.size), y.shape)));
      })(tf.tensor(x, shape));
    const [cpu] = await valuesOn('cpu', grad);
    const [wasm] = await valuesOn('wasm', grad);
    expect(Array.from(wasm)).toEqual(Array.from(cpu));
  });

  test('UnsortedSegmentSum adds rows by segment, drops ids out of range, and matches cpu', async () => {
    const x = rand('seg', [7, 2, 3]);
    const segmentIds = { shape: [7], values: Int32Array.from([2, 0, 2, -1, 4, 0, 1]) };
    const [wasm, cpu, shape] = await bothBackends('UnsortedSegmentSum', { x, segmentIds }, { numSegments: 4 });
    expect(shape).toEqual([4, 2, 3]);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-6);
    // Segment 3 has no rows, and id 4 is out of range: its row is dropped rather than written past the end.
    expect(Array.from(wasm.subarray(18, 24))).toEqual([0, 0, 0, 0, 0, 0]);
    for (let j = 0; j < 6; j++) expect(wasm[j]).toBeCloseTo(x.values[6 + j] + x.values[30 + j], 5);
  });

  test('the gradient of gather runs on wasm and matches cpu', async () => {
    const params = rand('gather', [5, 4]);
    const run = () => tf.grad((p: tf.Tensor) => tf.gather(p, tf.tensor1d([3, 1, 3, 0], 'int32')).square().sum())(tf.tensor(params.values, params.shape));
    const [cpu] = await valuesOn('cpu', run);
    const [wasm] = await valuesOn('wasm', run);
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-6);
  });

  test('no kernel leaks tensors or wasm buffers', async () => {
    await initBackend({ backend: 'wasm', log: null });
    const calls: Array<() => tf.Tensor> = [
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.ones([2, 8, 8, 3]), dy: tf.ones([2, 4, 4, 4]) }, { strides: 2, pad: 'valid', dataFormat: 'NHWC', filterShape: [1, 1, 3, 4] } as never) as tf.Tensor,
      () => tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.ones([2, 4, 4, 4]), filter: tf.ones([3, 3, 3, 4]) }, { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 7, 7, 3] } as never) as tf.Tensor,
      () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: tf.ones([2, 7, 7, 3]), dy: tf.ones([2, 4, 4, 6]) }, { strides: 2, pad: 'same', dilations: 1, filterShape: [3, 3, 3, 2] } as never) as tf.Tensor,
      () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: tf.ones([2, 4, 4, 6]), filter: tf.ones([3, 3, 3, 2]) }, { strides: 2, pad: 'same', dilations: 1, inputShape: [2, 7, 7, 3] } as never) as tf.Tensor,
      () => tf.matMul(tf.ones([3, 5, 4]), tf.ones([3, 2, 5]), true, true),
      () => tf.matMul(tf.ones([4, 5]), tf.ones([3, 5]), false, true),
      () => tf.unsortedSegmentSum(tf.ones([4, 3]), tf.tensor1d([0, 1, 1, 0], 'int32'), 2),
      () => tf.slice(tf.ones([4, 5, 6]), [1, 0, 2], [2, 5, 3]),
      () => tf.batchNorm(tf.ones([2, 3, 3, 4]), tf.zeros([4]), tf.ones([4]), tf.ones([4]), tf.ones([4])),
      () => tf.tile(tf.ones([1, 1, 3]), [2, 4, 1]),
      () => tf.grad((t: tf.Tensor) => tf.sum(tf.maxPool(t as tf.Tensor4D, 3, 2, 'same')))(tf.ones([1, 5, 5, 2])),
      () => tf.sum(tf.ones([2, 3, 4]), [0, 1]),
    ];
    for (const call of calls) tf.tidy(() => call().dataSync());
    const before = liveCounts();
    for (let i = 0; i < 3; i++) for (const call of calls) tf.tidy(() => call().dataSync());
    expect(liveCounts()).toEqual(before);
  });
});
