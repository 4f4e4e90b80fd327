/**
 * The one PNG shape datasets of small images come in (8-bit grey or RGB, not interlaced, no palette, transparency or
 * colour profile) decoded with Node's zlib instead of sharp. For a 28x28 image sharp's fixed cost (a thread-pool
 * round trip and a libvips pipeline) is some 50 times the inflate itself. The output is byte-identical to sharp's
 * (a test compares them), and anything outside that shape, or any damage (bad CRC, short data, bad filter), returns
 * null so sharp decodes it and reports errors in its own words.
 */
import * as zlib from 'node:zlib';

/** Raw pixels of a plain PNG. */
export interface PlainPng {
  /** Row-major, channels interleaved, no padding. */
  data: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
}

/** Ancillary chunks that cannot change decoded pixels (anything else sends the file to sharp). */
const HARMLESS = new Set(['pHYs', 'tEXt', 'zTXt', 'iTXt', 'tIME']);

/** Decodes an 8-bit grey or RGB non-interlaced PNG with no colour-changing chunks, or returns null. */
export function decodePlainPng(buf: Uint8Array): PlainPng | null {
  if (buf.length < 33 || buf[0] !== 0x89 || buf[1] !== 0x50 || buf[2] !== 0x4e || buf[3] !== 0x47) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let width = 0;
  let height = 0;
  let channels: 1 | 3 = 1;
  const idat: Uint8Array[] = [];
  let ended = false;
  for (let i = 8; i + 12 <= buf.length; ) {
    const length = view.getUint32(i);
    const type = String.fromCharCode(buf[i + 4], buf[i + 5], buf[i + 6], buf[i + 7]);
    const end = i + 12 + length;
    if (end > buf.length) return null;
    if (type === 'IHDR') {
      if (length !== 13) return null;
      width = view.getUint32(i + 8);
      height = view.getUint32(i + 12);
      const [depth, colour, compression, filter, interlace] = buf.subarray(i + 16, i + 21);
      if (depth !== 8 || (colour !== 0 && colour !== 2) || compression || filter || interlace) return null;
      channels = colour === 0 ? 1 : 3;
    } else if (type === 'IDAT') {
      if (zlib.crc32(buf.subarray(i + 4, i + 8 + length)) !== view.getUint32(i + 8 + length)) return null;
      idat.push(buf.subarray(i + 8, i + 8 + length));
    } else if (type === 'IEND') {
      ended = true;
      break;
    } else if (!HARMLESS.has(type)) {
      return null;
    }
    i = end;
  }
  if (!ended || !width || !height || !idat.length) return null;
  const stride = width * channels;
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat));
  } catch {
    return null;
  }
  if (raw.length !== (stride + 1) * height) return null;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[row + x - channels] : 0;
      const b = y > 0 ? out[prev + x] : 0;
      const v = raw[src + x];
      switch (filter) {
        case 0:
          out[row + x] = v;
          break;
        case 1:
          out[row + x] = v + a;
          break;
        case 2:
          out[row + x] = v + b;
          break;
        case 3:
          out[row + x] = v + ((a + b) >> 1);
          break;
        case 4: {
          const c = x >= channels && y > 0 ? out[prev + x - channels] : 0;
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          out[row + x] = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          return null;
      }
    }
  }
  return { data: out, width, height, channels };
}
