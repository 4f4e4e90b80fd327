/**
 * Running a Predictor on a batch, with test-time augmentation: the class scores are the mean over the original
 * view and its horizontal mirror (and, with `flip+crop`, a centre crop zoomed back to full size). Views are made
 * after preprocessing, which is per pixel and so commutes with flips and crops.
 */
import type * as Tf from '@tensorflow/tfjs';
import { GraftError, oneOf } from '../errors';
import { Predictor } from '../engine/predictor';

/** Test-time augmentation modes. */
export const TTA_MODES = ['none', 'flip', 'flip+crop'] as const;
/** A TTA mode. */
export type TtaMode = (typeof TTA_MODES)[number];

/** Fraction of each side the `flip+crop` view keeps (the usual 224-of-256 ratio). */
const CROP_FRACTION = 0.875;

/** Parses a TTA option: a mode name, true (= `flip`), or false / undefined (= `none`). */
export function ttaMode(value: unknown): TtaMode {
  if (value === undefined || value === false) return 'none';
  if (value === true) return 'flip';
  return oneOf('tta', value, TTA_MODES);
}

/** The mode the CLI flags ask for: `--tta` = flip, `--tta-crop` = flip plus the centre crop. */
export function ttaFromFlags(flags: { tta?: boolean; ttaCrop?: boolean }): TtaMode {
  return flags.ttaCrop ? 'flip+crop' : flags.tta ? 'flip' : 'none';
}

/** Mirrors NHWC pixels left-right into a new array. */
export function flipHorizontal(pixels: Float32Array, shape: readonly [number, number, number, number]): Float32Array {
  const [n, h, w, c] = shape;
  const out = new Float32Array(pixels.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      const row = (b * h + y) * w;
      for (let x = 0; x < w; x++) {
        const src = (row + x) * c;
        const dst = (row + w - 1 - x) * c;
        for (let k = 0; k < c; k++) out[dst + k] = pixels[src + k];
      }
    }
  }
  return out;
}

/** The centre `CROP_FRACTION` of each image, resized back to full size (bilinear). */
async function centreZoom(pixels: Float32Array, shape: readonly [number, number, number, number]): Promise<Float32Array> {
  const [n, h, w, c] = shape;
  const m = (1 - CROP_FRACTION) / 2;
  // Loaded here: evaluations without the crop view run on onnxruntime without tfjs.
  const tf = require('@tensorflow/tfjs') as typeof Tf;
  const zoomed = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [n, h, w, c]);
    const boxes = tf.tensor2d(Array.from({ length: n }, () => [m, m, 1 - m, 1 - m]));
    const index = tf.tensor1d(Array.from({ length: n }, (_, i) => i), 'int32');
    return tf.image.cropAndResize(x, boxes, index, [h, w], 'bilinear');
  });
  try {
    return (await zoomed.data()) as Float32Array;
  } finally {
    zoomed.dispose();
  }
}

/** Turns raw model outputs into one score per class: a 1-unit sigmoid head becomes [1 - p, p]. */
export function classScores(output: Float32Array, batch: number, classes: number): Float32Array {
  const outputs = output.length / batch;
  if (outputs === classes) return output;
  if (outputs === 1 && classes === 2) {
    const out = new Float32Array(batch * 2);
    for (let i = 0; i < batch; i++) {
      out[2 * i] = 1 - output[i];
      out[2 * i + 1] = output[i];
    }
    return out;
  }
  throw new GraftError(`the model gives ${outputs} outputs per image but graft.json lists ${classes} classes; the model folder is inconsistent, re-save it.`);
}

/** Scores `batch` preprocessed NHWC images (one row of class scores each), averaged over the TTA views. */
export async function predictBatch(predictor: Predictor, pixels: Float32Array, batch: number, tta: TtaMode = 'none'): Promise<Float32Array> {
  const [h, w, c] = predictor.meta.inputShape;
  const shape = [batch, h, w, c] as const;
  const classes = predictor.meta.classNames.length;
  const views: Array<() => Promise<Float32Array>> = [async () => pixels];
  if (tta !== 'none') views.push(async () => flipHorizontal(pixels, shape));
  if (tta === 'flip+crop') views.push(() => centreZoom(pixels, shape));
  let sum: Float32Array | null = null;
  for (const view of views) {
    const scores = classScores(await predictor.predict(await view(), batch), batch, classes);
    if (!sum) sum = Float32Array.from(scores);
    else for (let i = 0; i < sum.length; i++) sum[i] += scores[i];
  }
  if (views.length > 1) for (let i = 0; i < sum!.length; i++) sum![i] /= views.length;
  return sum!;
}
