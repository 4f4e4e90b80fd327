/**
 * Feature files written row by row as features are computed, in the forms numpy and pandas read without glue:
 * CSV (`file,f0,f1,...`), JSON Lines (`{"file": ..., "features": [...]}`) and `.npy` (float32 [rows, dim]) with a
 * sidecar `<name>.files.txt` naming each row's image. Rows go to `<file>.partial` (and the sidecar's `.partial`) and
 * are renamed into place when the run ends, so a finished file is always whole; `.npy` reserves a fixed-width
 * header and patches the row count in before the rename. `resume` reopens a partial (or finished) file, drops a
 * half-written last row, and says which images are already there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { GraftError } from '../errors';

/** Formats a feature file can take, chosen by its extension. */
export const FEATURE_FILE_FORMATS = ['csv', 'jsonl', 'npy'] as const;
/** One of `FEATURE_FILE_FORMATS`. */
export type FeatureFileFormat = (typeof FEATURE_FILE_FORMATS)[number];

/** The format a file name asks for (`.csv`, `.jsonl` / `.ndjson`, `.npy`), or an error listing them. */
export function featureFileFormat(file: string): FeatureFileFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.npy') return 'npy';
  throw new GraftError(`--out ${file} has extension ${JSON.stringify(ext)}; use .csv, .jsonl or .npy (with a .files.txt list beside it).`);
}

/** The sidecar that names the rows of a `.npy` file. */
export function npyFilesList(file: string): string {
  return file.replace(/\.npy$/i, '') + '.files.txt';
}

/** Bytes reserved for the `.npy` header: room for any row count up to 20 digits. */
const NPY_HEADER = 128;

function npyHeader(rows: number, dim: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const head = Buffer.alloc(NPY_HEADER, 0x20);
  Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0]).copy(head, 0);
  head.writeUInt16LE(NPY_HEADER - 10, 8);
  head.write(dict, 10, 'latin1');
  head[NPY_HEADER - 1] = 0x0a;
  return head;
}

const quote = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Options of `openFeatureFile`. */
export interface FeatureFileOptions {
  /** Feature vector length. */
  dim: number;
  /** Keep rows already in `<file>.partial` or `<file>` and append; otherwise start afresh. */
  resume?: boolean;
}

/** An open feature file. */
export interface FeatureFile {
  /** Images already written when it was opened (resume), in file order. */
  readonly done: ReadonlySet<string>;
  /** Rows in the file so far. */
  readonly rows: number;
  /** Appends rows: `features` holds `files.length * dim` values, row after row. */
  write(files: readonly string[], features: Float32Array): void;
  /** Finishes the file (patches the `.npy` header, flushes) and renames it into place. */
  close(): Promise<void>;
}

/** Opens a feature file for streaming (see the file comment). */
export async function openFeatureFile(file: string, options: FeatureFileOptions): Promise<FeatureFile> {
  const format = featureFileFormat(file);
  const { dim } = options;
  const partial = `${file}.partial`;
  const list = format === 'npy' ? npyFilesList(file) : undefined;
  const listPartial = list ? `${list}.partial` : undefined;
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  let done: string[] = [];
  if (options.resume) {
    // A finished file is reopened as the partial it was, so new rows append to it.
    if (!fs.existsSync(partial) && fs.existsSync(file)) {
      fs.renameSync(file, partial);
      if (list && fs.existsSync(list)) fs.renameSync(list, listPartial!);
    }
    if (fs.existsSync(partial)) done = await recover(format, partial, listPartial, dim);
  } else {
    fs.rmSync(partial, { force: true });
    if (listPartial) fs.rmSync(listPartial, { force: true });
  }
  const fd = fs.openSync(partial, done.length || (format === 'npy' && fs.existsSync(partial)) ? 'r+' : 'w');
  let position = fs.fstatSync(fd).size;
  const listFd = listPartial ? fs.openSync(listPartial, 'a') : undefined;
  let rows = done.length;
  const append = (data: string | Uint8Array) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    fs.writeSync(fd, buf, 0, buf.length, position);
    position += buf.length;
  };
  if (position === 0) {
    if (format === 'csv') append(['file', ...Array.from({ length: dim }, (_, i) => `f${i}`)].join(',') + '\n');
    if (format === 'npy') append(npyHeader(0, dim));
  }
  return {
    done: new Set(done),
    get rows() {
      return rows;
    },
    write(files, features) {
      if (features.length !== files.length * dim) {
        throw new GraftError(`feature rows hold ${features.length} values for ${files.length} images; expected ${dim} per image.`);
      }
      if (format === 'npy') {
        append(new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
        fs.writeSync(listFd!, files.map((f) => `${f}\n`).join(''));
      } else {
        let text = '';
        for (let i = 0; i < files.length; i++) {
          const row = Array.from(features.subarray(i * dim, (i + 1) * dim), String);
          text += format === 'csv' ? `${quote(files[i])},${row.join(',')}\n` : `{"file":${JSON.stringify(files[i])},"features":[${row.join(',')}]}\n`;
        }
        append(text);
      }
      rows += files.length;
    },
    async close() {
      if (format === 'npy') fs.writeSync(fd, npyHeader(rows, dim), 0, NPY_HEADER, 0);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      if (listFd !== undefined) {
        fs.fsyncSync(listFd);
        fs.closeSync(listFd);
        fs.renameSync(listPartial!, list!);
      }
      fs.renameSync(partial, file);
    },
  };
}

/** Reads the images already in a partial file and cuts off a half-written last row. */
async function recover(format: FeatureFileFormat, partial: string, listPartial: string | undefined, dim: number): Promise<string[]> {
  if (format === 'npy') {
    const size = fs.statSync(partial).size;
    const head = Buffer.alloc(NPY_HEADER);
    const fd = fs.openSync(partial, 'r');
    fs.readSync(fd, head, 0, NPY_HEADER, 0);
    fs.closeSync(fd);
    const shape = /'shape': \((\d+), (\d+)\)/.exec(head.toString('latin1'));
    if (size < NPY_HEADER || !shape) throw new GraftError(`${partial} is not a .npy file graft wrote; remove it or drop --resume.`);
    if (Number(shape[2]) !== dim) throw new GraftError(`${partial} holds ${shape[2]} features per row, this model gives ${dim}; use another --out or drop --resume.`);
    const names = listPartial && fs.existsSync(listPartial) ? await lines(listPartial) : { lines: [], bytes: [] };
    const rows = Math.min(Math.floor((size - NPY_HEADER) / (4 * dim)), names.lines.length);
    fs.truncateSync(partial, NPY_HEADER + rows * 4 * dim);
    if (listPartial) fs.truncateSync(listPartial, names.bytes[rows] ?? 0);
    return names.lines.slice(0, rows);
  }
  const { lines: rows, bytes } = await lines(partial);
  const start = format === 'csv' ? 1 : 0;
  const files: string[] = [];
  let kept = start;
  for (let i = start; i < rows.length; i++) {
    const name = format === 'csv' ? csvFirstField(rows[i]) : jsonlFile(rows[i]);
    if (name === null || countFields(rows[i], format) !== dim) break;
    files.push(name);
    kept = i + 1;
  }
  fs.truncateSync(partial, bytes[kept] ?? 0);
  return files;
}

/** Every complete line of a file, and the byte offset where each line starts (plus where the last one ended). */
async function lines(file: string): Promise<{ lines: string[]; bytes: number[] }> {
  const out: string[] = [];
  const bytes = [0];
  const text = fs.createReadStream(file);
  const size = fs.statSync(file).size;
  let offset = 0;
  try {
    for await (const line of readline.createInterface({ input: text, crlfDelay: Infinity })) {
      const end = offset + Buffer.byteLength(line) + 1;
      if (end > size) break; // the last line has no newline: half written
      out.push(line);
      offset = end;
      bytes.push(offset);
    }
  } finally {
    text.destroy();
  }
  return { lines: out, bytes };
}

function csvFirstField(line: string): string | null {
  if (!line.startsWith('"')) {
    const comma = line.indexOf(',');
    return comma < 0 ? null : line.slice(0, comma);
  }
  const m = /^"((?:[^"]|"")*)",/.exec(line);
  return m ? m[1].replace(/""/g, '"') : null;
}

function jsonlFile(line: string): string | null {
  try {
    const row = JSON.parse(line) as { file?: unknown };
    return typeof row.file === 'string' ? row.file : null;
  } catch {
    return null;
  }
}

function countFields(line: string, format: FeatureFileFormat): number {
  if (format === 'jsonl') {
    const open = line.indexOf('[');
    return open < 0 ? -1 : line.slice(open + 1, line.lastIndexOf(']')).split(',').length;
  }
  const name = csvFirstField(line) ?? '';
  const rest = line.slice(line.startsWith('"') ? quote(name).length + 1 : name.length + 1);
  return rest.split(',').length;
}
