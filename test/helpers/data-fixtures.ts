/** Images the data tests make on the fly: patterns whose position says whether a geometric op happened. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';

/** An RGB image whose left half is red and right half blue, with a green square in the top-left corner. */
export function patternRaw(width: number, height: number): { data: Buffer; width: number; height: number; channels: 3 } {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (x < width / 4 && y < height / 4) data[i + 1] = 255;
      else if (x < width / 2) data[i] = 255;
      else data[i + 2] = 255;
    }
  }
  return { data, width, height, channels: 3 };
}

/** Encodes the pattern with sharp (`png` lossless unless told). */
export async function patternFile(file: string, width: number, height: number, format: 'png' | 'jpeg' = 'png'): Promise<string> {
  const raw = patternRaw(width, height);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const img = sharp(raw.data, { raw: { width, height, channels: 3 } });
  await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toFile(file);
  return file;
}

/** A flat colour image file. */
export async function solidFile(file: string, width: number, height: number, rgb: [number, number, number]): Promise<string> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toFile(file);
  return file;
}

/** Writes an IDX file (optionally gzipped) of unsigned bytes. */
export function writeIdx(file: string, shape: number[], data: Uint8Array, gzip = false): string {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = 0x08;
  header[3] = shape.length;
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  const bytes = Buffer.concat([header, Buffer.from(data)]);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, gzip ? zlib.gzipSync(bytes) : bytes);
  return file;
}

/** A tiny MNIST-style IDX folder: `n` 8x8 images whose pixel value is 20 * label, labels cycling 0..classes-1. */
export function idxFolder(dir: string, options: { n: number; classes: number; split?: 'train' | 't10k'; gzip?: boolean }): string {
  const prefix = options.split ?? 'train';
  const labels = Uint8Array.from({ length: options.n }, (_, i) => i % options.classes);
  const images = new Uint8Array(options.n * 64);
  labels.forEach((l, i) => images.fill(20 * l, i * 64, (i + 1) * 64));
  const ext = options.gzip ? '.gz' : '';
  writeIdx(path.join(dir, `${prefix}-images-idx3-ubyte${ext}`), [options.n, 8, 8], images, options.gzip);
  writeIdx(path.join(dir, `${prefix}-labels-idx1-ubyte${ext}`), [options.n], labels, options.gzip);
  return dir;
}

/** Every file under a folder with its size and modification time, to prove nothing was written there. */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else {
        const st = fs.statSync(full);
        out.push(`${full} ${st.size} ${st.mtimeMs}`);
      }
    }
    out.push(`${d}/`);
  };
  walk(dir);
  return out.sort();
}
