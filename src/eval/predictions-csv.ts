/**
 * Per-sample prediction CSVs: written row by row into a staged file that is renamed into place only when the run
 * finishes (so bounded memory, and never a half-written file), and read back by `graft report --predictions`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { GraftError } from '../errors';
import { stagingPath } from '../io/atomic';
import { topClasses } from '../metrics/topk';

/** Quotes a CSV field when it needs it (RFC 4180). */
export function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The `top_k` cell: `name:score` pairs, best first, separated by `;`. */
export function formatTopK(top: ReadonlyArray<{ label: string; score: number }>): string {
  return top.map((t) => `${t.label}:${t.score.toFixed(4)}`).join(';');
}

/** The `top_k` cell for one row of class scores. */
export function topKCell(scores: ArrayLike<number>, offset: number, classNames: readonly string[], k: number): string {
  return formatTopK(topClasses(scores, offset, classNames.length, k).map((j) => ({ label: classNames[j], score: scores[offset + j] })));
}

/** A CSV written line by line to a staging file; `commit` renames it into place, `abort` removes it. */
export class StagedCsvWriter {
  private readonly tmp: string;
  private readonly fd: number;
  private closed = false;

  /** Starts `file` with a header row. */
  constructor(
    private readonly file: string,
    header: readonly string[],
  ) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.tmp = stagingPath(file);
    this.fd = fs.openSync(this.tmp, 'w');
    this.row(header);
  }

  /** Appends one row. */
  row(fields: ReadonlyArray<string | number>): void {
    fs.writeSync(this.fd, fields.map(csvField).join(',') + '\n');
  }

  /** Flushes and moves the file into place. */
  commit(): void {
    if (this.closed) return;
    this.closed = true;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }

  /** Throws the partial file away (the previous file at the destination, if any, is untouched). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
    fs.rmSync(this.tmp, { force: true });
  }
}

/** True and predicted labels read from a predictions CSV. */
export interface PredictionsTable {
  /** Class names, in index order. */
  classNames: string[];
  /** True class index per row. */
  yTrue: number[];
  /** Predicted class index per row. */
  yPred: number[];
  /** The `path` column when present, else `row N`. */
  sources: string[];
}

/** Options for `readPredictionsCsv`. */
export interface ReadPredictionsOptions {
  /** The classes (e.g. a model's); values must be one of these names or an index into them. Default: found in the file. */
  classNames?: string[];
}

/**
 * Reads a CSV with `label` and `prediction` columns (class names or indices). Without `classNames`, classes are
 * the sorted distinct values (as scikit-learn's `unique_labels`), or 0..max when every value is an index.
 */
export function readPredictionsCsv(file: string, options: ReadPredictionsOptions = {}): PredictionsTable {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new GraftError(`predictions file ${file} does not exist or cannot be read; pass the CSV graft evaluate --format csv wrote, or any CSV with label,prediction columns.`);
  }
  let rows: string[][];
  try {
    rows = parseCsv(text, { skip_empty_lines: true, relax_column_count: false, bom: true, trim: true });
  } catch (err) {
    throw new GraftError(`${file} is not a valid CSV (${(err as Error).message.split('\n')[0]}); fix the file.`);
  }
  if (rows.length === 0) throw new GraftError(`${file} is empty; it needs a header with label,prediction and one row per sample.`);
  const header = rows[0].map((h) => h.toLowerCase());
  const col = (name: string) => header.indexOf(name);
  const [li, pi, si] = [col('label'), col('prediction'), col('path')];
  if (li < 0 || pi < 0) {
    const missing = [li < 0 ? 'label' : null, pi < 0 ? 'prediction' : null].filter(Boolean).join(' and ');
    throw new GraftError(`${file} has no ${missing} column (columns found: ${rows[0].join(', ')}); the header must name label and prediction.`);
  }
  const body = rows.slice(1);
  if (body.length === 0) throw new GraftError(`${file} has a header but no rows; evaluate some samples first.`);
  const values = body.flatMap((r) => [r[li], r[pi]]);
  const isIndex = (v: string) => /^\d+$/.test(v);
  let classNames = options.classNames;
  if (!classNames) {
    classNames = values.every(isIndex)
      ? Array.from({ length: Math.max(...values.map(Number)) + 1 }, (_, i) => String(i))
      : [...new Set(values)].sort();
  }
  const names = classNames;
  const lookup = new Map(names.map((n, i) => [n, i]));
  const toIndex = (v: string, row: number, what: string): number => {
    const byName = lookup.get(v);
    if (byName !== undefined) return byName;
    if (isIndex(v) && Number(v) < names.length) return Number(v);
    const shown = names.length > 12 ? `${names.slice(0, 12).join(', ')}, ...` : names.join(', ');
    throw new GraftError(`${file} row ${row + 2}: ${what} ${JSON.stringify(v)} is not a known class (${shown}) nor an index 0..${names.length - 1}; fix the row or pass the right --model / --classes.`);
  };
  return {
    classNames: names,
    yTrue: body.map((r, i) => toIndex(r[li], i, 'label')),
    yPred: body.map((r, i) => toIndex(r[pi], i, 'prediction')),
    sources: body.map((r, i) => (si >= 0 ? r[si] : `row ${i + 2}`)),
  };
}
