/**
 * Decoding one image and turning it into model-sized pixels with sharp. Every image graft reads goes through
 * `renderImage`: the augmentation parameters arrive already drawn (a `RenderPlan`), so rendering is a pure function
 * of the input bytes and the plan, and the geometric work (orient, crop, resize, flip, rotate) is one sharp pipeline.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { Sharp } from 'sharp';

// Set once, where graft loads sharp: libvips' operation cache only pays when the same image is processed again with
// the same operations; graft sees every image once, and the cache's bookkeeping costs about 0.2 ms per image. It only
// ever affects speed, never output.
sharp.cache(false);
import { GraftError } from '../errors';
import { ColourPlan, LUMA, applyColour } from './colour';
import { idxImage, parseIdxSource } from './idx';
import { jpegDisplaySize } from './jpeg-header';
import { decodeFailureReason } from './decode-errors';

/** Raw interleaved 8-bit pixels (HWC). */
export interface RawImage {
  /** Pixel bytes, row-major, channels interleaved. */
  data: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Channels per pixel. */
  channels: 1 | 2 | 3 | 4;
}

/** What `renderImage` accepts: an encoded file's bytes or raw pixels (IDX images, cached decodes). */
export type ImageInput = Buffer | RawImage;

/** How the image is fitted to the output size (sharp's fit modes). */
export const FIT_MODES = ['fill', 'cover', 'contain'] as const;
/** `fill` squashes (Keras' default), `cover` crops the overflow, `contain` letterboxes with the fill colour. */
export type FitMode = (typeof FIT_MODES)[number];

/** A crop box in fractions of the oriented image (so a plan can be drawn before the image size is known). */
export type CropPlan =
  | {
      /** torchvision RandomResizedCrop: candidate draws tried in order, the first that fits the image wins. */
      kind: 'random';
      /** Candidates as [area fraction, aspect ratio (w/h), x position 0..1, y position 0..1]. */
      candidates: Array<[number, number, number, number]>;
      /** Aspect range used for the fallback centre crop when no candidate fits. */
      ratio: [number, number];
    }
  | {
      /** A centred crop keeping `fraction` of each side (tf.image.central_crop). */
      kind: 'center';
      /** Fraction of width and height kept, in (0, 1]. */
      fraction: number;
    };

/** Every parameter of one rendering, already drawn; equal plans on equal inputs give byte-identical pixels. */
export interface RenderPlan extends ColourPlan {
  /** Crop before the resize, or none. */
  crop?: CropPlan;
  /** How the (cropped) image is fitted to the output size. */
  fit: FitMode;
  /** Mirror left-right. */
  flipHorizontal?: boolean;
  /** Mirror top-bottom. */
  flipVertical?: boolean;
  /** Rotation in degrees (clockwise), applied after the resize; corners get `fill`. */
  rotate?: number;
  /** Fill colour for rotation corners and `contain` borders, as [r, g, b] 0..255. */
  fill?: [number, number, number];
  /** Gaussian blur sigma in pixels of the output (0 or absent = none). */
  blur?: number;
  /**
   * Shift of the output as fractions of its [width, height], right and down (negative: left, up), rounded to whole
   * pixels as torchvision's RandomAffine does; uncovered pixels get `translateFill`.
   */
  translate?: [number, number];
  /** Colour of the pixels a shift uncovers, as [r, g, b] 0..255 (default black). */
  translateFill?: [number, number, number];
  /**
   * A rectangle of the output (after the shift) painted over with `fill`, as torchvision's RandomErasing: the first of
   * the candidates [area fraction, h/w ratio, x, y] that fits inside the image; none fits, nothing is erased.
   */
  erase?: { candidates: Array<[number, number, number, number]>; fill: [number, number, number] };
}

/** Output shape of a rendering, [height, width, channels] with channels 1 or 3. */
export type InputShape = [number, number, number];

/** The plan that only resizes: what evaluation and prediction use. */
export const PLAIN_PLAN: RenderPlan = Object.freeze({ fit: 'fill' }) as RenderPlan;

/** Background used to flatten transparency: white, as transparent areas in photos and icons are usually "paper". */
const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 };

/**
 * `fs.readFile` with a callback, as a promise: per small file it allocates half what `fs.promises.readFile` does (no
 * FileHandle, event emitter or promise chain per read), which for 28x28 PNGs is most of the image path's garbage.
 */
const readFileBytes = promisify(fs.readFile);

/** Reads a dataset source: a file path (encoded bytes) or an `idx:<file>#<index>` reference (raw pixels). */
export async function readSource(source: string): Promise<ImageInput> {
  const idx = parseIdxSource(source);
  if (idx) return idxImage(idx.file, idx.index);
  return readFileBytes(source);
}

function sharpOf(input: ImageInput): Sharp {
  // failOn 'warning' makes truncated JPEGs an error instead of a grey bottom half.
  if (Buffer.isBuffer(input)) return sharp(input, { failOn: 'warning' });
  return sharp(input.data, { raw: { width: input.width, height: input.height, channels: input.channels } });
}

/** Width and height after EXIF orientation. */
export async function orientedSize(input: ImageInput): Promise<{ width: number; height: number }> {
  if (!Buffer.isBuffer(input)) return { width: input.width, height: input.height };
  const fast = jpegDisplaySize(input);
  if (fast) return fast;
  const m = await sharp(input).metadata();
  if (m.autoOrient) return { width: m.autoOrient.width, height: m.autoOrient.height };
  if (!m.width || !m.height) throw new Error('image has no size');
  return { width: m.width, height: m.height };
}

/** Resolves a crop plan against the real image size (torchvision's RandomResizedCrop.get_params, pre-drawn). */
export function cropBox(crop: CropPlan, width: number, height: number): { left: number; top: number; width: number; height: number } {
  if (crop.kind === 'center') {
    const w = Math.max(1, Math.round(width * crop.fraction));
    const h = Math.max(1, Math.round(height * crop.fraction));
    return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
  }
  const area = width * height;
  for (const [scale, ratio, u, v] of crop.candidates) {
    const w = Math.round(Math.sqrt(area * scale * ratio));
    const h = Math.round(Math.sqrt((area * scale) / ratio));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return { left: Math.min(width - w, Math.floor(u * (width - w + 1))), top: Math.min(height - h, Math.floor(v * (height - h + 1))), width: w, height: h };
    }
  }
  // Fallback: the largest centred crop whose aspect is inside the ratio range.
  const aspect = width / height;
  let w = width;
  let h = height;
  if (aspect < crop.ratio[0]) h = Math.round(w / crop.ratio[0]);
  else if (aspect > crop.ratio[1]) w = Math.round(h * crop.ratio[1]);
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

function rotatedSide(w: number, h: number, degrees: number): { width: number; height: number } {
  const r = (degrees * Math.PI) / 180;
  const c = Math.abs(Math.cos(r));
  const s = Math.abs(Math.sin(r));
  return { width: Math.ceil(w * c + h * s), height: Math.ceil(w * s + h * c) };
}

/**
 * Renders one image with a drawn plan to raw 8-bit HWC pixels of `inputShape`: EXIF orientation applied,
 * transparency flattened onto white, grey/CMYK/16-bit converted to 8-bit sRGB (or to one grey channel when the
 * shape has 1 channel), then the plan's crop, fit, flips, rotation and blur in one sharp pipeline, and its colour
 * changes on the small output (see colour.ts).
 */
export async function renderImage(input: ImageInput, plan: RenderPlan, inputShape: InputShape): Promise<Buffer> {
  const pixels = await renderGeometry(input, plan, inputShape);
  applyColour(pixels, inputShape[2], plan);
  return pixels;
}

/** The sharp part of `renderImage`: everything but the colour changes (batches fuse those with normalisation). */
export async function renderGeometry(input: ImageInput, plan: RenderPlan, inputShape: InputShape): Promise<Buffer> {
  const [height, width, channels] = inputShape;
  if (!Buffer.isBuffer(input) && isPixelExact(input, plan, inputShape)) return onOutput(flipRaw(input, plan), plan, inputShape);
  const fill = plan.fill ?? [0, 0, 0];
  const background = { r: fill[0], g: fill[1], b: fill[2], alpha: 1 };
  let img = sharpOf(input).autoOrient();
  if (plan.crop) {
    const size = await orientedSize(input);
    img = img.extract(cropBox(plan.crop, size.width, size.height));
  }
  img = img.flatten({ background: FLATTEN_BACKGROUND }).resize(width, height, { fit: plan.fit, background, kernel: 'linear' });
  if (plan.flipHorizontal) img = img.flop();
  if (plan.flipVertical) img = img.flip();
  const angle = plan.rotate ? ((plan.rotate % 360) + 360) % 360 : 0;
  if (angle !== 0) {
    // sharp grows the canvas to hold the rotated image; cut the centre back out (after the rotation, same pipeline).
    const grown = rotatedSide(width, height, angle);
    img = img.rotate(angle, { background }).extract({
      left: Math.floor((grown.width - width) / 2),
      top: Math.floor((grown.height - height) / 2),
      width,
      height,
    });
  }
  img = finish(img, plan, channels);
  const out = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (out.info.width !== width || out.info.height !== height || out.info.channels !== channels) {
    throw new Error(`rendered ${out.info.width}x${out.info.height}x${out.info.channels}, expected ${width}x${height}x${channels}`);
  }
  return onOutput(out.data, plan, inputShape);
}

/** Applies the plan's `translate` and then its `erase`, if any, to rendered pixels. */
function onOutput(pixels: Buffer, plan: RenderPlan, inputShape: InputShape): Buffer {
  const [height, width] = inputShape;
  const shift: [number, number] = plan.translate ? [Math.round(plan.translate[0] * width), Math.round(plan.translate[1] * height)] : [0, 0];
  const out = shift[0] !== 0 || shift[1] !== 0 ? shiftPixels(pixels, inputShape, shift, plan.translateFill ?? [0, 0, 0]) : pixels;
  const box = plan.erase ? eraseBox(plan.erase.candidates, width, height) : null;
  if (box) fillBox(out, inputShape, box, plan.erase!.fill);
  return out;
}

/**
 * The rectangle `randomErasing` paints, as torchvision's RandomErasing.get_params picks it: the first candidate whose
 * h = round(sqrt(area * ratio)) and w = round(sqrt(area / ratio)) are smaller than the image, at a uniform position;
 * null when none is.
 */
export function eraseBox(candidates: ReadonlyArray<readonly [number, number, number, number]>, width: number, height: number): { left: number; top: number; width: number; height: number } | null {
  for (const [scale, ratio, u, v] of candidates) {
    const area = width * height * scale;
    const h = Math.round(Math.sqrt(area * ratio));
    const w = Math.round(Math.sqrt(area / ratio));
    if (h < height && w < width && h > 0 && w > 0) {
      return { left: Math.min(width - w, Math.floor(u * (width - w + 1))), top: Math.min(height - h, Math.floor(v * (height - h + 1))), width: w, height: h };
    }
  }
  return null;
}

/** The grey level of a fill colour, for one-channel outputs. */
function lumaOf(fill: [number, number, number]): number {
  return Math.round(LUMA[0] * fill[0] + LUMA[1] * fill[1] + LUMA[2] * fill[2]);
}

/** Paints a rectangle of raw HWC pixels with `fill` (its luma on one channel), in place. */
function fillBox(pixels: Buffer, [, width, channels]: InputShape, box: { left: number; top: number; width: number; height: number }, fill: [number, number, number]): void {
  const grey = lumaOf(fill);
  for (let y = box.top; y < box.top + box.height; y++) {
    for (let x = box.left; x < box.left + box.width; x++) {
      const i = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) pixels[i + c] = channels === 1 ? grey : fill[c];
    }
  }
}

/**
 * Whether sharp would only copy (and maybe mirror) these raw pixels: same size and channels, no crop, rotation or
 * blur. IDX images at the model's size (Fashion-MNIST at 28x28x1) take this path, which skips sharp's per-image
 * overhead (most of the time of a small model's training step). Grey input is exact: sharp's grey -> sRGB -> luma
 * round trip gives back the same bytes, since the luma weights sum to 1.
 */
function isPixelExact(input: RawImage, plan: RenderPlan, [height, width, channels]: InputShape): boolean {
  return input.width === width && input.height === height && input.channels === channels && (channels === 1 || channels === 3) &&
    !plan.crop && !plan.rotate && !(plan.blur && plan.blur >= 0.3);
}

/** A copy of raw pixels, mirrored as the plan says. */
function flipRaw(input: RawImage, plan: RenderPlan): Buffer {
  const { width, height, channels } = input;
  const src = Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength);
  if (!plan.flipHorizontal && !plan.flipVertical) return Buffer.from(src);
  const out = Buffer.alloc(src.length);
  const row = width * channels;
  for (let y = 0; y < height; y++) {
    const sy = plan.flipVertical ? height - 1 - y : y;
    if (!plan.flipHorizontal) {
      src.copy(out, y * row, sy * row, (sy + 1) * row);
      continue;
    }
    for (let x = 0; x < width; x++) {
      const d = y * row + x * channels, s0 = sy * row + (width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = src[s0 + c];
    }
  }
  return out;
}

/**
 * Shifts raw HWC pixels by whole pixels (pad-and-crop): the content moves `dx` right and `dy` down, and the
 * uncovered border gets `fill` (its luma on one channel). Done on the small output rather than in sharp, whose
 * single post-resize extract is already taken by the rotation.
 */
export function shiftPixels(src: Buffer, [height, width, channels]: InputShape, [dx, dy]: [number, number], fill: [number, number, number]): Buffer {
  const out = Buffer.alloc(src.length);
  const grey = lumaOf(fill);
  for (let i = 0; i < out.length; i += channels) {
    for (let c = 0; c < channels; c++) out[i + c] = channels === 1 ? grey : fill[c];
  }
  const row = width * channels;
  const x0 = Math.max(0, dx), x1 = Math.min(width, width + dx);
  if (x1 <= x0) return out;
  for (let y = Math.max(0, dy); y < Math.min(height, height + dy); y++) {
    src.copy(out, y * row + x0 * channels, (y - dy) * row + (x0 - dx) * channels, (y - dy) * row + (x1 - dx) * channels);
  }
  return out;
}

/** Blur and channel conversion: the pixel work left to sharp after the geometry (colour is done on the output). */
function finish(img: Sharp, plan: RenderPlan, channels: number): Sharp {
  if (plan.blur && plan.blur >= 0.3) img = img.blur(plan.blur);
  return toChannels(img, channels);
}

/**
 * 8-bit sRGB, or one grey channel by ITU-R 601 luma on the encoded values (what PIL, torchvision and
 * tf.image.rgb_to_grayscale compute; libvips' own b-w conversion weighs linear light and comes out brighter).
 */
function toChannels(img: Sharp, channels: number): Sharp {
  img = img.toColourspace('srgb');
  return channels === 1 ? img.recomb([[...LUMA], [...LUMA], [...LUMA]]).extractChannel(0) : img;
}

/**
 * Decodes an image once for the in-memory cache: oriented, flattened, converted to `channels`, and shrunk (aspect
 * kept, never enlarged) so its shorter side is `side`. Rendering a plan on the result matches rendering on the file.
 */
export async function decodeShrunk(input: ImageInput, options: { side: number; channels: number }): Promise<RawImage> {
  const img = sharpOf(input)
    .autoOrient()
    .flatten({ background: FLATTEN_BACKGROUND })
    .resize(options.side, options.side, { fit: 'outside', withoutEnlargement: true });
  const { data, info } = await toChannels(img, options.channels)
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as RawImage['channels'] };
}

/** Options of `loadImage`. */
export interface LoadImageOptions {
  /** Output [height, width, channels]; channels 1 gives grey, 3 gives RGB. */
  inputShape: InputShape;
  /** How the image is fitted to the size; `fill` (squash, Keras' default) unless given. */
  fit?: FitMode;
}

/** Decodes and resizes one image file (or `idx:` reference) to raw HWC float pixels in 0..255 (not preprocessed). */
export async function loadImage(source: string, options: LoadImageOptions): Promise<Float32Array> {
  const input = await readSource(source).catch((err) => {
    throw new GraftError(`cannot read image ${source}: ${decodeFailureReason(err, source)}; check the path.`, { cause: err });
  });
  const pixels = await renderImage(input, { ...PLAIN_PLAN, fit: options.fit ?? 'fill' }, options.inputShape).catch((err) => {
    throw new GraftError(`cannot use image ${source}: ${decodeFailureReason(err, source)}; fix or remove the file.`, { cause: err });
  });
  return Float32Array.from(pixels);
}

/** The first line of an error message (sharp/libvips messages run over several lines). */
export function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0].trim();
}
