/**
 * Image headers read in JavaScript: format, size and channels from the first bytes of a file, so checking a dataset
 * costs a small read per file instead of a decode (or a trip through sharp's thread pool). Only formats sharp decodes
 * are recognised here; anything else (and anything odd) returns null and the caller asks sharp, whose verdict and
 * wording stay the reference.
 */
import * as fs from 'node:fs';

/** What a header says about an image. */
export interface ImageHeader {
  /** Container format. */
  format: 'png' | 'jpeg' | 'gif' | 'webp';
  /** Stored width in pixels (before any EXIF orientation). */
  width: number;
  /** Stored height in pixels. */
  height: number;
  /** Channels as stored (PNG palette images count 3). */
  channels: number;
}

/** Bytes read from the start of a file: enough for every PNG, GIF and WebP header and most JPEG ones. */
export const HEADER_BYTES = 4096;

/** Reads the first `HEADER_BYTES` of a file (fewer if it is shorter). */
export function readHead(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(HEADER_BYTES);
    const n = fs.readSync(fd, buf, 0, HEADER_BYTES, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Parses a header from the first bytes of a file, or null when the bytes are not a plain PNG, JPEG, GIF or WebP. */
export function parseImageHeader(buf: Uint8Array): ImageHeader | null {
  if (buf.length < 12) return null;
  const size = (width: number, height: number, channels: number, format: ImageHeader['format']) =>
    width > 0 && height > 0 ? { format, width, height, channels } : null;
  // PNG: signature, then IHDR first.
  if (buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47 && buf.length >= 26) {
    if (String.fromCharCode(buf[12], buf[13], buf[14], buf[15]) !== 'IHDR') return null;
    const channels = ({ 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 } as Record<number, number>)[buf[25]];
    return channels ? size(u32be(buf, 16), u32be(buf, 20), channels, 'png') : null;
  }
  if (buf[0] === 0xff && buf[1] === 0xd8) return jpegHeader(buf);
  if (buf[0] === 0x47 && buf[1] === 0x49 && buf[2] === 0x46 && buf[3] === 0x38) {
    return size(buf[6] | (buf[7] << 8), buf[8] | (buf[9] << 8), 3, 'gif');
  }
  if (ascii(buf, 0, 4) === 'RIFF' && ascii(buf, 8, 12) === 'WEBP' && buf.length >= 30) {
    const chunk = ascii(buf, 12, 16);
    if (chunk === 'VP8 ') return size((buf[26] | (buf[27] << 8)) & 0x3fff, (buf[28] | (buf[29] << 8)) & 0x3fff, 3, 'webp');
    if (chunk === 'VP8L') {
      const bits = buf[21] | (buf[22] << 8) | (buf[23] << 16) | (buf[24] << 24);
      return size((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1, 4, 'webp');
    }
    if (chunk === 'VP8X') {
      const w = 1 + (buf[24] | (buf[25] << 8) | (buf[26] << 16));
      const h = 1 + (buf[27] | (buf[28] << 8) | (buf[29] << 16));
      return size(w, h, buf[20] & 0x10 ? 4 : 3, 'webp');
    }
  }
  return null;
}

/** SOF markers that carry the frame size (all but DHT C4, JPG C8 and DAC CC in C0..CF). */
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegHeader(buf: Uint8Array): ImageHeader | null {
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = (buf[i + 2] << 8) | buf[i + 3];
    if (length < 2) return null;
    if (SOF.has(marker)) {
      if (i + 10 > buf.length || length < 8) return null;
      const height = (buf[i + 5] << 8) | buf[i + 6];
      const width = (buf[i + 7] << 8) | buf[i + 8];
      const channels = buf[i + 9];
      return width && height && channels ? { format: 'jpeg', width, height, channels } : null;
    }
    if (marker === 0xda || marker === 0xd9) return null;
    i += 2 + length;
  }
  return null; // the frame header lies beyond the bytes read: let sharp look
}

function u32be(buf: Uint8Array, i: number): number {
  return buf[i] * 0x1000000 + ((buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]);
}

function ascii(buf: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...buf.subarray(start, end));
}
