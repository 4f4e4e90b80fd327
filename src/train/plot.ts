/**
 * Training pictures as SVG (rendered to PNG by `svgToPng`): the training curve (loss and accuracy per epoch, train
 * and validation, stage boundaries marked) and the learning-rate finder's loss-versus-rate plot.
 */
import { escapeXml } from '../util/svg';
import { EpochLog } from './loop';

/** One line of a chart. */
export interface Series {
  /** Legend text. */
  name: string;
  /** Line colour. */
  color: string;
  /** Points (x, y); non-finite values are skipped. */
  points: Array<[number, number]>;
  /** Dashed line. */
  dashed?: boolean;
}

/** One chart panel. */
export interface PanelOptions {
  /** Title above the panel. */
  title: string;
  /** X axis label. */
  xLabel: string;
  /** Y axis label. */
  yLabel: string;
  /** The lines. */
  series: Series[];
  /** Logarithmic x axis. */
  logX?: boolean;
  /** Vertical markers (x, label). */
  markers?: Array<{ x: number; label: string; color?: string }>;
  /** Force the y range. */
  yRange?: [number, number];
}

const W = 520;
const H = 340;
const M = { left: 62, right: 16, top: 34, bottom: 46 };

/** "Nice" tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const label = (v: number) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(0) : String(+v.toPrecision(4)));

/** One panel as an SVG group at (x0, 0). */
function panel(p: PanelOptions, x0: number): string {
  const pts = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const fx = (x: number) => (p.logX ? Math.log10(x) : x);
  const xs = pts.map(([x]) => fx(x));
  let [xLo, xHi] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  if (xLo === xHi) [xLo, xHi] = [xLo - 1, xHi + 1];
  let [yLo, yHi] = p.yRange ?? (pts.length ? [Math.min(...pts.map(([, y]) => y)), Math.max(...pts.map(([, y]) => y))] : [0, 1]);
  if (yLo === yHi) [yLo, yHi] = [yLo - 0.5, yHi + 0.5];
  const pad = (yHi - yLo) * 0.05;
  if (!p.yRange) [yLo, yHi] = [yLo - pad, yHi + pad];
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const sx = (x: number) => x0 + M.left + ((fx(x) - xLo) / (xHi - xLo)) * iw;
  const sy = (y: number) => M.top + (1 - (y - yLo) / (yHi - yLo)) * ih;
  const out: string[] = [];
  out.push(`<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(p.title)}</text>`);
  out.push(`<rect x="${x0 + M.left}" y="${M.top}" width="${iw}" height="${ih}" fill="#fff" stroke="#888"/>`);
  for (const t of ticks(yLo, yHi)) {
    out.push(`<line x1="${x0 + M.left}" x2="${x0 + M.left + iw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 + M.left - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${label(t)}</text>`);
  }
  const xt = p.logX ? ticks(Math.ceil(xLo), Math.floor(xHi)).filter(Number.isInteger).map((e) => 10 ** e) : ticks(xLo, xHi).filter((t) => !xs.every(Number.isInteger) || Number.isInteger(t));
  for (const t of xt) {
    out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${M.top + ih}" y2="${M.top + ih + 4}" stroke="#888"/>`);
    out.push(`<text x="${sx(t)}" y="${M.top + ih + 17}" text-anchor="middle" font-size="11">${label(t)}</text>`);
  }
  out.push(`<text x="${x0 + M.left + iw / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${escapeXml(p.xLabel)}</text>`);
  out.push(`<text transform="translate(${x0 + 16},${M.top + ih / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(p.yLabel)}</text>`);
  // Marker labels sit at the bottom, one row each, clear of the legend and of each other.
  (p.markers ?? []).forEach((m, i) => {
    out.push(`<line x1="${sx(m.x)}" x2="${sx(m.x)}" y1="${M.top}" y2="${M.top + ih}" stroke="${m.color ?? '#999'}" stroke-dasharray="3,3"/>`);
    out.push(`<text x="${sx(m.x) + 3}" y="${M.top + ih - 6 - i * 13}" font-size="10" fill="${m.color ?? '#666'}">${escapeXml(m.label)}</text>`);
  });
  p.series.forEach((s, i) => {
    // Points outside a forced y range are drawn on its edge rather than dropped (dropping would bridge the gap).
    const ok = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => [x, Math.min(yHi, Math.max(yLo, y))] as [number, number]);
    if (!ok.length) return;
    const dash = s.dashed ? ' stroke-dasharray="6,4"' : '';
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${ok.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    if (ok.length <= 60) for (const [x, y] of ok) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    const ly = M.top + 14 + i * 16;
    const lx = x0 + M.left + iw - 110;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 22}" y="${ly}" font-size="11">${escapeXml(s.name)}</text>`);
  });
  return out.join('\n');
}

/** Panels side by side as one SVG document. */
export function chartSvg(panels: PanelOptions[]): string {
  const width = W * panels.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${width}" height="${H}" fill="#fafafa"/>`,
    ...panels.map((p, i) => panel(p, i * W)),
    '</svg>',
  ].join('\n');
}

/** The training curve: loss and accuracy per epoch, train and validation, stage starts marked. */
export function trainingCurveSvg(history: EpochLog[]): string {
  const line = (key: keyof EpochLog) => history.map((h) => [h.epoch, h[key] as number] as [number, number]);
  const markers = history
    .filter((h, i) => h.stage && i > 0 && history[i - 1].stage !== h.stage)
    .map((h) => ({ x: h.epoch - 0.5, label: h.stage! }));
  const hasVal = history.some((h) => h.val_loss !== undefined);
  const series = (key: 'loss' | 'accuracy', valKey: 'val_loss' | 'val_accuracy'): Series[] => [
    { name: 'train', color: '#1f77b4', points: line(key) },
    ...(hasVal ? [{ name: 'validation', color: '#d62728', points: line(valKey), dashed: true }] : []),
  ];
  return chartSvg([
    { title: 'Loss', xLabel: 'epoch', yLabel: 'loss', series: series('loss', 'val_loss'), markers },
    { title: 'Accuracy', xLabel: 'epoch', yLabel: 'accuracy', series: series('accuracy', 'val_accuracy'), markers, yRange: [0, 1] },
  ]);
}
