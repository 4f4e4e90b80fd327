/**
 * Bytes to model input in one pass. Every preprocessing mode is an affine map of a pixel (scale, shift and, for
 * caffe, a channel swap), so instead of copying to floats and then running `preprocessPixels` element by element,
 * graft reads that affine map off `preprocessPixels` itself (by applying it to a black and three primary pixels)
 * and applies it while converting. `preprocessPixels` stays the single definition of each mode.
 */
import { PreprocessMode, preprocessPixels } from './preprocess';
import { ColourPlan, applyColour, colourTransform } from './colour';

/** out[j] = sum_k matrix[j][k] * in[k] + offset[j], per pixel. */
interface Affine {
  /** channels x channels weights. */
  matrix: number[][];
  /** Per-output-channel shift. */
  offset: number[];
}

const affines = new Map<string, Affine | null>();

/** The affine form of a mode for 1 or 3 channels, or null if the mode is not affine (then the slow path is used). */
function affineOf(mode: PreprocessMode, channels: number): Affine | null {
  const key = `${mode}/${channels}`;
  if (affines.has(key)) return affines.get(key)!;
  const probe = (pixel: number[]) => Array.from(preprocessPixels(Float32Array.from(pixel), channels, mode));
  const offset = probe(new Array(channels).fill(0));
  const columns = Array.from({ length: channels }, (_, k) => probe(Array.from({ length: channels }, (_, i) => (i === k ? 255 : 0))));
  const matrix = offset.map((o, j) => columns.map((col) => (col[j] - o) / 255));
  // Check the map on an arbitrary pixel, so a future non-affine mode falls back instead of going wrong.
  const test = [37, 201, 90].slice(0, channels);
  const expected = probe(test);
  const ok = expected.every((e, j) => Math.abs(matrix[j].reduce((s, m, k) => s + m * test[k], offset[j]) - e) < 1e-4);
  const affine = ok ? { matrix, offset } : null;
  affines.set(key, affine);
  return affine;
}

/**
 * Writes bytes (HWC, `channels` 1 or 3) into `out` as preprocessed floats, exactly as `preprocessPixels` would,
 * applying a colour plan on the way: `applyColour` then preprocessing in one pass instead of two, except that colour
 * results are not rounded to whole levels (within half a level of `applyColour`).
 */
export function bytesToInput(pixels: Uint8Array, channels: number, mode: PreprocessMode, out: Float32Array, colour?: ColourPlan): void {
  const affine = affineOf(mode, channels);
  const transform = colour ? colourTransform(pixels, channels, colour) : null;
  const n = pixels.length;
  if (!affine || (transform && channels !== 3)) {
    if (transform) applyColour(pixels, channels, colour!);
    for (let i = 0; i < n; i++) out[i] = pixels[i];
    preprocessPixels(out.subarray(0, n), channels, mode);
    return;
  }
  const { matrix: m, offset: o } = affine;
  if (channels === 1) {
    const [s, t] = [m[0][0], o[0]];
    for (let i = 0; i < n; i++) out[i] = pixels[i] * s + t;
    return;
  }
  const [[a0, a1, a2], [b0, b1, b2], [c0, c1, c2]] = m;
  const [o0, o1, o2] = o;
  if (!transform) {
    for (let i = 0; i < n; i += 3) {
      const r = pixels[i];
      const g = pixels[i + 1];
      const b = pixels[i + 2];
      out[i] = a0 * r + a1 * g + a2 * b + o0;
      out[i + 1] = b0 * r + b1 * g + b2 * b + o1;
      out[i + 2] = c0 * r + c1 * g + c2 * b + o2;
    }
    return;
  }
  const { table } = transform;
  const [[p0, p1, p2], [q0, q1, q2], [s0, s1, s2]] = transform.matrix;
  for (let i = 0; i < n; i += 3) {
    const x = table[pixels[i]];
    const y = table[pixels[i + 1]];
    const z = table[pixels[i + 2]];
    // Clamped like bytes but not rounded: rounding costs a fifth of this loop and only moves values by half a level.
    let r = p0 * x + p1 * y + p2 * z;
    let g = q0 * x + q1 * y + q2 * z;
    let b = s0 * x + s1 * y + s2 * z;
    r = r < 0 ? 0 : r > 255 ? 255 : r;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    b = b < 0 ? 0 : b > 255 ? 255 : b;
    out[i] = a0 * r + a1 * g + a2 * b + o0;
    out[i + 1] = b0 * r + b1 * g + b2 * b + o1;
    out[i + 2] = c0 * r + c1 * g + c2 * b + o2;
  }
}
