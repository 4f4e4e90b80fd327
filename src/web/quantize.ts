/**
 * Weight quantization in tfjs's own format. tfjs 4.22 in JavaScript only reads quantized weights (tf.io's
 * decodeWeights dequantizes entries whose manifest has a `quantization` field); the writer is the Python
 * tensorflowjs converter (`quantization.py`). This is that writer's algorithm, so a folder graft quantizes is what
 * `tensorflowjs_converter --quantize_uint8` / `--quantize_float16` would write, and stock `tf.loadLayersModel`
 * loads it with no graft code.
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError, oneOf } from '../errors';

/** Storage types `--quantize` accepts. */
export const QUANTIZE_DTYPES = ['uint8', 'float16'] as const;
/** `uint8`: affine per weight tensor (min and scale, zero exactly representable); `float16`: half floats. */
export type QuantizeDtype = (typeof QUANTIZE_DTYPES)[number];

/** Validates a `--quantize` value. */
export function quantizeDtype(value: unknown): QuantizeDtype {
  return oneOf('--quantize', value, QUANTIZE_DTYPES);
}

/** Quantized weights: the new manifest entries and their bytes, in the order of the input. */
export interface QuantizedWeights {
  /** Manifest entries; float32 ones carry `quantization`, other dtypes are unchanged. */
  specs: tf.io.WeightsManifestEntry[];
  /** The weight bytes, concatenated in `specs` order. */
  data: Uint8Array;
}

/** Quantizes every float32 weight of a manifest; int32 and other weights are copied as they are (as the converter does). */
export function quantizeWeights(specs: readonly tf.io.WeightsManifestEntry[], weightData: ArrayBuffer, dtype: QuantizeDtype): QuantizedWeights {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization) throw new GraftError(`weight ${spec.name} is already quantized (${spec.quantization.dtype}); quantize the original model folder instead.`);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = size * (spec.dtype === 'bool' ? 1 : 4);
    const raw = new Uint8Array(weightData, offset, bytes);
    offset += bytes;
    if (spec.dtype !== 'float32') {
      parts.push(raw.slice());
      out.push({ ...spec });
      continue;
    }
    const values = new Float32Array(raw.slice().buffer);
    if (dtype === 'float16') {
      const half = new Uint16Array(size);
      for (let i = 0; i < size; i++) half[i] = float16Bits(values[i]);
      parts.push(new Uint8Array(half.buffer));
      out.push({ ...spec, quantization: { dtype: 'float16' } });
    } else {
      const { data, min, scale } = quantizeUint8(values);
      parts.push(data);
      out.push({ ...spec, quantization: { dtype: 'uint8', min, scale } });
    }
  }
  if (offset !== weightData.byteLength) throw new Error(`the manifest describes ${offset} bytes of weights, the data holds ${weightData.byteLength}`);
  const data = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.byteLength;
  }
  return { specs: out, data };
}

/**
 * Affine uint8 quantization of one tensor (the converter's `quantize_weights` with its zero-point nudge, so that
 * 0 stays exactly 0 after dequantization whenever the range contains it).
 */
export function quantizeUint8(values: Float32Array): { data: Uint8Array; min: number; scale: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const data = new Uint8Array(values.length);
  if (values.length === 0 || lo === hi) return { data, min: values.length ? lo : 0, scale: 1 };
  const scale = (hi - lo) / 255;
  const zeroPoint = -lo / scale;
  const nudged = zeroPoint < 0 ? 0 : zeroPoint > 255 ? 255 : roundHalfEven(zeroPoint);
  const min = -nudged * scale;
  const max = (255 - nudged) * scale;
  for (let i = 0; i < values.length; i++) {
    const v = Math.min(max, Math.max(min, values[i]));
    data[i] = roundHalfEven((v - min) / scale);
  }
  return { data, min, scale };
}

/** numpy's rounding (half to even), which the converter uses. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits of a float32, rounded to nearest even (numpy's astype(float16)). */
export function float16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal half: shift the mantissa (with its implicit 1) into place, rounding half to even.
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && (half & 1)) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? half + 1 : half);
}
