/**
 * Colour jitter and grey conversion on rendered 8-bit pixels. These run in JavaScript on the small, already
 * resized output rather than as sharp operations: one pass here costs a fraction of libvips' recomb/modulate (which
 * convert every pixel to float or LCh), and it lets contrast blend towards the image's true mean, as torchvision does.
 *
 * Order and maths follow torchvision's ColorJitter with a fixed order (brightness, contrast, saturation, hue),
 * clamping to 0..255 after each. Hue is a rotation of the chroma plane in YIQ space (a linear approximation of
 * torchvision's HSV shift, the same one CSS `hue-rotate` uses), so saturation, hue and grey fold into one matrix.
 */

/** The colour part of a render plan. */
export interface ColourPlan {
  /** Brightness factor (1 = unchanged). */
  brightness?: number;
  /** Contrast factor towards the image's mean grey (1 = unchanged). */
  contrast?: number;
  /** Saturation factor (1 = unchanged, 0 = grey). */
  saturation?: number;
  /** Hue rotation in degrees. */
  hue?: number;
  /** Convert to grey (3 equal channels). */
  grayscale?: boolean;
}

/** ITU-R 601 luma weights (what torchvision's rgb_to_grayscale uses). */
export const LUMA: readonly [number, number, number] = [0.299, 0.587, 0.114];

type Mat3 = number[][];

function mul(a: Mat3, b: Mat3): Mat3 {
  return a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
}

const IDENTITY: Mat3 = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];
const GREY: Mat3 = [LUMA.slice(), LUMA.slice(), LUMA.slice()];

/** The 3x3 RGB matrix for saturation `s`, hue rotation `degrees` and optional grey conversion, in that order. */
export function chromaMatrix(s: number, degrees: number, grey: boolean): Mat3 {
  // Saturation blends each pixel with its grey value.
  let m: Mat3 = IDENTITY.map((row, i) => row.map((v, j) => s * v + (1 - s) * GREY[i][j]));
  if (degrees) {
    const t = (degrees * Math.PI) / 180;
    const c = Math.cos(t);
    const n = Math.sin(t);
    // Rotation about the grey axis, in the form CSS Filter Effects specifies for hue-rotate.
    const hue: Mat3 = [
      [0.213 + c * 0.787 - n * 0.213, 0.715 - c * 0.715 - n * 0.715, 0.072 - c * 0.072 + n * 0.928],
      [0.213 - c * 0.213 + n * 0.143, 0.715 + c * 0.285 + n * 0.14, 0.072 - c * 0.072 - n * 0.283],
      [0.213 - c * 0.213 - n * 0.787, 0.715 - c * 0.715 + n * 0.715, 0.072 + c * 0.928 + n * 0.072],
    ];
    m = mul(hue, m);
  }
  return grey ? mul(GREY, m) : m;
}

/** True when the plan changes colours at all. */
export function changesColour(plan: ColourPlan): boolean {
  return (plan.brightness ?? 1) !== 1 || (plan.contrast ?? 1) !== 1 || (plan.saturation ?? 1) !== 1 || (plan.hue ?? 0) !== 0 || !!plan.grayscale;
}

/** A colour plan resolved for one image: a byte table (brightness, contrast) then a 3x3 matrix (saturation, hue, grey). */
export interface ColourTransform {
  /** New value of each byte after brightness and contrast (unrounded). */
  table: Float64Array;
  /** Chroma matrix for 3-channel images (identity when unused). */
  matrix: number[][];
}

/** Resolves a plan against an image (contrast needs the image's mean grey), or null when colours do not change. */
export function colourTransform(pixels: Uint8Array, channels: number, plan: ColourPlan): ColourTransform | null {
  if (!changesColour(plan)) return null;
  const n = pixels.length;
  const b = plan.brightness ?? 1;
  const c = plan.contrast ?? 1;
  // Contrast blends with the mean grey of the brightened (and clamped) image. Per-channel byte histograms give that
  // mean exactly for any brightness, with one counting pass.
  let mean = 0;
  if (c !== 1) {
    const hist = Array.from({ length: channels }, () => new Int32Array(256));
    if (channels === 3) {
      const [h0, h1, h2] = hist;
      for (let i = 0; i < n; i += 3) {
        h0[pixels[i]]++;
        h1[pixels[i + 1]]++;
        h2[pixels[i + 2]]++;
      }
    } else {
      for (let i = 0; i < n; i++) hist[0][pixels[i]]++;
    }
    const weights = channels === 3 ? LUMA : [1];
    for (let k = 0; k < channels; k++) {
      for (let x = 0; x < 256; x++) mean += weights[k] * hist[k][x] * Math.min(255, b * x);
    }
    mean /= n / channels;
  }
  // Brightness then contrast, each clamped, is a function of one byte: a 256-entry table.
  const table = new Float64Array(256);
  for (let x = 0; x < 256; x++) table[x] = clampByte(c * Math.min(255, b * x) + (1 - c) * mean);
  return { table, matrix: chromaMatrix(plan.saturation ?? 1, plan.hue ?? 0, !!plan.grayscale) };
}

/** Applies a colour plan in place to interleaved 8-bit pixels with 1 or 3 channels. */
export function applyColour(pixels: Uint8Array, channels: number, plan: ColourPlan): void {
  const t = colourTransform(pixels, channels, plan);
  if (!t) return;
  const { table } = t;
  const n = pixels.length;
  if (channels !== 3) {
    for (let i = 0; i < n; i++) pixels[i] = roundByte(table[pixels[i]]);
    return;
  }
  const [[a0, a1, a2], [b0, b1, b2], [c0, c1, c2]] = t.matrix;
  for (let i = 0; i < n; i += 3) {
    const r = table[pixels[i]];
    const g = table[pixels[i + 1]];
    const bl = table[pixels[i + 2]];
    pixels[i] = roundByte(a0 * r + a1 * g + a2 * bl);
    pixels[i + 1] = roundByte(b0 * r + b1 * g + b2 * bl);
    pixels[i + 2] = roundByte(c0 * r + c1 * g + c2 * bl);
  }
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Rounds and clamps to a byte (faster than a Uint8ClampedArray store, and the same result but for exact halves). */
export function roundByte(v: number): number {
  const r = (v + 0.5) | 0;
  return r < 0 ? 0 : r > 255 ? 255 : r;
}
