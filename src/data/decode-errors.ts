/**
 * One wording for every image that cannot be used, whichever command met it: sharp's and libvips' messages
 * ("VipsJpeg: premature end of JPEG image", "Input Buffer is empty") become a few plain words ("truncated JPEG",
 * "empty file") that the dataset scan, batches, augment, predict, features and evaluate all print the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Ordered rules: the first whose pattern matches sharp's message names the reason. */
const RULES: Array<[RegExp, string | ((file: string) => string)]> = [
  [/input buffer is empty|input file is empty/i, 'empty file'],
  [/premature end of jpeg|corrupt jpeg data|jpeg datastream contains no image|vipsjpeg: .*(end|truncat)/i, 'truncated JPEG (the file ends early)'],
  [/libpng read error|vipspng|png.*(truncat|crc|idat)|spng/i, 'truncated or damaged PNG'],
  [/webp: unable to parse|webp.*(truncat|corrupt)/i, 'truncated or damaged WebP'],
  [/gif.*(truncat|corrupt|premature)/i, 'truncated or damaged GIF'],
  [/tiff?.*(truncat|corrupt|read error)/i, 'truncated or damaged TIFF'],
  [/unsupported image format|corrupt header/i, (file) => `not an image (${kindByName(file)} sharp cannot read)`],
  [/input file is missing|enoent|no such file/i, 'file does not exist'],
  [/eacces|eperm|permission denied/i, 'permission denied'],
  [/eisdir|is a directory/i, 'a folder, not an image file'],
  [/no image size|has no size/i, 'image has no size'],
];

/** For a decoder warning without detail: a JPEG without its end marker is truncated; anything else is damaged. */
function damagedByBytes(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return 'damaged image data';
  }
  const jpeg = bytes.length > 2 && bytes[0] === 0xff && bytes[1] === 0xd8;
  if (jpeg) return bytes.subarray(-64).includes(Buffer.from([0xff, 0xd9])) ? 'damaged JPEG data' : 'truncated JPEG (the file ends early)';
  const png = bytes.length > 8 && bytes.subarray(1, 4).toString('latin1') === 'PNG';
  if (png) return bytes.subarray(-12).includes(Buffer.from('IEND')) ? 'damaged PNG data' : 'truncated or damaged PNG';
  return 'damaged image data';
}

function kindByName(file: string): string {
  const ext = path.extname(file).slice(1).toLowerCase();
  return ext ? `a .${ext} file` : 'a file';
}

/** The first line of an error's message (libvips messages run over several lines). */
function firstLineOf(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0].trim();
}

/**
 * The one-line reason an image file cannot be used, from the error sharp (or fs) threw while reading `file`.
 * A zero-byte file is "empty file" whatever the decoder said; unknown messages keep sharp's first line.
 */
export function decodeFailureReason(err: unknown, file?: string): string {
  const code = (err as { code?: string })?.code;
  if (code === 'ENOENT') return 'file does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'a folder, not an image file';
  if (file && !file.startsWith('idx:')) {
    const size = fs.statSync(file, { throwIfNoEntry: false })?.size;
    if (size === 0) return 'empty file';
  }
  const message = [code, firstLineOf(err)].filter(Boolean).join(' ');
  // libvips reports some damage only as "Warning treated as error due to failOn setting"; the bytes say what it was.
  if (/warning treated as error/i.test(message)) return file ? damagedByBytes(file) : 'damaged image data';
  for (const [pattern, reason] of RULES) {
    if (pattern.test(message)) return typeof reason === 'string' ? reason : reason(file ?? '');
  }
  return `cannot decode: ${firstLineOf(err)}`;
}

/**
 * The one warning line naming unusable files (the first ten, then a count), shared by every command that skips
 * images so the wording never drifts.
 */
export function skippedFilesLine(where: string, skipped: ReadonlyArray<{ source: string; reason: string }>): string {
  const list = skipped.map((s) => `${s.source} (${s.reason})`);
  const shown = list.slice(0, 10).join('; ') + (list.length > 10 ? `; and ${list.length - 10} more` : '');
  const noun = skipped.length === 1 ? 'file' : 'files';
  return `skipped ${skipped.length} unusable ${noun}${where ? ` in ${where}` : ''}: ${shown}`;
}
