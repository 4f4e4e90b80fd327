import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { openDataset } from '../src/data/dataset';
import { FASHION_MNIST_CLASSES } from '../src/data/fashion-mnist';
import { tmpDir } from './helpers/tmp';
import { idxFolder, snapshot } from './helpers/data-fixtures';
import { runCli as graft } from './helpers/run-cli';

const root = tmpDir('graft-data-cli-');
const REPO = path.join(__dirname, '..');

describe('graft dataset fashion-mnist', () => {
  // 40 images of 8x8, labels cycling 0..9, pixel value 20 * label
  const idx = idxFolder(path.join(root, 'idx'), { n: 40, classes: 10, gzip: true });

  test('writes <label>-<name> class folders of PNGs, the first N per class, and refuses to overwrite', async () => {
    const out = path.join(root, 'fm');
    const r = await graft('dataset', 'fashion-mnist', '--idx', idx, '--out', out, '--classes', '5-7,Bag', '--per-class', '3');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/wrote 12 images to .*fm: 5-Sandal 3, 6-Shirt 3, 7-Sneaker 3, 8-Bag 3/);
    expect(fs.readdirSync(out).sort()).toEqual(['5-Sandal', '6-Shirt', '7-Sneaker', '8-Bag']);
    expect(fs.readdirSync(path.join(out, '6-Shirt')).sort()).toEqual(['train-06.png', 'train-16.png', 'train-26.png']);
    const png = sharp(path.join(out, '6-Shirt', 'train-16.png'));
    const meta = await png.metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([8, 8, 1]);
    expect(new Set(await png.raw().toBuffer())).toEqual(new Set([120]));
    const ds = await openDataset(out, { log: null });
    expect(ds.classNames).toEqual(['5-Sandal', '6-Shirt', '7-Sneaker', '8-Bag']);
    const again = await graft('dataset', 'fashion-mnist', '--idx', idx, '--out', out);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already exists and is not an empty folder; choose a new --out folder/);
  });

  test('bad class names, splits and IDX folders are one-line errors', async () => {
    const bad = await graft('dataset', 'fashion-mnist', '--idx', idx, '--out', path.join(root, 'x'), '--classes', 'Hat');
    expect(bad.err).toMatch(/^graft: Fashion-MNIST has no class "Hat"; use labels 0-9, a range like 5-9, or names T-shirt_top, .*Ankle_boot\.\n$/);
    const split = await graft('dataset', 'fashion-mnist', '--idx', idx, '--out', path.join(root, 'y'), '--split', 'val');
    expect(split.err).toMatch(/split must be one of train, test; received "val"/);
    const none = await graft('dataset', 'fashion-mnist', '--idx', path.join(root, 'nowhere'), '--out', path.join(root, 'z'));
    expect(none.err).toMatch(/IDX folder .*nowhere does not exist; install Debian's dataset-fashion-mnist package or give --idx/);
    expect(fs.existsSync(path.join(root, 'x'))).toBe(false);
    expect(FASHION_MNIST_CLASSES).toHaveLength(10);
  });
});

describe('graft dataset check and graft augment', () => {
  test('check lists classes and counts; augment writes a contact sheet and leaves the data untouched', async () => {
    const data = path.join(REPO, 'datasets', 'fashion-mnist-0-4', 'train');
    const before = snapshot(data);
    const check = await graft('dataset', 'check', data, '--json');
    expect(check.code).toBe(0);
    const report = JSON.parse(check.out);
    expect(report.classes).toEqual(['0-T-shirt_top', '1-Trouser', '2-Pullover', '3-Dress', '4-Coat'].map((name) => ({ name, images: 20 })));
    const sheet = path.join(root, 'sheet.png');
    const r = await graft('augment', '--data', data, '--out', sheet, '--n', '5', '--variants', '4', '--tile', '48', '--aug', 'strong', '--seed', '9');
    expect(r.code).toBe(0);
    const meta = await sharp(sheet).metadata();
    expect([meta.width, meta.height]).toEqual([150 + 5 * 52 + 4, 22 + 5 * 52 + 4]);
    const unknown = await graft('augment', '--data', data, '--out', sheet, '--aug', '[{"op":"zoom"}]');
    expect(unknown.err).toMatch(/^graft: augmentation step 1 op must be one of randomResizedCrop, .*; received "zoom"\.\n$/);
    expect(snapshot(data)).toEqual(before);
  });

  test('the committed Fashion-MNIST samples have the documented classes and counts', async () => {
    const counts = async (dir: string) => {
      const ds = await openDataset(path.join(REPO, 'datasets', dir), { verify: 'header', strict: true });
      return ds.classNames.map((c, l) => `${c}:${ds.samples.filter((s) => s.label === l).length}`);
    };
    const five = ['5-Sandal', '6-Shirt', '7-Sneaker', '8-Bag', '9-Ankle_boot'];
    expect(await counts('fashion-mnist-5-9/train')).toEqual(five.map((c) => `${c}:50`));
    expect(await counts('fashion-mnist-5-9/test')).toEqual(five.map((c) => `${c}:100`));
    expect(await counts('fashion-mnist-0-4/train')).toHaveLength(5);
  });
});
