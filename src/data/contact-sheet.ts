/**
 * A contact sheet of what an augmentation pipeline does: one row per image, the original (whole, letterboxed)
 * followed by augmented variants exactly as the model would receive them before normalisation.
 */
import sharp from 'sharp';
import type { OverlayOptions } from 'sharp';
import { GraftError, positiveInt, rejectUnknownKeys } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { createRng } from '../util/rng';
import { escapeXml } from '../util/svg';
import { AugmentSpec, drawPlan, parseAugmentation } from './augment';
import { Dataset, Sample, SkippedFile } from './dataset';
import { decodeFailureReason } from './decode-errors';
import { PLAIN_PLAN, readSource, renderImage } from './image';

/** Options of `augmentSheet`. */
export interface AugmentSheetOptions {
  /** PNG file to write. */
  out: string;
  /** Pipeline: preset name, JSON or steps (default `standard`). */
  augment?: AugmentSpec;
  /** Number of images (rows), spread over the classes (default 16). */
  n?: number;
  /** Augmented variants per image (default 6). */
  variants?: number;
  /** Seed picking the images and drawing the augmentations (default 0). */
  seed?: number | string;
  /** Side of each tile in pixels (default 128). */
  tile?: number;
}

const GAP = 4;
const LABEL_WIDTH = 150;
const HEADER = 22;

/** Picks `n` samples round-robin over the classes, in a seeded order, so every class shows up. */
function pickSamples(ds: Dataset, n: number, seed: number | string): Sample[] {
  const rng = createRng(seed).fork('sheet-pick');
  const byClass = ds.classNames.map((_, label) => rng.shuffle(ds.samples.filter((s) => s.label === label)));
  const picked: Sample[] = [];
  for (let round = 0; picked.length < n && picked.length < ds.samples.length; round++) {
    for (const members of byClass) if (round < members.length && picked.length < n) picked.push(members[round]);
  }
  return picked;
}

/** Renders the contact sheet PNG for a dataset and writes it atomically; returns the sheet's size and the images it could not decode. */
export async function augmentSheet(ds: Dataset, options: AugmentSheetOptions): Promise<{ width: number; height: number; rows: number; skipped: SkippedFile[] }> {
  rejectUnknownKeys('augmentSheet', options, ['out', 'augment', 'n', 'variants', 'seed', 'tile']);
  const pipeline = parseAugmentation(options.augment === undefined ? 'standard' : options.augment);
  const n = positiveInt('n', options.n ?? 16);
  const variants = positiveInt('variants', options.variants ?? 6);
  const tile = positiveInt('tile', options.tile ?? 128);
  const seed = options.seed ?? 0;
  // Every image in pick order: an unreadable one is skipped (and named), and the next pick takes its row.
  const candidates = pickSamples(ds, ds.samples.length, seed);
  const rng = createRng(seed).fork('sheet-augment');
  const shape: [number, number, number] = [tile, tile, 3];
  const samples: Sample[] = [];
  const rows: Buffer[][] = [];
  const skipped: SkippedFile[] = [];
  for (let at = 0; samples.length < n && at < candidates.length; ) {
    const chunk = candidates.slice(at, at + n - samples.length);
    at += chunk.length;
    const plans = chunk.map(() => Array.from({ length: variants }, () => drawPlan(pipeline, rng)));
    const rendered = await Promise.all(
      chunk.map(async (s, r) => {
        try {
          const input = await readSource(s.source);
          const original = await renderImage(input, { ...PLAIN_PLAN, fit: 'contain', fill: [40, 40, 40] }, shape);
          return [original, ...(await Promise.all(plans[r].map((p) => renderImage(input, p, shape))))];
        } catch (err) {
          skipped.push({ source: s.source, reason: decodeFailureReason(err, s.source) });
          return null;
        }
      }),
    );
    rendered.forEach((tiles, r) => {
      if (tiles) {
        samples.push(chunk[r]);
        rows.push(tiles);
      }
    });
  }
  if (!samples.length) throw new GraftError(`no image of ${ds.root} could be decoded (${skipped.length} tried); fix or remove the files.`);
  const width = LABEL_WIDTH + (variants + 1) * (tile + GAP) + GAP;
  const height = HEADER + samples.length * (tile + GAP) + GAP;
  const x = (col: number) => LABEL_WIDTH + GAP + col * (tile + GAP);
  const y = (row: number) => HEADER + GAP + row * (tile + GAP);
  const text = [
    `<text x="${x(0)}" y="16">original</text>`,
    `<text x="${x(1)}" y="16">${escapeXml(`${variants} draws of "${pipeline.name}" (seed ${seed})`)}</text>`,
    ...samples.map((s, r) => `<text x="6" y="${y(r) + tile / 2 + 5}">${escapeXml(ds.classNames[s.label].slice(0, 18))}</text>`),
  ].join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g font-family="sans-serif" font-size="14" fill="#eee">${text}</g></svg>`;
  const composites: OverlayOptions[] = [{ input: Buffer.from(svg), left: 0, top: 0 }];
  rows.forEach((tiles, r) =>
    tiles.forEach((pixels, col) => composites.push({ input: pixels, raw: { width: tile, height: tile, channels: 3 }, left: x(col), top: y(r) })),
  );
  const png = await sharp({ create: { width, height, channels: 3, background: '#202020' } }).composite(composites).png().toBuffer();
  await writeFileAtomic(options.out, png);
  return { width, height, rows: samples.length, skipped };
}
