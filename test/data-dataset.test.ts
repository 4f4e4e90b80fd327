import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Dataset, openDataset, splitDataset } from '../src/data/dataset';
import { rawBatches } from '../src/data/batches';
import { loadImage, renderImage } from '../src/data/image';
import { parseIdx } from '../src/data/idx';
import { jpegDisplaySize } from '../src/data/jpeg-header';
import { GraftError } from '../src/errors';
import { tmpDir } from './helpers/tmp';
import { idxFolder, patternFile, snapshot, solidFile } from './helpers/data-fixtures';

const root = tmpDir('graft-data-');
// Check verdicts are cached under the cache folder: keep this file's own.
process.env.GRAFT_CACHE = path.join(root, 'cache');

/** A folder dataset: `counts[k]` images in class folder `names[k]`, each a flat colour. */
async function folderDataset(dir: string, names: string[], counts: number[]): Promise<string> {
  for (const [k, name] of names.entries()) {
    for (let i = 0; i < counts[k]; i++) await solidFile(path.join(dir, name, `img${i}.png`), 12, 10, [10 * k, 100, 200]);
  }
  return dir;
}

describe('openDataset', () => {
  test('image folder: classes sorted, nested files found, labels follow the sorted names', async () => {
    const dir = await folderDataset(path.join(root, 'folder'), ['zebra', 'ant', 'mole'], [2, 3, 1]);
    await solidFile(path.join(dir, 'ant', 'deeper', 'x.png'), 8, 8, [1, 2, 3]);
    fs.writeFileSync(path.join(dir, 'ant', '.DS_Store'), 'junk');
    const logs: string[] = [];
    const ds = await openDataset(dir, { log: (l) => logs.push(l) });
    expect(ds.kind).toBe('folder');
    expect(ds.classNames).toEqual(['ant', 'mole', 'zebra']);
    expect(ds.samples.filter((s) => s.label === 0)).toHaveLength(4);
    expect(ds.samples.filter((s) => s.label === 2).every((s) => s.source.includes(`${path.sep}zebra${path.sep}`))).toBe(true);
    expect(ds.skipped).toEqual([]);
    expect(logs).toEqual([]);
  });

  test('CSV manifest: paths relative to the CSV, header optional, missing files skipped and reported', async () => {
    const dir = path.join(root, 'csv');
    await solidFile(path.join(dir, 'imgs', 'a.png'), 8, 8, [0, 0, 0]);
    await solidFile(path.join(dir, 'imgs', 'b.png'), 8, 8, [255, 255, 255]);
    await solidFile(path.join(dir, 'imgs', 'c.png'), 8, 8, [255, 255, 255]);
    fs.writeFileSync(path.join(dir, 'm.csv'), 'path,label\nimgs/a.png,dark\nimgs/b.png,light\n"imgs/c.png",light\nimgs/gone.png,dark\n');
    const logs: string[] = [];
    const ds = await openDataset(path.join(dir, 'm.csv'), { log: (l) => logs.push(l) });
    expect(ds.kind).toBe('csv');
    expect(ds.classNames).toEqual(['dark', 'light']);
    expect(ds.samples.map((s) => [path.basename(s.source), s.label])).toEqual([
      ['a.png', 0],
      ['b.png', 1],
      ['c.png', 1],
    ]);
    expect(ds.skipped).toHaveLength(1);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/skipped 1 unusable .*gone\.png \(file listed in the manifest does not exist\)/);
    fs.writeFileSync(path.join(dir, 'other-header.csv'), 'filename,class\nimgs/a.png,dark\nimgs/b.png,light\n');
    const other = await openDataset(path.join(dir, 'other-header.csv'), { log: null });
    expect(other.classNames).toEqual(['dark', 'light']);
    expect(other.skipped).toEqual([]);
    fs.writeFileSync(path.join(dir, 'bad.csv'), 'imgs/a.png,dark\nimgs/b.png\n');
    await expect(openDataset(path.join(dir, 'bad.csv'))).rejects.toThrow(/row 2 is "imgs\/b.png"; every row needs path,label/);
  });

  test('IDX folder, gzipped or not, and a single images file; pixels decode from the IDX buffer', async () => {
    for (const gzip of [false, true]) {
      const dir = idxFolder(path.join(root, `idx-${gzip}`), { n: 12, classes: 3, gzip });
      const ds = await openDataset(dir);
      expect(ds.kind).toBe('idx');
      expect(ds.classNames).toEqual(['0', '1', '2']);
      expect(ds.samples).toHaveLength(12);
      expect(ds.samples[4]).toEqual({ source: expect.stringMatching(/^idx:.*train-images-idx3-ubyte(\.gz)?#4$/), label: 1 });
      const px = await loadImage(ds.samples[5].source, { inputShape: [8, 8, 1] });
      expect(Array.from(new Set(px))).toEqual([40]);
      const rgb = await loadImage(ds.samples[5].source, { inputShape: [4, 4, 3] });
      expect(rgb).toHaveLength(48);
      expect(Array.from(new Set(rgb))).toEqual([40]);
    }
    const single = await openDataset(path.join(root, 'idx-false', 'train-images-idx3-ubyte'), { classNames: ['a', 'b', 'c'] });
    expect(single.classNames).toEqual(['a', 'b', 'c']);
    await expect(openDataset(path.join(root, 'idx-false'), { split: 'test' })).rejects.toThrow(/has no test images IDX file .*t10k-images-idx3-ubyte/);
    expect(() => parseIdx(Buffer.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]), 'f.idx')).toThrow(/element type 0xd received, only unsigned bytes/);
    expect(() => parseIdx(Buffer.from('hello world'), 'f.idx')).toThrow(/no IDX magic number/);
  });

  test('fewer than two classes, unknown classes and missing datasets are errors that say what to do', async () => {
    const one = await folderDataset(path.join(root, 'one'), ['only'], [3]);
    await expect(openDataset(one)).rejects.toThrow(/has 1 class with images \(only\); a classifier needs at least two/);
    const two = await folderDataset(path.join(root, 'two'), ['a', 'b'], [1, 1]);
    await expect(openDataset(two, { classNames: ['a', 'c'] })).rejects.toThrow(/has classes b that are not among a, c/);
    await expect(openDataset(path.join(root, 'nope'))).rejects.toThrow(/does not exist; give an image folder/);
    await expect(openDataset(two, { verify: 'deep' as never })).rejects.toThrow('verify must be one of decode, header, none; received "deep".');
    await expect(openDataset(two, { strct: true } as never)).rejects.toThrow(/openDataset has no option "strct"/);
  });
});

describe('odd and broken files', () => {
  const dir = path.join(root, 'odd');
  beforeAll(async () => {
    const good = path.join(dir, 'good');
    await patternFile(path.join(good, 'plain.png'), 40, 20);
    // Noise, so the compressed data (not the header tables) makes up most of the file and a cut lands in it.
    const noise = Buffer.from(Array.from({ length: 64 * 48 * 3 }, (_, i) => (i * 7919) % 251));
    const jpeg = await sharp(noise, { raw: { width: 64, height: 48, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    fs.mkdirSync(path.join(dir, 'bad'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'bad', 'corrupt.jpg'), jpeg.subarray(0, Math.round(jpeg.length * 0.7)));
    // a large one too: large images are checked through a shrink-on-load decode instead of a plain one
    const bigNoise = Buffer.from(Array.from({ length: 320 * 240 * 3 }, (_, i) => (i * 7919) % 251));
    const big = await sharp(bigNoise, { raw: { width: 320, height: 240, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    fs.writeFileSync(path.join(dir, 'bad', 'corrupt-big.jpg'), big.subarray(0, Math.round(big.length * 0.7)));
    fs.writeFileSync(path.join(dir, 'bad', 'notes.png'), 'this is text, not a PNG\n');
    // CMYK JPEG of pure red, 16-bit PNG, RGBA with a transparent half, and an EXIF-rotated JPEG.
    const red = sharp({ create: { width: 16, height: 16, channels: 3, background: '#ff0000' } });
    await red.clone().toColourspace('cmyk').jpeg({ quality: 100 }).toFile(path.join(dir, 'bad', 'cmyk.jpg'));
    await red.clone().toColourspace('rgb16').png().toFile(path.join(dir, 'bad', 'deep16.png'));
    const rgba = Buffer.alloc(16 * 16 * 4);
    for (let i = 0; i < 16 * 16; i++) rgba.set(i % 16 < 8 ? [0, 0, 255, 255] : [0, 0, 0, 0], i * 4);
    await sharp(rgba, { raw: { width: 16, height: 16, channels: 4 } }).png().toFile(path.join(dir, 'bad', 'rgba.png'));
    // Stored 40x20 with orientation 6 (rotate 90 clockwise to display): shown as 20x40, green corner at top right.
    const pat = await sharp(await fs.promises.readFile(path.join(good, 'plain.png'))).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    fs.writeFileSync(path.join(dir, 'bad', 'exif6.jpg'), pat);
    fs.mkdirSync(path.join(dir, 'empty'));
  });

  /** Opens the dataset and reads it through once, as evaluation and training do: the final warning is the report. */
  async function openAndRead(options: Parameters<typeof openDataset>[1]): Promise<{ ds: Dataset; logs: string[] }> {
    const logs: string[] = [];
    const ds = await openDataset(dir, { ...options, log: (l) => logs.push(l) });
    for await (const b of rawBatches(ds, { inputShape: [8, 8, 3], preprocessing: 'unit', batchSize: 3 })) expect(b.samples.length).toBeGreaterThan(0);
    return { ds, logs };
  }

  test('unreadable files and empty class folders are skipped and listed in one warning; strict makes it an error', async () => {
    const before = snapshot(dir);
    // decode checks every file before any work starts; header reads headers and finds the truncated JPEGs when their
    // batch decodes them. Either way the final report lists the same files for the same reasons.
    const reports: string[] = [];
    for (const verify of ['decode', 'header'] as const) {
      const { ds, logs } = await openAndRead({ verify });
      // the empty class folder is reported and is not a class; labels are renumbered to match
      expect(ds.classNames).toEqual(['bad', 'good']);
      expect(ds.samples.find((s) => s.source.endsWith('plain.png'))!.label).toBe(1);
      expect(ds.skipped.map((s) => path.basename(s.source)).sort()).toEqual(['corrupt-big.jpg', 'corrupt.jpg', 'empty', 'notes.png']);
      expect(ds.skipped.find((s) => s.source.endsWith('empty'))!.reason).toBe('empty class folder');
      expect(ds.skipped.find((s) => s.source.endsWith('corrupt.jpg'))!.reason).toBe('truncated JPEG (the file ends early)');
      const last = logs[logs.length - 1];
      expect(last).toMatch(/^graft: warning: skipped 4 unusable files or folders in .*odd: /);
      // one line per file, sorted, so the two orders of discovery compare
      reports.push(last.replace(/^.*odd: /, '').split('; ').sort().join('\n'));
      expect(logs.length).toBe(verify === 'decode' ? 1 : 2);
    }
    expect(reports[1]).toEqual(reports[0]);
    const err = await openDataset(dir, { strict: true, verify: 'decode' }).catch((e) => e);
    expect(err).toBeInstanceOf(GraftError);
    expect(err.message).toMatch(/4 files or folders are unusable: .*corrupt\.jpg \(truncated JPEG.*\).* drop --strict/);
    // strict with header checks: the non-image and the empty folder stop opening (the truncated JPEGs would stop the
    // first pass: test/data-batches.test.ts)
    const headerErr = await openDataset(dir, { strict: true, log: null }).catch((e) => e);
    expect(headerErr.message).toMatch(/2 files or folders are unusable: .*notes\.png \(not an image.*drop --strict/);
    expect(snapshot(dir)).toEqual(before);
  });

  test('CMYK, 16-bit, RGBA and EXIF-rotated files decode to 8-bit RGB or grey as the model expects', async () => {
    const at = (px: Float32Array, w: number, x: number, y: number) => Array.from(px.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
    const cmyk = await loadImage(path.join(dir, 'bad', 'cmyk.jpg'), { inputShape: [4, 4, 3] });
    const [r, g, b] = at(cmyk, 4, 1, 1);
    expect(r).toBeGreaterThan(200);
    expect(g).toBeLessThan(60);
    expect(b).toBeLessThan(60);
    const deep = await loadImage(path.join(dir, 'bad', 'deep16.png'), { inputShape: [4, 4, 3] });
    expect(at(deep, 4, 2, 2)).toEqual([255, 0, 0]);
    const grey = await loadImage(path.join(dir, 'bad', 'deep16.png'), { inputShape: [4, 4, 1] });
    expect(grey).toHaveLength(16);
    // ITU-R 601 luma of pure red: 0.299 * 255
    expect(grey[5]).toBe(76);
    // transparency is flattened onto white: left half blue, right half white
    const rgba = await loadImage(path.join(dir, 'bad', 'rgba.png'), { inputShape: [16, 16, 3] });
    expect(at(rgba, 16, 2, 8)).toEqual([0, 0, 255]);
    expect(at(rgba, 16, 13, 8)).toEqual([255, 255, 255]);
    // EXIF orientation 6: displayed 20 wide and 40 high with the green corner at the top right
    const rotated = await loadImage(path.join(dir, 'bad', 'exif6.jpg'), { inputShape: [40, 20, 3] });
    const [gr, gg, gb] = at(rotated, 20, 18, 2);
    expect(gg).toBeGreaterThan(200);
    expect(gr + gb).toBeLessThan(80);
    expect(at(rotated, 20, 2, 2)[1]).toBeLessThan(60);
    // crops are in displayed (oriented) coordinates: the top-right 14x14 of the displayed image holds the green corner
    const bytes = fs.readFileSync(path.join(dir, 'bad', 'exif6.jpg'));
    const crop = await renderImage(bytes, { fit: 'fill', crop: { kind: 'random', candidates: [[0.245, 1, 1, 0]], ratio: [1, 1] } }, [14, 14, 3]);
    expect(at(Float32Array.from(crop), 14, 11, 7)[1]).toBeGreaterThan(200); // red here if the crop were in stored coordinates
    expect(at(Float32Array.from(crop), 14, 2, 12)[1]).toBeLessThan(60);
    await expect(loadImage(path.join(dir, 'bad', 'notes.png'), { inputShape: [4, 4, 3] })).rejects.toThrow(/cannot use image .*notes\.png: not an image \(a \.png file sharp cannot read\); fix or remove the file\./);
  });
});

describe('splitDataset', () => {
  const dir = path.join(root, 'split');
  beforeAll(() => folderDataset(dir, ['a', 'b', 'c'], [10, 5, 20]));

  test('stratified by class, reproducible by seed, disjoint and complete', async () => {
    const ds = await openDataset(dir, { verify: 'none' });
    const s1 = await splitDataset(ds, { validationFraction: 0.2, seed: 7 });
    const s2 = await splitDataset(ds, { validationFraction: 0.2, seed: 7 });
    const s3 = await splitDataset(ds, { validationFraction: 0.2, seed: 8 });
    const count = (d: typeof ds, label: number) => d.samples.filter((s) => s.label === label).length;
    expect([0, 1, 2].map((l) => count(s1.validation, l))).toEqual([2, 1, 4]);
    expect([0, 1, 2].map((l) => count(s1.train, l))).toEqual([8, 4, 16]);
    expect(s2.validation.samples).toEqual(s1.validation.samples);
    expect(s3.validation.samples).not.toEqual(s1.validation.samples);
    const all = [...s1.train.samples, ...s1.validation.samples].map((s) => s.source).sort();
    expect(all).toEqual(ds.samples.map((s) => s.source).sort());
    expect(s1.train.classNames).toEqual(ds.classNames);
  });

  test('a fraction that empties a class is an error; an explicit validation folder overrides the fraction', async () => {
    const ds = await openDataset(dir, { verify: 'none' });
    await expect(splitDataset(ds, { validationFraction: 0.05, seed: 1 })).rejects.toThrow(
      /fraction of 0\.05 leaves class b \(5 images\) with no validation images/,
    );
    await expect(splitDataset(ds, { validationFraction: 1.5 })).rejects.toThrow(/validationFraction must be a number between 0 and 1/);
    const val = await folderDataset(path.join(root, 'val'), ['a', 'c'], [1, 1]);
    const { train, validation } = await splitDataset(ds, { validation: val, validationFraction: 0.2 });
    expect(train.samples).toHaveLength(35);
    expect(validation.classNames).toEqual(['a', 'b', 'c']);
    expect(validation.samples.map((s) => s.label)).toEqual([0, 2]);
  });
});

describe('JPEG header reading', () => {
  test('size and EXIF orientation match sharp for plain, progressive and rotated JPEGs; other bytes give null', async () => {
    const base = sharp(Buffer.alloc(30 * 20 * 3, 90), { raw: { width: 30, height: 20, channels: 3 } });
    const cases = [
      await base.clone().jpeg().toBuffer(),
      await base.clone().jpeg({ progressive: true }).toBuffer(),
      ...(await Promise.all([3, 6, 8].map((orientation) => base.clone().jpeg().withMetadata({ orientation }).toBuffer()))),
    ];
    for (const bytes of cases) {
      const m = await sharp(bytes).metadata();
      expect(jpegDisplaySize(bytes)).toEqual({ width: m.autoOrient.width, height: m.autoOrient.height });
    }
    expect(jpegDisplaySize(cases[3])).toEqual({ width: 20, height: 30 });
    expect(jpegDisplaySize(await base.clone().png().toBuffer())).toBeNull();
    expect(jpegDisplaySize(cases[0].subarray(0, 10))).toBeNull();
  });
});
