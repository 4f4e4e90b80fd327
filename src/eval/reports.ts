/**
 * Writing reports to disk (every file atomically) and making reports from files: a predictions CSV
 * (`graft report --predictions`) or shard reports (`graft report --merge`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { GraftError, oneOf } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { readGraftMeta } from '../io/graft-json';
import { svgToPng } from '../util/svg';
import { readSource } from '../data/image';
import {
  EvaluationReport,
  Mistake,
  ZeroDivision,
  buildReport,
  confusionMatrix,
  confusionSvg,
  formatReportMarkdown,
  formatReportText,
  mergeReports,
  reportHtml,
  validateReport,
  zeroDivisionOption,
} from '../metrics';
import { readPredictionsCsv } from './predictions-csv';

/** Report formats: `text` (the scikit-learn table), `json`, `md`, `html` (+ confusion PNG), `csv` (per-sample predictions). */
export const REPORT_FORMATS = ['text', 'json', 'md', 'html', 'csv'] as const;
/** One of `REPORT_FORMATS`. */
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Parses a list of format names, rejecting typos. */
export function reportFormats(values: readonly string[]): ReportFormat[] {
  return [...new Set(values.map((v) => oneOf('--format', v, REPORT_FORMATS)))];
}

/** The files a report base path expands to: `runs/eval.json` or `runs/eval` -> runs/eval.json, .md, .html, ...; `runs/` -> runs/report.* */
export function reportPaths(out: string): Record<'json' | 'md' | 'html' | 'png' | 'text' | 'csv', string> {
  // A folder (existing, or written with a trailing slash) gets report.* inside it.
  let isFolder = /[\\/]$/.test(out);
  try {
    isFolder ||= fs.statSync(out).isDirectory();
  } catch {
    // Missing, or under a file: not a folder (the output check says what is wrong with it).
  }
  const base = isFolder ? path.join(out, 'report') : out.replace(/\.(json|md|html|txt|csv)$/i, '');
  return {
    json: `${base}.json`,
    md: `${base}.md`,
    html: `${base}.html`,
    png: `${base}.confusion.png`,
    text: `${base}.txt`,
    csv: `${base}.predictions.csv`,
  };
}

/** Options for `mistakeThumbnails`. */
export interface ThumbnailOptions {
  /** Longest side in pixels (default 150). */
  size?: number;
  /** Largest thumbnail in bytes (default 48 KiB), keeping the page light: bigger ones are scaled down until they fit. */
  maxBytes?: number;
}

/**
 * Small JPEG data URIs of the mistakes' images (photos compress several times better as JPEG than PNG), each
 * scaled down until it fits `maxBytes`; sources that cannot be read (moved files) are left out.
 */
export async function mistakeThumbnails(mistakes: readonly Mistake[], options: ThumbnailOptions = {}): Promise<Record<string, string>> {
  const size = options.size ?? 150;
  const maxBytes = options.maxBytes ?? 48 * 1024;
  const out: Record<string, string> = {};
  for (const m of mistakes) {
    try {
      const input = await readSource(m.source);
      const img = Buffer.isBuffer(input) ? sharp(input) : sharp(input.data, { raw: { width: input.width, height: input.height, channels: input.channels } });
      const base = await img
        .rotate()
        .resize(size, size, { fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      for (let side = size; side >= 16; side = Math.floor(side * 0.7)) {
        const raw = sharp(base.data, { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } });
        const jpeg = await raw.resize(side, side, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 80, mozjpeg: true }).toBuffer();
        if (jpeg.byteLength <= maxBytes) {
          out[m.source] = `data:image/jpeg;base64,${jpeg.toString('base64')}`;
          break;
        }
      }
    } catch {
      // A missing preview is not worth failing a report over; the page says "no preview".
    }
  }
  return out;
}

/** Options for `writeReports`. */
export interface WriteReportsOptions {
  /** Base path (`runs/eval.json` or `runs/eval`); each format gets its own extension. */
  out: string;
  /** Formats to write; `text` goes to `.txt`, `csv` is written by `evaluate` itself. */
  formats: readonly ReportFormat[];
}

/** Writes the report in each format (each file atomically; html also writes the confusion PNG). Returns the paths. */
export async function writeReports(report: EvaluationReport, options: WriteReportsOptions): Promise<string[]> {
  const paths = reportPaths(options.out);
  const written: string[] = [];
  const write = async (file: string, data: string | Uint8Array) => {
    await writeFileAtomic(file, data);
    written.push(file);
  };
  for (const format of options.formats) {
    if (format === 'json') await write(paths.json, JSON.stringify(report, null, 2) + '\n');
    if (format === 'md') await write(paths.md, formatReportMarkdown(report));
    if (format === 'text') await write(paths.text, formatReportText(report));
    if (format === 'html') {
      await write(paths.png, await svgToPng(confusionSvg(report.counts.confusion)));
      const thumbnails = await mistakeThumbnails(report.mistakes);
      await write(paths.html, reportHtml(report, { thumbnails, confusionPng: path.basename(paths.png) }));
    }
  }
  return written;
}

/** Reads and validates a report JSON file. */
export function readReportFile(file: string): EvaluationReport {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new GraftError(`report ${file} does not exist or cannot be read; pass the JSON files graft evaluate --out wrote.`);
  }
  try {
    return validateReport(JSON.parse(text), file);
  } catch (err) {
    if (err instanceof GraftError) throw err;
    throw new GraftError(`${file} is not valid JSON (${(err as Error).message}); pass the JSON files graft evaluate --out wrote.`);
  }
}

/** Merges shard report files into the whole-run report. */
export function mergeReportFiles(files: readonly string[]): EvaluationReport {
  return mergeReports(files.map(readReportFile), { names: [...files] });
}

/** Options for `reportFromPredictions`. */
export interface ReportFromPredictionsOptions {
  /** A model folder whose classes the labels name (or index). */
  model?: string;
  /** The classes, in index order, instead of a model. */
  classNames?: string[];
  /** What ill-defined scores become. */
  zeroDivision?: ZeroDivision | string;
}

/** A report from a CSV of `label,prediction` (names or indices), e.g. another tool's predictions. */
export function reportFromPredictions(file: string, options: ReportFromPredictionsOptions = {}): EvaluationReport {
  if (options.model && options.classNames) throw new GraftError('pass either a model or class names, not both; the model already names its classes.');
  const classNames = options.classNames ?? (options.model ? readGraftMeta(options.model).classNames : undefined);
  const table = readPredictionsCsv(file, { classNames });
  return buildReport({
    model: null,
    engine: null,
    data: { spec: file, samples: table.yTrue.length, skipped: 0, shard: null },
    settings: { tta: 'none', topK: 1, mistakes: 0, zeroDivision: zeroDivisionOption(options.zeroDivision) },
    throughput: { seconds: 0, imagesPerSecond: 0 },
    counts: {
      confusion: confusionMatrix(table.yTrue, table.yPred, table.classNames),
      topK: [{ k: 1, hits: table.yTrue.filter((t, i) => t === table.yPred[i]).length }],
    },
    mistakes: [],
  });
}
