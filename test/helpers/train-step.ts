/**
 * Compares the compiled training step's gradients with tfjs autodiff (`tf.variableGrads`) on the same model, batch
 * and dropout masks: the loss, every trained weight's gradient and the BN moving statistics training mode writes.
 */
import * as tf from '@tensorflow/tfjs';
import { onnxGradients } from '../../src/engine/onnx-train-step';
import { classificationLoss, LossOptions } from '../../src/train/losses';
import { syncFrozenBatchNorm } from '../../src/train/freeze';
import { createRng } from '../../src/util/rng';

/** Largest |a - b| over the largest |b| (at least 0.01, so gradients that are zero in theory, like a conv bias before training-mode BN, compare absolutely). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-2);
}

/** A seeded batch: inputs in [-1, 1) and labels in [0, classes). */
export function randomBatch(shape: number[], classes: number, seed: number): { x: Float32Array; labels: Int32Array } {
  const rng = createRng(seed);
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1));
  const labels = Int32Array.from({ length: shape[0] }, (_, i) => (i + rng.int(classes)) % classes);
  return { x, labels };
}

/** A dropout mask's shape (batch first, tfjs order): the layer input's, or its `noise_shape` where that says 1. */
export function maskShape(layer: tf.layers.Layer, inputShape: number[]): number[] {
  const noise = (layer.getConfig() as { noiseShape?: Array<number | null> }).noiseShape;
  return noise ? inputShape.map((d, i) => noise[i] ?? d) : inputShape;
}

/** Makes tfjs's Dropout layers multiply by the given masks (in NHWC / native order) so both engines drop alike. */
function pinDropout(model: tf.LayersModel, masks: Record<string, Float32Array>): () => void {
  const restore: Array<() => void> = [];
  for (const layer of model.layers) {
    const mask = masks[layer.name];
    if (!mask) continue;
    const own = layer as unknown as Record<string, unknown>;
    own.call = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return kwargs.training ? tf.mul(x, tf.tensor(mask, maskShape(layer, x.shape))) : x;
    };
    restore.push(() => delete own.call);
  }
  return () => restore.forEach((r) => r());
}

/**
 * Makes every 'same' AveragePooling2D of `model` compute its pooling as a depthwise convolution of ones divided by
 * the count of real pixels under each window: the same forward values, but a form tfjs differentiates exactly (its
 * AvgPoolGrad divides by the whole window even where the padding made it smaller, which is not the derivative of
 * its own forward pass; the compiled step follows the forward pass, as TensorFlow does).
 */
export function exactSameAvgPools(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'AveragePooling2D') continue;
    const cfg = layer.getConfig() as { padding?: string; poolSize: number[]; strides: number[] };
    if (cfg.padding !== 'same') continue;
    const [kh, kw] = cfg.poolSize;
    const strides = cfg.strides as [number, number];
    (layer as unknown as Record<string, unknown>).call = (inputs: tf.Tensor | tf.Tensor[]) => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const sums = tf.depthwiseConv2d(x, tf.ones([kh, kw, x.shape[3], 1]) as tf.Tensor4D, strides, 'same');
      const counts = tf.depthwiseConv2d(tf.ones([1, x.shape[1], x.shape[2], 1]) as tf.Tensor4D, tf.ones([kh, kw, 1, 1]) as tf.Tensor4D, strides, 'same');
      return tf.div(sums, counts);
    };
  }
}

/** Result of `compareGradients`: worst relative error per weight key, plus the loss and statistics errors. */
export interface GradientComparison {
  loss: number;
  grads: Record<string, number>;
  stats: Record<string, number>;
  worst: number;
  /** tfjs's gradients, the reference (by weight key). */
  reference: Record<string, Float32Array>;
  /** The compiled step's output probabilities (batch x units). */
  probs: Float32Array;
}

/**
 * Runs both engines on one batch and returns the relative errors. Trains every trainable weight of the model.
 * `masks` pins dropout (NHWC / native order; the compiled step takes the same values in its own layout).
 */
export async function compareGradients(
  model: tf.LayersModel,
  batch: { x: Float32Array; shape: number[]; labels: Int32Array },
  loss: LossOptions,
  masks: Record<string, Float32Array> = {},
): Promise<GradientComparison> {
  syncFrozenBatchNorm(model);
  const weights = model.trainableWeights;
  const groups = [{ name: 'all', weights: weights.map((w) => w.originalName) }];
  const onnxMasks: Record<string, Float32Array> = {};
  for (const [name, m] of Object.entries(masks)) {
    const shape = model.getLayer(name).getInputAt(0) as tf.SymbolicTensor;
    const dims = maskShape(model.getLayer(name), [batch.shape[0], ...(shape.shape.slice(1) as number[])]);
    // Masks on feature maps go to the compiled step in NCHW.
    onnxMasks[name] = dims.length === 4 ? (tf.tidy(() => tf.tensor(m, dims).transpose([0, 3, 1, 2]).dataSync()) as Float32Array) : m;
  }
  const compiled = await onnxGradients(model, batch.x, batch.shape, batch.labels, { groups, loss, masks: onnxMasks });
  const statsBefore = model.weights.filter((w) => /moving_(mean|variance)$/.test(w.originalName));
  const ref = referenceGradients(model, batch, loss, masks);
  const result: GradientComparison = { loss: Math.abs(ref.loss - compiled.loss) / Math.max(Math.abs(ref.loss), 1e-3), grads: {}, stats: {}, worst: 0, reference: ref.grads, probs: compiled.probs };
  for (const w of weights) {
    const g = ref.grads[w.originalName];
    result.grads[w.originalName] = g ? relErr(compiled.grads[w.originalName], g) : Infinity;
  }
  for (const w of statsBefore) {
    if (compiled.stats[w.originalName]) result.stats[w.originalName] = relErr(compiled.stats[w.originalName], w.read().dataSync());
  }
  result.worst = Math.max(result.loss, ...Object.values(result.grads), ...Object.values(result.stats));
  return result;
}

/**
 * tfjs autodiff's loss and gradient of every trainable weight (by original name) on the active backend, dropout
 * pinned to `masks`. Training-mode BN layers also move their statistics, as a training step does.
 */
export function referenceGradients(
  model: tf.LayersModel,
  batch: { x: Float32Array; shape: number[]; labels: Int32Array },
  loss: LossOptions,
  masks: Record<string, Float32Array> = {},
): { loss: number; grads: Record<string, Float32Array> } {
  const weights = model.trainableWeights;
  const restore = pinDropout(model, masks);
  try {
    const { value, grads } = tf.variableGrads(() => {
      const out = model.apply(tf.tensor(batch.x, batch.shape), { training: true }) as tf.Tensor;
      return classificationLoss(out, batch.labels, loss);
    }, weights.map((w) => w.read() as tf.Variable));
    const result = { loss: value.dataSync()[0], grads: {} as Record<string, Float32Array> };
    for (const w of weights) {
      const g = grads[(w.read() as tf.Variable).name];
      if (g) result.grads[w.originalName] = g.dataSync() as Float32Array;
    }
    tf.dispose([value, ...Object.values(grads)]);
    return result;
  } finally {
    restore();
  }
}

/**
 * tfjs cpu's Conv2DBackpropFilter with the same loops, the same order of accumulation (a double per filter tap,
 * rounded to float32 once) and so the same bits, indexing the typed arrays directly: the stock kernel reads every
 * element through TensorBuffer.get, about 100 ns a read, which made it 80% of a registry-wide gradient check.
 */
const fastFilterGrad: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  if (dataFormat === 'NCHW') throw new Error('fastFilterGrad: NHWC only');
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const data = (backend as unknown as { data: { get(id: unknown): { values: Float32Array } } }).data;
  const xv = data.get(x.dataId).values;
  const dyv = data.get(dy.dataId).values;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, inHeight, inWidth, outHeight, outWidth, inChannels, outChannels, batchSize } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dw = new Float32Array(fh * fw * inChannels * outChannels);
  for (let wR = 0; wR < fh; ++wR) {
    const yRMin = Math.max(0, Math.ceil((top - wR) / sh));
    const yRMax = Math.min(outHeight, (inHeight + top - wR) / sh);
    for (let wC = 0; wC < fw; ++wC) {
      const yCMin = Math.max(0, Math.ceil((left - wC) / sw));
      const yCMax = Math.min(outWidth, (inWidth + left - wC) / sw);
      for (let d1 = 0; d1 < inChannels; ++d1) {
        for (let d2 = 0; d2 < outChannels; ++d2) {
          let dot = 0;
          for (let b = 0; b < batchSize; ++b) {
            for (let yR = yRMin; yR < yRMax; ++yR) {
              const xRow = (b * inHeight + wR + yR * sh - top) * inWidth;
              const dyRow = (b * outHeight + yR) * outWidth;
              for (let yC = yCMin; yC < yCMax; ++yC) {
                dot += xv[(xRow + wC + yC * sw - left) * inChannels + d1] * dyv[(dyRow + yC) * outChannels + d2];
              }
            }
          }
          dw[((wR * fw + wC) * inChannels + d1) * outChannels + d2] = dot;
        }
      }
    }
  }
  return (backend as unknown as { makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo }).makeTensorInfo(filterShape, 'float32', dw);
};

/** Puts `fastFilterGrad` in place of the cpu backend's Conv2DBackpropFilter; returns the function that puts tfjs's back. */
export function useFastCpuFilterGrad(): () => void {
  const stock = tf.getKernel('Conv2DBackpropFilter', 'cpu');
  if (!stock) throw new Error('the cpu backend has no Conv2DBackpropFilter');
  tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
  tf.registerKernel({ ...stock, kernelFunc: fastFilterGrad });
  return () => {
    tf.unregisterKernel('Conv2DBackpropFilter', 'cpu');
    tf.registerKernel(stock);
  };
}
