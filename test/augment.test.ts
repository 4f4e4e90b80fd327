import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { AUGMENT_OPS, AUGMENT_PRESET_NAMES, AugmentStep, drawPlan, parseAugmentation } from '../src/data/augment';
import { cropBox, eraseBox, RawImage, RenderPlan, renderImage } from '../src/data/image';
import { applyColour, chromaMatrix } from '../src/data/colour';
import { bytesToInput } from '../src/data/normalise';
import { augmentSheet } from '../src/data/contact-sheet';
import { openDataset } from '../src/data/dataset';
import { PREPROCESS_MODES, preprocessPixels } from '../src/data/preprocess';
import { createRng } from '../src/util/rng';
import { tmpDir } from './helpers/tmp';
import { patternFile, patternRaw } from './helpers/data-fixtures';

const root = tmpDir('graft-augment-');
type Px = [number, number, number];
const RED: Px = [255, 0, 0];
const BLUE: Px = [0, 0, 255];
const GREEN: Px = [0, 255, 0];

function pixel(data: Uint8Array, width: number, x: number, y: number): Px {
  const i = (y * width + x) * 3;
  return [data[i], data[i + 1], data[i + 2]];
}
const near = (a: Px, b: Px, tol = 40) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

describe('each augmentation step does what it says', () => {
  // 32 wide, 16 high: left half red, right half blue, green block in the top-left 8x4.
  const img: RawImage = patternRaw(32, 16);
  const render = (plan: Partial<RenderPlan>, shape: [number, number, number] = [16, 32, 3]) => renderImage(img, { fit: 'fill', ...plan }, shape);

  test('no-op plan at the same size reproduces the pattern exactly', async () => {
    const out = await render({});
    expect(Buffer.compare(out, img.data)).toBe(0);
  });

  test('horizontal flip mirrors left-right and vertical flip mirrors top-bottom', async () => {
    const h = await render({ flipHorizontal: true });
    const v = await render({ flipVertical: true });
    for (const [x, y] of [[0, 0], [5, 2], [20, 10], [31, 15]]) {
      expect(pixel(h, 32, x, y)).toEqual(pixel(img.data, 32, 31 - x, y));
      expect(pixel(v, 32, x, y)).toEqual(pixel(img.data, 32, x, 15 - y));
    }
    expect(pixel(h, 32, 30, 1)).toEqual(GREEN);
    expect(pixel(v, 32, 1, 14)).toEqual(GREEN);
  });

  test('rotation turns the image clockwise about its centre and fills the uncovered corners', async () => {
    const square: RawImage = patternRaw(32, 32);
    const r90 = await renderImage(square, { fit: 'fill', rotate: 90 }, [32, 32, 3]);
    expect(r90).toHaveLength(32 * 32 * 3);
    expect(pixel(r90, 32, 29, 2)).toEqual(GREEN); // top-left corner went to the top right
    expect(pixel(r90, 32, 16, 4)).toEqual(RED); // left half is now the top half
    expect(pixel(r90, 32, 16, 28)).toEqual(BLUE);
    const r30 = await renderImage(square, { fit: 'fill', rotate: 30, fill: [7, 8, 9] }, [32, 32, 3]);
    expect(pixel(r30, 32, 0, 31)).toEqual([7, 8, 9]);
    expect(pixel(r30, 32, 31, 0)).toEqual([7, 8, 9]);
    expect(pixel(r30, 32, 16, 16).some((v) => v > 200)).toBe(true);
  });

  test('centre crop keeps the middle; resize fit modes squash, letterbox or cut', async () => {
    const cc = await render({ crop: { kind: 'center', fraction: 0.5 } }, [8, 16, 3]);
    // The middle half (x 8..23, y 4..11) has no green and is half red, half blue.
    expect(pixel(cc, 16, 2, 0)).toEqual(RED);
    expect(pixel(cc, 16, 13, 7)).toEqual(BLUE);
    const contain = await render({ fit: 'contain', fill: [9, 9, 9] }, [32, 32, 3]);
    expect(pixel(contain, 32, 16, 2)).toEqual([9, 9, 9]); // letterbox band above the 32x16 image
    expect(near(pixel(contain, 32, 4, 16), RED)).toBe(true);
    const cover = await render({ fit: 'cover' }, [16, 16, 3]);
    // cover keeps the centre 16x16 of the 32x16 image: no green, red then blue
    expect(near(pixel(cover, 16, 1, 1), RED)).toBe(true);
    expect(near(pixel(cover, 16, 14, 1), BLUE)).toBe(true);
    const fill = await render({}, [16, 16, 3]);
    expect(near(pixel(fill, 16, 1, 1), GREEN)).toBe(true); // squashed, so the corner survives
  });

  test('random resized crop boxes stay inside the image, within the scale and ratio ranges, and fall back to a centre crop', () => {
    const pipeline = parseAugmentation([{ op: 'randomResizedCrop', scale: [0.2, 0.6], ratio: [0.5, 2] }]);
    const rng = createRng(3);
    for (let i = 0; i < 200; i++) {
      const plan = drawPlan(pipeline, rng);
      const box = cropBox(plan.crop!, 640, 480);
      expect(box.left).toBeGreaterThanOrEqual(0);
      expect(box.top).toBeGreaterThanOrEqual(0);
      expect(box.left + box.width).toBeLessThanOrEqual(640);
      expect(box.top + box.height).toBeLessThanOrEqual(480);
      const area = (box.width * box.height) / (640 * 480);
      expect(area).toBeGreaterThan(0.19);
      expect(area).toBeLessThan(0.61);
      expect(box.width / box.height).toBeGreaterThan(0.48);
      expect(box.width / box.height).toBeLessThan(2.05);
    }
    // No candidate fits a 100x10 strip with ratio <= 2: the fallback is the widest centred crop of ratio 2.
    expect(cropBox({ kind: 'random', candidates: [[0.9, 1, 0.5, 0.5]], ratio: [0.5, 2] }, 100, 10)).toEqual({ left: 40, top: 0, width: 20, height: 10 });
  });

  test('colour jitter: brightness scales, contrast pulls to the mean, saturation 0 is grey, hue turns red towards green', async () => {
    const grey: RawImage = { data: Buffer.alloc(8 * 8 * 3, 100), width: 8, height: 8, channels: 3 };
    const bright = await renderImage(grey, { fit: 'fill', brightness: 1.5 }, [8, 8, 3]);
    expect(Array.from(new Set(bright))).toEqual([150]);
    const flat = await render({ contrast: 0 });
    expect(new Set(flat).size).toBe(1);
    const grey601 = Math.round(0.299 * 255);
    const desat = await render({ saturation: 0 });
    expect(pixel(desat, 32, 4, 10)).toEqual([grey601, grey601, grey601]);
    const hue = await render({ hue: 120 });
    const [r, g] = pixel(hue, 32, 4, 10);
    expect(g).toBeGreaterThan(r);
    const gs = await render({ grayscale: true });
    for (let i = 0; i < gs.length; i += 3) expect(gs[i]).toBe(gs[i + 1]);
    // contrast 0 gives exactly the mean grey of the image in every channel
    const m = Array.from({ length: 32 * 16 }, (_, p) => 0.299 * img.data[p * 3] + 0.587 * img.data[p * 3 + 1] + 0.114 * img.data[p * 3 + 2]);
    expect(Math.abs(flat[0] - m.reduce((a, b) => a + b, 0) / m.length)).toBeLessThanOrEqual(0.5);
  });

  test('colour maths: matrices keep grey grey, 1-channel images only take brightness and contrast', () => {
    for (const [s, h] of [[0.3, 0], [1.7, 40], [1, -90]]) {
      const m = chromaMatrix(s, h, false);
      for (const row of m) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    }
    // contrast pulls towards the mean grey of the brightened image after each channel is clamped, as torchvision does
    const clipped = Uint8Array.from([200, 50, 0, 200, 50, 0]);
    applyColour(clipped, 3, { brightness: 2, contrast: 0 });
    expect(Array.from(clipped)).toEqual(new Array(6).fill(Math.round(0.299 * 255 + 0.587 * 100)));
    const one = Uint8Array.from([10, 100, 200, 250]);
    applyColour(one, 1, { brightness: 2, saturation: 0, hue: 90 });
    expect(Array.from(one)).toEqual([20, 200, 255, 255]);
  });

  test('gaussian blur softens the red/blue edge', async () => {
    const sharpEdge = await render({});
    const blurred = await render({ blur: 2 });
    expect(pixel(sharpEdge, 32, 15, 10)).toEqual(RED);
    const [r, , b] = pixel(blurred, 32, 15, 10);
    expect(r).toBeLessThan(230);
    expect(b).toBeGreaterThan(25);
  });

  test('every preset and a strong pipeline give the model shape, bytes in range, and identical bytes for the same seed', async () => {
    const file = await patternFile(path.join(root, 'p.jpg'), 64, 48, 'jpeg');
    const bytes = await fs.promises.readFile(file);
    for (const name of AUGMENT_PRESET_NAMES) {
      const pipeline = parseAugmentation(name);
      const run = async (seed: number) => {
        const rng = createRng(seed);
        return Promise.all(Array.from({ length: 6 }, () => renderImage(bytes, drawPlan(pipeline, rng), [20, 24, 3])));
      };
      const [a, b, c] = [await run(1), await run(1), await run(2)];
      for (const out of a) expect(out).toHaveLength(20 * 24 * 3);
      expect(a.every((x, i) => Buffer.compare(x, b[i]) === 0)).toBe(true);
      if (name !== 'none') expect(a.some((x, i) => Buffer.compare(x, c[i]) !== 0)).toBe(true);
    }
  });

  test('translate shifts the content by whole pixels and fills the uncovered border', async () => {
    // 3 px right and 2 px down on the 32x16 pattern (fractions of each side), then 4 px left and 1 px up.
    const right = await render({ translate: [3 / 32, 2 / 16], translateFill: [9, 9, 9] });
    const left = await render({ translate: [-4 / 32, -1 / 16] });
    for (const [x, y] of [[3, 2], [10, 5], [17, 9], [31, 15]]) expect(pixel(right, 32, x, y)).toEqual(pixel(img.data, 32, x - 3, y - 2));
    for (const [x, y] of [[0, 0], [2, 10], [20, 1]]) expect(pixel(right, 32, x, y)).toEqual([9, 9, 9]);
    for (const [x, y] of [[0, 0], [12, 7], [27, 14]]) expect(pixel(left, 32, x, y)).toEqual(pixel(img.data, 32, x + 4, y + 1));
    for (const [x, y] of [[28, 3], [31, 15], [5, 15]]) expect(pixel(left, 32, x, y)).toEqual([0, 0, 0]);
    // Under half a pixel rounds to no shift; on one channel the fill is its luma.
    expect(Buffer.compare(await render({ translate: [0.4 / 32, -0.4 / 16] }), img.data)).toBe(0);
    const grey = await render({ translate: [0, 1 / 16], translateFill: [255, 0, 0] }, [16, 32, 1]);
    expect(grey[0]).toBe(Math.round(0.299 * 255));
    expect(grey[32 * 5]).toBe((await render({}, [16, 32, 1]))[32 * 4]);
  });

  test('raw pixels at the output size skip sharp and give the bytes sharp gives, flipped and shifted, grey and RGB', async () => {
    const rng = createRng(11);
    for (const channels of [1, 3] as const) {
      const raw: RawImage = { data: Uint8Array.from({ length: 28 * 20 * channels }, () => rng.int(256)), width: 20, height: 28, channels };
      const png = await sharp(Buffer.from(raw.data), { raw: { width: 20, height: 28, channels } }).png().toBuffer();
      for (const plan of [{}, { flipHorizontal: true }, { flipVertical: true, flipHorizontal: true }, { flipHorizontal: true, translate: [0.1, -0.08] }] as Array<Partial<RenderPlan>>) {
        const viaRaw = await renderImage(raw, { fit: 'fill', ...plan }, [28, 20, channels]);
        const viaSharp = await renderImage(png, { fit: 'fill', ...plan }, [28, 20, channels]);
        expect(Buffer.compare(viaRaw, viaSharp)).toBe(0);
      }
      // The input is never written to.
      const before = Buffer.from(raw.data);
      await renderImage(raw, { fit: 'fill', flipHorizontal: true, translate: [0.2, 0.2] }, [28, 20, channels]);
      expect(Buffer.compare(Buffer.from(raw.data), before)).toBe(0);
    }
  });

  test('translate draws shifts within max on each axis, seeded, and none when it does not fire', () => {
    const pipeline = parseAugmentation([{ op: 'translate', max: [0.1, 0.25] }]);
    const rng = createRng(3);
    const plans = Array.from({ length: 200 }, () => drawPlan(pipeline, rng));
    const xs = plans.map((p) => p.translate![0]);
    const ys = plans.map((p) => p.translate![1]);
    expect(Math.max(...xs.map(Math.abs))).toBeLessThanOrEqual(0.1);
    expect(Math.max(...xs.map(Math.abs))).toBeGreaterThan(0.08);
    expect(Math.max(...ys.map(Math.abs))).toBeGreaterThan(0.2);
    expect(Math.min(...xs)).toBeLessThan(0);
    expect(drawPlan(pipeline, createRng(3))).toEqual(plans[0]);
    expect(drawPlan(parseAugmentation([{ op: 'translate', p: 0 }]), createRng(3)).translate).toBeUndefined();
  });

  test('randomErasing paints the rectangle torchvision would pick, after the shift, on the sharp and the raw path', async () => {
    // torchvision's get_params on a 16x32 image: area 512 * 0.25 = 128, h/w 2 -> h = round(sqrt(256)) = 16 (not < 16:
    // rejected), then 0.125 and 0.5 -> h = 6, w = 11 at x = floor(0.5 * 22) = 11, y = floor(0.99 * 11) = 10.
    const candidates: Array<[number, number, number, number]> = [[0.25, 2, 0, 0], [0.125, 0.5, 0.5, 0.99]];
    expect(eraseBox(candidates, 32, 16)).toEqual({ left: 11, top: 10, width: 11, height: 6 });
    expect(eraseBox([[0.9, 1, 0.5, 0.5]], 32, 16)).toBeNull();
    const erase = { candidates, fill: [7, 8, 9] as Px };
    const out = await render({ erase });
    const shifted = await render({ erase, translate: [2 / 32, 0] });
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 32; x++) {
        const inside = x >= 11 && x < 22 && y >= 10;
        expect(pixel(out, 32, x, y)).toEqual(inside ? [7, 8, 9] : pixel(img.data, 32, x, y));
        // The rectangle is in output coordinates: the shift moves the content under it, not the rectangle.
        if (inside) expect(pixel(shifted, 32, x, y)).toEqual([7, 8, 9]);
        else if (x >= 2) expect(pixel(shifted, 32, x, y)).toEqual(pixel(img.data, 32, x - 2, y));
      }
    }
    // No candidate fits: the image is untouched. Raw pixels at the output size give sharp's bytes, erased.
    expect(Buffer.compare(await render({ erase: { candidates: [[0.99, 1, 0, 0]], fill: [1, 1, 1] } }), img.data)).toBe(0);
    const png = await sharp(Buffer.from(img.data), { raw: { width: 32, height: 16, channels: 3 } }).png().toBuffer();
    const plan: RenderPlan = { fit: 'fill', flipHorizontal: true, erase };
    expect(Buffer.compare(await renderImage(png, plan, [16, 32, 3]), await renderImage(img, plan, [16, 32, 3]))).toBe(0);
    const grey = await renderImage(img, { fit: 'fill', erase: { candidates, fill: [255, 0, 0] } }, [16, 32, 1]);
    expect(grey[10 * 32 + 11]).toBe(Math.round(0.299 * 255));
  });

  test('randomErasing draws with torchvision defaults (p 0.5, scale 0.02-0.33, ratio 0.3-3.3), seeded', () => {
    const pipeline = parseAugmentation([{ op: 'randomErasing' }]);
    expect(pipeline.steps).toEqual([{ op: 'randomErasing', p: 0.5, scale: [0.02, 0.33], ratio: [0.3, 3.3], fill: [0, 0, 0] }]);
    const rng = createRng(4);
    const plans = Array.from({ length: 400 }, () => drawPlan(pipeline, rng));
    const fired = plans.filter((p) => p.erase);
    expect(fired.length).toBeGreaterThan(160);
    expect(fired.length).toBeLessThan(240);
    const areas = fired.map((p) => eraseBox(p.erase!.candidates, 28, 28)).filter((b) => b).map((b) => (b!.width * b!.height) / 784);
    expect(areas.length).toBeGreaterThan(fired.length * 0.95);
    expect(Math.min(...areas)).toBeLessThan(0.05);
    expect(Math.max(...areas)).toBeGreaterThan(0.25);
    expect(Math.max(...areas)).toBeLessThan(0.4);
    expect(drawPlan(pipeline, createRng(4))).toEqual(plans[0]);
    expect(() => parseAugmentation([{ op: 'randomErasing', scale: [0.1, 1.5] }])).toThrow('randomErasing.scale must be a number between 0 and 1; received 1.5.');
  });

  test('drawing: each step draws a fixed amount, so changing one probability leaves the others alone', () => {
    const base: AugmentStep[] = [
      { op: 'rotate', degrees: 30, p: 0.5 },
      { op: 'colorJitter', brightness: 0.4 },
    ];
    const a = drawPlan(parseAugmentation(base), createRng(5));
    const b = drawPlan(parseAugmentation([{ ...base[0], p: 0 }, base[1]]), createRng(5));
    expect(b.rotate).toBeUndefined();
    expect(b.brightness).toBe(a.brightness);
  });
});

describe('preprocessing after augmentation', () => {
  test('bytesToInput matches preprocessPixels for every mode, 1 and 3 channels, with and without colour changes', () => {
    const bytes = Uint8Array.from({ length: 48 }, (_, i) => (i * 53) % 256);
    for (const mode of PREPROCESS_MODES) {
      for (const channels of [1, 3]) {
        const fast = new Float32Array(48);
        bytesToInput(bytes, channels, mode, fast);
        const slow = preprocessPixels(Float32Array.from(bytes), channels, mode);
        for (let i = 0; i < 48; i++) expect(fast[i]).toBeCloseTo(slow[i], 4);
      }
    }
    // with a colour plan, the fused pass equals applyColour followed by preprocessing, within half a grey level
    const plan = { brightness: 1.3, contrast: 0.6, saturation: 1.8, hue: 25 };
    for (const mode of PREPROCESS_MODES) {
      const fused = new Float32Array(48);
      bytesToInput(bytes, 3, mode, fused, plan);
      const coloured = Uint8Array.from(bytes);
      applyColour(coloured, 3, plan);
      expect(Array.from(coloured)).not.toEqual(Array.from(bytes));
      const slow = preprocessPixels(Float32Array.from(coloured), 3, mode);
      const [white, black] = [preprocessPixels(Float32Array.from([255, 255, 255]), 3, mode), preprocessPixels(new Float32Array(3), 3, mode)];
      const halfLevel = (0.5 * Math.max(...[0, 1, 2].map((k) => Math.abs(white[k] - black[k])))) / 255;
      for (let i = 0; i < 48; i++) expect(Math.abs(fused[i] - slow[i])).toBeLessThanOrEqual(halfLevel + 1e-5);
    }
    const out = new Float32Array(48);
    bytesToInput(Uint8Array.from({ length: 48 }, (_, i) => (i % 2) * 255), 3, 'tf', out);
    expect(Math.min(...out)).toBe(-1);
    expect(Math.max(...out)).toBe(1);
  });
});

describe('parseAugmentation', () => {
  test('presets, inline JSON, {steps} objects and JSON files', () => {
    expect(parseAugmentation(null).steps).toEqual([]);
    expect(parseAugmentation('none').steps).toEqual([]);
    expect(parseAugmentation('strong').steps.map((s) => s.op)).toContain('colorJitter');
    const inline = parseAugmentation('[{"op":"horizontalFlip"},{"op":"rotate","degrees":[0,5]}]');
    expect(inline.steps).toEqual([
      { op: 'horizontalFlip', p: 0.5 },
      { op: 'rotate', p: 1, degrees: [0, 5], fill: [0, 0, 0] },
    ]);
    const file = path.join(root, 'aug.json');
    fs.writeFileSync(file, JSON.stringify({ steps: [{ op: 'blur', sigma: [1, 1] }] }));
    expect(parseAugmentation(file).steps).toEqual([{ op: 'blur', p: 1, sigma: [1, 1] }]);
  });

  test('unknown ops, fields, presets and bad values are errors listing what is valid', () => {
    expect(() => parseAugmentation([{ op: 'flip' } as never])).toThrow(`augmentation step 1 op must be one of ${AUGMENT_OPS.join(', ')}; received "flip".`);
    expect(() => parseAugmentation([{ op: 'rotate', angle: 5 } as never])).toThrow(
      'augmentation step rotate has no option "angle"; valid options are op, p, degrees, fill.',
    );
    expect(() => parseAugmentation('heavy')).toThrow(/"heavy" is not a preset \(none, light, standard, strong\), inline JSON or an existing JSON file/);
    expect(() => parseAugmentation('[{"op":')).toThrow(/inline --aug JSON is not valid JSON/);
    expect(() => parseAugmentation([{ op: 'horizontalFlip', p: 2 }])).toThrow('horizontalFlip.p must be a number between 0 and 1; received 2.');
    expect(() => parseAugmentation([{ op: 'randomResizedCrop', scale: [0.9, 0.1] }])).toThrow(/scale must be \[min, max\] with min <= max/);
    expect(() => parseAugmentation([{ op: 'colorJitter', hue: 0.7 }])).toThrow('colorJitter.hue must be a number between 0 and 0.5; received 0.7.');
    expect(() => parseAugmentation([{ op: 'resize', fit: 'stretch' as never }])).toThrow('resize.fit must be one of fill, cover, contain; received "stretch".');
    expect(() => parseAugmentation([{ op: 'blur' }, { op: 'blur' }])).toThrow(/blur appears twice/);
    expect(() => parseAugmentation([{ op: 'translate', max: 1.5 }])).toThrow('translate.max must be a number between 0 and 1; received 1.5.');
    expect(() => parseAugmentation([{ op: 'translate', max: [0.1] as never }])).toThrow(/translate.max must be a fraction or an \[x, y\] pair/);
  });
});

describe('augmentSheet', () => {
  test('writes a PNG with one row per image and the original plus variants per row', async () => {
    for (const cls of ['a', 'b']) for (let i = 0; i < 3; i++) await patternFile(path.join(root, 'sheet-data', cls, `${i}.png`), 30 + i, 20);
    const ds = await openDataset(path.join(root, 'sheet-data'), { log: null });
    const out = path.join(root, 'sheet.png');
    const info = await augmentSheet(ds, { out, n: 4, variants: 3, tile: 32, seed: 1, augment: 'strong' });
    expect(info.rows).toBe(4);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).toEqual([info.width, info.height]);
    expect(info.width).toBe(150 + 4 * (32 + 4) + 4);
    const again = path.join(root, 'sheet2.png');
    await augmentSheet(ds, { out: again, n: 4, variants: 3, tile: 32, seed: 1, augment: 'strong' });
    expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(again))).toBe(0);
  });
});
