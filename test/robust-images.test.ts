/**
 * Operator robustness (issue 15) on image files: one wording for unusable images on every path, and predict /
 * features / augment skip an unreadable file and name it instead of aborting.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeFailureReason } from '../src/data/decode-errors';
import { tmpDir } from './helpers/tmp';
import { runCli as graft } from './helpers/run-cli';

const root = tmpDir('graft-robust-images-');
const MODEL = path.join(__dirname, '..', 'models', 'fashion-mnist-0-4');
const FM = path.join(__dirname, '..', 'datasets', 'fashion-mnist-5-9', 'train');

/** A noisy 120x90 JPEG (big enough that a third of it is a real truncation) cut to a third of its bytes. */
async function truncatedJpeg(file: string): Promise<string> {
  const raw = Buffer.alloc(120 * 90 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  const jpeg = await sharp(raw, { raw: { width: 120, height: 90, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, jpeg.subarray(0, Math.floor(jpeg.length / 3)));
  return file;
}

/** A folder of three good Fashion-MNIST images, a truncated JPEG and an empty file. */
async function mixedFolder(dir: string): Promise<string> {
  const good = fs.readdirSync(path.join(FM, '5-Sandal')).slice(0, 3);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of good) fs.copyFileSync(path.join(FM, '5-Sandal', f), path.join(dir, f));
  await truncatedJpeg(path.join(dir, 'cut.jpg'));
  fs.writeFileSync(path.join(dir, 'zero.png'), '');
  return dir;
}

describe('decode failures read the same everywhere', () => {
  test('sharp messages become our words', async () => {
    const cut = await truncatedJpeg(path.join(root, 'w', 'cut.jpg'));
    const empty = path.join(root, 'w', 'empty.jpg');
    fs.writeFileSync(empty, '');
    const text = path.join(root, 'w', 'notes.png');
    fs.writeFileSync(text, 'hello, not an image');
    const reason = async (file: string) => sharp(file, { failOn: 'warning' }).raw().toBuffer().then(() => 'decoded', (err) => decodeFailureReason(err, file));
    expect(await reason(cut)).toBe('truncated JPEG (the file ends early)');
    expect(await reason(empty)).toBe('empty file');
    expect(await reason(text)).toBe('not an image (a .png file sharp cannot read)');
    expect(await reason(path.join(root, 'w', 'gone.jpg'))).toBe('file does not exist');
  });

  test('graft augment skips a truncated JPEG, names it, and still writes the sheet', async () => {
    const data = path.join(root, 'aug');
    for (const c of ['5-Sandal', '6-Shirt']) {
      fs.mkdirSync(path.join(data, c), { recursive: true });
      for (const f of fs.readdirSync(path.join(FM, c)).slice(0, 2)) fs.copyFileSync(path.join(FM, c, f), path.join(data, c, f));
    }
    await truncatedJpeg(path.join(data, '5-Sandal', 'aaa-cut.jpg'));
    const out = path.join(root, 'sheet.png');
    const r = await graft('augment', '--data', data, '--out', out, '--n', '4', '--variants', '1', '--tile', '32');
    expect(r.err).toContain(`${path.join(data, '5-Sandal', 'aaa-cut.jpg')} (truncated JPEG (the file ends early))`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/4 images\)/);
    expect(fs.existsSync(out)).toBe(true);
  });
});

describe('predict and features skip an unreadable file', () => {
  test('predict prints the good images and names the bad ones; --strict makes it an error', async () => {
    const dir = await mixedFolder(path.join(root, 'pred'));
    const r = await graft('predict', '--model', MODEL, '--engine', 'tfjs', dir);
    expect(r.code).toBe(0);
    const rows = r.out.trim().split('\n');
    expect(rows).toHaveLength(1 + 3);
    expect(rows.slice(1).every((row) => row.includes('train-'))).toBe(true);
    expect(r.err).toContain('skipped 2 unusable files');
    expect(r.err).toContain(`${path.join(dir, 'cut.jpg')} (truncated JPEG (the file ends early))`);
    expect(r.err).toContain(`${path.join(dir, 'zero.png')} (empty file)`);
    expect(r.err).not.toMatch(/unexpected error/);
    const strict = await graft('predict', '--model', MODEL, '--engine', 'tfjs', '--strict', dir);
    expect(strict.code).toBe(1);
    expect(strict.err).toMatch(/^graft: cannot use 2 unusable files: .*cut\.jpg \(truncated JPEG.*drop --strict to skip them\.\n$/);
    expect(strict.out).toBe('');
  });

  test('features gives a vector for each good image and names the bad ones', async () => {
    const dir = await mixedFolder(path.join(root, 'feat'));
    const r = await graft('features', '--weights', MODEL, '--engine', 'tfjs', '--format', 'csv', dir);
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(1 + 3);
    expect(r.err).toContain(`${path.join(dir, 'cut.jpg')} (truncated JPEG (the file ends early))`);
    const strict = await graft('features', '--weights', MODEL, '--engine', 'tfjs', '--strict', dir);
    expect(strict.code).toBe(1);
    // --strict stops at the first unusable file and names it (issue 14: checks read headers; decoding finds the rest).
    expect(strict.err).toMatch(/^graft: dataset \S*feat: 1 files or folders are unusable: .*feat\/(zero\.png|cut\.jpg) \(.*\)\. Fix or remove them, or drop --strict to skip them\.\n$/);
  });
});
