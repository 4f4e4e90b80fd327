/**
 * Augmentation pipelines: a list of steps, each with a probability, written as JSON or picked from a preset.
 * `drawPlan` draws every random parameter of one image from a seeded generator; `renderImage` then applies the
 * plan with sharp. Drawing first makes the output a pure function of (seed, image), whatever the thread timing.
 *
 * The steps fill in one `RenderPlan`, which sharp applies in a fixed order (crop, resize, flips, rotation, colour,
 * blur, grey; then, on the output pixels, the shift of `translate` and the rectangle of `randomErasing`), so the order
 * of the list only changes which random numbers go where, and each step may appear once.
 */
import * as fs from 'node:fs';
import { GraftError, finiteNumber, oneOf, rejectUnknownKeys } from '../errors';
import { Rng } from '../util/rng';
import { CropPlan, FIT_MODES, FitMode, RenderPlan } from './image';

/** Names of the augmentation steps. */
export const AUGMENT_OPS = [
  'randomResizedCrop',
  'centerCrop',
  'resize',
  'horizontalFlip',
  'verticalFlip',
  'rotate',
  'translate',
  'colorJitter',
  'blur',
  'grayscale',
  'randomErasing',
] as const;
/** One of `AUGMENT_OPS`. */
export type AugmentOp = (typeof AUGMENT_OPS)[number];

/** A pipeline step as written in JSON: `op`, an optional probability `p`, and the op's own fields. */
export interface AugmentStep {
  /** Which operation. */
  op: AugmentOp;
  /** Probability the step is applied to an image (default 1, flips 0.5, grayscale 0.1). */
  p?: number;
  /** randomResizedCrop: area fraction range (default [0.08, 1]); randomErasing: of the erased rectangle (default [0.02, 0.33]). */
  scale?: [number, number];
  /** randomResizedCrop: aspect ratio (w/h) range (default [3/4, 4/3]); randomErasing: h/w (default [0.3, 3.3]). */
  ratio?: [number, number];
  /** centerCrop: fraction of each side kept (default 0.875). */
  fraction?: number;
  /** resize: fit mode (default `fill`). */
  fit?: FitMode;
  /** rotate / resize / translate: colour of the uncovered area; randomErasing: of the erased one; a grey level or [r, g, b] (default 0). */
  fill?: number | [number, number, number];
  /** rotate: maximum angle, or an explicit [min, max] range, in degrees (default 15). */
  degrees?: number | [number, number];
  /** translate: largest shift as a fraction of each side, or [x, y] fractions (default 0.1; rounded to whole pixels). */
  max?: number | [number, number];
  /** colorJitter: brightness factor spread (0.4 draws from [0.6, 1.4]). */
  brightness?: number;
  /** colorJitter: contrast factor spread. */
  contrast?: number;
  /** colorJitter: saturation factor spread. */
  saturation?: number;
  /** colorJitter: hue shift spread as a fraction of a full turn, at most 0.5. */
  hue?: number;
  /** blur: sigma range in output pixels (default [0.1, 2]). */
  sigma?: [number, number];
}

/** A validated pipeline. */
export interface AugmentPipeline {
  /** Preset name, or `custom`. */
  name: string;
  /** The steps, in drawing order. */
  steps: AugmentStep[];
}

/** Named presets, mildest first. */
export const AUGMENT_PRESETS = {
  none: [],
  light: [
    { op: 'randomResizedCrop', scale: [0.8, 1], ratio: [3 / 4, 4 / 3] },
    { op: 'horizontalFlip', p: 0.5 },
  ],
  standard: [
    { op: 'randomResizedCrop', scale: [0.35, 1], ratio: [3 / 4, 4 / 3] },
    { op: 'horizontalFlip', p: 0.5 },
    { op: 'rotate', degrees: 10, p: 0.5 },
    { op: 'colorJitter', brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.02 },
  ],
  strong: [
    { op: 'randomResizedCrop', scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
    { op: 'horizontalFlip', p: 0.5 },
    { op: 'rotate', degrees: 20, p: 0.5 },
    { op: 'colorJitter', brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
    { op: 'grayscale', p: 0.1 },
    { op: 'blur', sigma: [0.1, 2], p: 0.2 },
  ],
} as const satisfies Record<string, readonly AugmentStep[]>;
/** A preset name. */
export type AugmentPreset = keyof typeof AUGMENT_PRESETS;
/** Preset names, mildest first. */
export const AUGMENT_PRESET_NAMES = Object.keys(AUGMENT_PRESETS) as AugmentPreset[];

/** Fields each op accepts besides `op` and `p`. */
const OP_FIELDS: Record<AugmentOp, string[]> = {
  randomResizedCrop: ['scale', 'ratio'],
  centerCrop: ['fraction'],
  resize: ['fit', 'fill'],
  horizontalFlip: [],
  verticalFlip: [],
  rotate: ['degrees', 'fill'],
  translate: ['max', 'fill'],
  colorJitter: ['brightness', 'contrast', 'saturation', 'hue'],
  blur: ['sigma'],
  grayscale: [],
  randomErasing: ['scale', 'ratio', 'fill'],
};
const DEFAULT_P: Partial<Record<AugmentOp, number>> = { horizontalFlip: 0.5, verticalFlip: 0.5, grayscale: 0.1, randomErasing: 0.5 };

/** What `augment` options accept: a pipeline, steps, a preset name, inline JSON, a JSON file path, or null. */
export type AugmentSpec = AugmentPipeline | readonly AugmentStep[] | string | null | undefined;

/**
 * Parses and validates a pipeline: a preset name, inline JSON (`[...]` or `{"steps": [...]}`), a JSON file path,
 * or steps given directly. Unknown ops or fields and out-of-range values are errors listing the valid ones.
 */
export function parseAugmentation(spec: AugmentSpec): AugmentPipeline {
  if (spec === null || spec === undefined) return { name: 'none', steps: [] };
  if (typeof spec === 'string') {
    const text = spec.trim();
    if ((AUGMENT_PRESET_NAMES as string[]).includes(text)) return { name: text, steps: validateSteps(AUGMENT_PRESETS[text as AugmentPreset]) };
    if (text.startsWith('[') || text.startsWith('{')) return { name: 'custom', steps: validateSteps(parseJson(text, 'inline --aug JSON')) };
    if (fs.existsSync(text) && fs.statSync(text).isFile()) {
      return { name: 'custom', steps: validateSteps(parseJson(fs.readFileSync(text, 'utf8'), text)) };
    }
    throw new GraftError(
      `augmentation ${JSON.stringify(spec)} is not a preset (${AUGMENT_PRESET_NAMES.join(', ')}), inline JSON or an existing JSON file; pick one of those.`,
    );
  }
  if (Array.isArray(spec)) return { name: 'custom', steps: validateSteps(spec) };
  const p = spec as AugmentPipeline;
  return { name: p.name ?? 'custom', steps: validateSteps(p.steps) };
}

function parseJson(text: string, source: string): unknown {
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) && 'steps' in parsed ? (parsed as { steps: unknown }).steps : parsed;
  } catch (err) {
    throw new GraftError(`${source} is not valid JSON (${(err as Error).message}); write a list of steps like [{"op":"horizontalFlip"}].`);
  }
}

function range(option: string, value: unknown, fallback: [number, number], bounds: { min?: number; max?: number }): [number, number] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length !== 2) throw new GraftError(`${option} must be a [min, max] pair; received ${JSON.stringify(value)}.`);
  const lo = finiteNumber(option, value[0], bounds);
  const hi = finiteNumber(option, value[1], bounds);
  if (lo > hi) throw new GraftError(`${option} must be [min, max] with min <= max; received ${JSON.stringify(value)}.`);
  return [lo, hi];
}

function colourFill(option: string, value: unknown): [number, number, number] {
  if (value === undefined) return [0, 0, 0];
  if (typeof value === 'number') {
    const v = finiteNumber(option, value, { min: 0, max: 255 });
    return [v, v, v];
  }
  if (!Array.isArray(value) || value.length !== 3) throw new GraftError(`${option} must be a grey level 0..255 or [r, g, b]; received ${JSON.stringify(value)}.`);
  return value.map((v) => finiteNumber(option, v, { min: 0, max: 255 })) as [number, number, number];
}

/** Validates steps and fills in their defaults, so a drawn plan never meets an undefined field. */
function validateSteps(raw: unknown): AugmentStep[] {
  if (!Array.isArray(raw)) throw new GraftError(`an augmentation pipeline must be a list of steps; received ${JSON.stringify(raw)?.slice(0, 80)}.`);
  const seen = new Set<string>();
  return raw.map((s, i) => {
    if (!s || typeof s !== 'object' || Array.isArray(s)) throw new GraftError(`augmentation step ${i + 1} must be an object like {"op": "horizontalFlip"}; received ${JSON.stringify(s)}.`);
    const op = oneOf(`augmentation step ${i + 1} op`, (s as AugmentStep).op, AUGMENT_OPS);
    if (seen.has(op)) throw new GraftError(`augmentation step ${op} appears twice; each step may appear once (they are applied in a fixed order).`);
    seen.add(op);
    rejectUnknownKeys(`augmentation step ${op}`, s, ['op', 'p', ...OP_FIELDS[op]]);
    const step = s as AugmentStep;
    const out: AugmentStep = { op, p: step.p === undefined ? (DEFAULT_P[op] ?? 1) : finiteNumber(`${op}.p`, step.p, { min: 0, max: 1 }) };
    switch (op) {
      case 'randomResizedCrop':
        out.scale = range(`${op}.scale`, step.scale, [0.08, 1], { min: 1e-6, max: 1 });
        out.ratio = range(`${op}.ratio`, step.ratio, [3 / 4, 4 / 3], { min: 1e-3, max: 1e3 });
        break;
      case 'centerCrop':
        out.fraction = step.fraction === undefined ? 0.875 : finiteNumber(`${op}.fraction`, step.fraction, { min: 1e-3, max: 1 });
        break;
      case 'resize':
        out.fit = step.fit === undefined ? 'fill' : oneOf(`${op}.fit`, step.fit, FIT_MODES);
        out.fill = colourFill(`${op}.fill`, step.fill);
        break;
      case 'rotate': {
        const d = step.degrees ?? 15;
        out.degrees = typeof d === 'number' ? [-Math.abs(finiteNumber(`${op}.degrees`, d)), Math.abs(d)] : range(`${op}.degrees`, d, [-15, 15], { min: -360, max: 360 });
        out.fill = colourFill(`${op}.fill`, step.fill);
        break;
      }
      case 'translate': {
        const m = step.max ?? 0.1;
        const pair = typeof m === 'number' ? [m, m] : m;
        if (!Array.isArray(pair) || pair.length !== 2) throw new GraftError(`translate.max must be a fraction or an [x, y] pair of fractions; received ${JSON.stringify(m)}.`);
        out.max = [finiteNumber('translate.max', pair[0], { min: 0, max: 1 }), finiteNumber('translate.max', pair[1], { min: 0, max: 1 })];
        out.fill = colourFill(`${op}.fill`, step.fill);
        break;
      }
      case 'colorJitter':
        for (const k of ['brightness', 'contrast', 'saturation'] as const) out[k] = finiteNumber(`${op}.${k}`, step[k] ?? 0, { min: 0, max: 10 });
        out.hue = finiteNumber(`${op}.hue`, step.hue ?? 0, { min: 0, max: 0.5 });
        break;
      case 'blur':
        out.sigma = range(`${op}.sigma`, step.sigma, [0.1, 2], { min: 0, max: 100 });
        break;
      case 'randomErasing':
        // torchvision.transforms.RandomErasing's defaults (p 0.5, value 0).
        out.scale = range(`${op}.scale`, step.scale, [0.02, 0.33], { min: 0, max: 1 });
        out.ratio = range(`${op}.ratio`, step.ratio, [0.3, 3.3], { min: 1e-3, max: 1e3 });
        out.fill = colourFill(`${op}.fill`, step.fill);
        break;
    }
    return out;
  });
}

/** Attempts torchvision makes before falling back to a centre crop (or, erasing, to no rectangle). */
const CROP_ATTEMPTS = 10;

/** `CROP_ATTEMPTS` draws of [area fraction, aspect ratio, x position, y position], resolved at the output size. */
function drawCandidates(rng: Rng, [s0, s1]: [number, number], [r0, r1]: [number, number]): Array<[number, number, number, number]> {
  const candidates: Array<[number, number, number, number]> = [];
  for (let i = 0; i < CROP_ATTEMPTS; i++) {
    candidates.push([rng.uniform(s0, s1), Math.exp(rng.uniform(Math.log(r0), Math.log(r1))), rng.next(), rng.next()]);
  }
  return candidates;
}

/**
 * Draws the parameters of one image. Every step draws the same count of numbers whether or not it fires, so the
 * stream stays aligned across images and a change to one step's probability does not reshuffle the others.
 */
export function drawPlan(pipeline: AugmentPipeline, rng: Rng): RenderPlan {
  const plan: RenderPlan = { fit: 'fill' };
  for (const step of pipeline.steps) {
    const fires = rng.next() < (step.p ?? 1);
    switch (step.op) {
      case 'randomResizedCrop': {
        const candidates = drawCandidates(rng, step.scale!, step.ratio!);
        if (fires) plan.crop = { kind: 'random', candidates, ratio: step.ratio! } satisfies CropPlan;
        break;
      }
      case 'centerCrop':
        if (fires) plan.crop = { kind: 'center', fraction: step.fraction! };
        break;
      case 'resize':
        if (fires) {
          plan.fit = step.fit!;
          plan.fill = step.fill as [number, number, number];
        }
        break;
      case 'horizontalFlip':
        plan.flipHorizontal = fires;
        break;
      case 'verticalFlip':
        plan.flipVertical = fires;
        break;
      case 'rotate': {
        const [lo, hi] = step.degrees as [number, number];
        const angle = rng.uniform(lo, hi);
        if (fires) {
          plan.rotate = angle;
          plan.fill = step.fill as [number, number, number];
        }
        break;
      }
      case 'translate': {
        const [mx, my] = step.max as [number, number];
        const tx = rng.uniform(-mx, mx);
        const ty = rng.uniform(-my, my);
        if (fires) {
          plan.translate = [tx, ty];
          plan.translateFill = step.fill as [number, number, number];
        }
        break;
      }
      case 'colorJitter': {
        const factor = (spread: number) => rng.uniform(Math.max(0, 1 - spread), 1 + spread);
        const b = factor(step.brightness!);
        const c = factor(step.contrast!);
        const s = factor(step.saturation!);
        const h = rng.uniform(-step.hue!, step.hue!) * 360;
        if (fires) Object.assign(plan, { brightness: b, contrast: c, saturation: s, hue: h });
        break;
      }
      case 'blur': {
        const sigma = rng.uniform(step.sigma![0], step.sigma![1]);
        if (fires) plan.blur = sigma;
        break;
      }
      case 'grayscale':
        plan.grayscale = fires;
        break;
      case 'randomErasing': {
        const candidates = drawCandidates(rng, step.scale!, step.ratio!);
        if (fires) plan.erase = { candidates, fill: step.fill as [number, number, number] };
        break;
      }
    }
  }
  return plan;
}
