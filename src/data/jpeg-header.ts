/**
 * Reads a JPEG's size and EXIF orientation from its header bytes. Cropping needs the image size before sharp's
 * pipeline is built; asking sharp (`metadata()`) costs a second header parse and a thread-pool round trip per image,
 * which is measurable at hundreds of images per second. Anything unexpected returns null and the caller asks sharp.
 */

/** SOF markers that carry the frame size (all but DHT C4, JPG C8 and DAC CC in C0..CF). */
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Width and height as displayed (EXIF orientation 5-8 swaps them), or null if the bytes are not a plain JPEG. */
export function jpegDisplaySize(buf: Uint8Array): { width: number; height: number } | null {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return null;
  const u16 = (i: number) => (buf[i] << 8) | buf[i + 1];
  let orientation = 1;
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const length = u16(i + 2);
    if (length < 2 || i + 2 + length > buf.length) return null;
    if (marker === 0xe1) orientation = exifOrientation(buf, i + 4, i + 2 + length) ?? orientation;
    if (SOF.has(marker)) {
      if (length < 7) return null;
      const height = u16(i + 5);
      const width = u16(i + 7);
      if (!width || !height) return null;
      return orientation >= 5 && orientation <= 8 ? { width: height, height: width } : { width, height };
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan data before any frame header: not for us
    i += 2 + length;
  }
  return null;
}

/** The orientation tag of an APP1 Exif segment spanning [start, end), or null. */
function exifOrientation(buf: Uint8Array, start: number, end: number): number | null {
  // "Exif\0\0" then a TIFF header
  if (end - start < 14 || buf[start] !== 0x45 || buf[start + 1] !== 0x78 || buf[start + 2] !== 0x69 || buf[start + 3] !== 0x66) return null;
  const t = start + 6;
  const little = buf[t] === 0x49 && buf[t + 1] === 0x49;
  if (!little && !(buf[t] === 0x4d && buf[t + 1] === 0x4d)) return null;
  const u16 = (i: number) => (little ? buf[i] | (buf[i + 1] << 8) : (buf[i] << 8) | buf[i + 1]);
  const u32 = (i: number) => (little ? u16(i) + u16(i + 2) * 65536 : u16(i) * 65536 + u16(i + 2));
  const ifd = t + u32(t + 4);
  if (ifd + 2 > end) return null;
  const count = u16(ifd);
  for (let k = 0; k < count; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > end) return null;
    if (u16(e) === 0x0112) return u16(e + 8);
  }
  return null;
}
