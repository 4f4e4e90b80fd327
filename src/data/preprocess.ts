/** The pixel math of each preprocessing mode (the list of modes is part of the graft.json format, in io/). */
import type * as Tf from '@tensorflow/tfjs';
import { oneOf } from '../errors';
import { PREPROCESS_MODES, PreprocessMode } from '../io/graft-json';

export { PREPROCESS_MODES } from '../io/graft-json';
export type { PreprocessMode } from '../io/graft-json';

const CAFFE_BGR_MEAN = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

/** Validates a preprocessing mode name. */
export function preprocessMode(value: unknown): PreprocessMode {
  return oneOf('preprocessing', value, PREPROCESS_MODES);
}

/**
 * Applies a mode in place to interleaved HWC pixels in 0..255 (the layout sharp decodes to), for `channels` 1 or 3.
 * Single-channel images use the channel means averaged, as a grey image is the same value in every channel.
 */
export function preprocessPixels(pixels: Float32Array, channels: number, mode: PreprocessMode): Float32Array {
  if (mode === 'none') return pixels;
  if (mode === 'unit' || mode === 'tf') {
    const [scale, shift] = mode === 'unit' ? [1 / 255, 0] : [1 / 127.5, -1];
    for (let i = 0; i < pixels.length; i++) pixels[i] = pixels[i] * scale + shift;
    return pixels;
  }
  if (channels === 3) {
    if (mode === 'caffe') {
      for (let i = 0; i < pixels.length; i += 3) {
        const r = pixels[i];
        pixels[i] = pixels[i + 2] - CAFFE_BGR_MEAN[0];
        pixels[i + 1] = pixels[i + 1] - CAFFE_BGR_MEAN[1];
        pixels[i + 2] = r - CAFFE_BGR_MEAN[2];
      }
    } else {
      for (let i = 0; i < pixels.length; i++) {
        const c = i % 3;
        pixels[i] = (pixels[i] / 255 - TORCH_MEAN[c]) / TORCH_STD[c];
      }
    }
    return pixels;
  }
  const mean = mode === 'caffe' ? avg(CAFFE_BGR_MEAN) : avg(TORCH_MEAN);
  for (let i = 0; i < pixels.length; i++) {
    pixels[i] = mode === 'caffe' ? pixels[i] - mean : (pixels[i] / 255 - mean) / avg(TORCH_STD);
  }
  return pixels;
}

function avg(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Tensor form of `preprocessPixels` for an NHWC batch in 0..255; returns a new tensor. */
export function preprocessTensor(x: Tf.Tensor4D, mode: PreprocessMode): Tf.Tensor4D {
  // Required here, not at the top: reading graft.json (which names the mode) must not load tfjs.
  const tf = require('@tensorflow/tfjs') as typeof Tf;
  return tf.tidy(() => {
    const channels = x.shape[3];
    const x32 = x.toFloat();
    switch (mode) {
      case 'none':
        return x32.clone();
      case 'unit':
        return x32.div(255);
      case 'tf':
        return x32.div(127.5).sub(1);
      case 'caffe':
        return channels === 3 ? x32.reverse(-1).sub(tf.tensor1d(CAFFE_BGR_MEAN)) : x32.sub(avg(CAFFE_BGR_MEAN));
      case 'torch':
        return channels === 3
          ? x32.div(255).sub(tf.tensor1d(TORCH_MEAN)).div(tf.tensor1d(TORCH_STD))
          : x32.div(255).sub(avg(TORCH_MEAN)).div(avg(TORCH_STD));
    }
  }) as Tf.Tensor4D;
}
