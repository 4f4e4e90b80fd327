/**
 * The HTML report: one self-contained page (inline CSS, inline SVG charts, thumbnails as data URIs, no network)
 * with the summary, the per-class table, a confusion-matrix heatmap, per-class bars and the worst mistakes.
 * The heatmap SVG is also what `confusion.png` is rendered from, so the picture beside the page is the same one.
 */
import { escapeXml } from '../util/svg';
import { ConfusionMatrix, mostConfused } from './confusion';
import { AverageScores, ClassScores } from './classification';
import { EvaluationReport } from './report';
import { formatFixed } from './text';

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

/** White to dark blue; `t` in [0, 1]. */
function blue(t: number): string {
  const from = [247, 251, 255];
  const to = [8, 48, 107];
  const c = from.map((f, i) => Math.round(f + (to[i] - f) * Math.min(1, Math.max(0, t))));
  return `rgb(${c.join(',')})`;
}

/** Shortens long class names for axis labels, keeping both ends (names often differ only at the end). */
function clip(label: string, max: number): string {
  if (label.length <= max) return label;
  const head = Math.ceil((max - 1) / 2);
  return label.slice(0, head) + '…' + label.slice(label.length - (max - 1 - head));
}

/**
 * The confusion matrix as a heatmap: rows true, columns predicted, colour = share of the row (recall), numbers =
 * counts. Cells shrink for many classes; counts are drawn while they fit.
 */
export function confusionSvg(cm: ConfusionMatrix, options: { title?: string } = {}): string {
  const n = cm.labels.length;
  const cell = Math.max(10, Math.min(56, Math.floor(640 / Math.max(1, n))));
  const longest = Math.min(18, Math.max(...cm.labels.map((l) => l.length), 4));
  const labelSpace = Math.round(longest * 7 + 16);
  const top = 40 + labelSpace;
  const left = 30 + labelSpace;
  // Wide enough for the title even with two or three classes.
  const width = Math.max(left + n * cell + 20, 460);
  const height = top + n * cell + 40;
  const rowSums = cm.matrix.map((r) => r.reduce((a, b) => a + b, 0));
  const fontSize = Math.max(7, Math.min(14, Math.floor(cell / 3)));
  // Axis labels: never taller than a cell; narrow cells get vertical column labels so neighbours do not overlap.
  const axisFont = Math.max(7, Math.min(12, cell - 2));
  const angle = cell < 20 ? -90 : -60;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" font-size="15" text-anchor="middle" font-weight="bold">${escapeXml(options.title ?? 'Confusion matrix (rows: true, columns: predicted)')}</text>`,
  ];
  cm.matrix.forEach((row, t) => {
    const y = top + t * cell;
    out.push(`<text x="${left - 6}" y="${y + cell / 2 + axisFont / 3}" font-size="${axisFont}" text-anchor="end">${escapeXml(clip(cm.labels[t], 18))}</text>`);
    row.forEach((v, p) => {
      const x = left + p * cell;
      const share = rowSums[t] ? v / rowSums[t] : 0;
      out.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${blue(share)}" stroke="#d0d7de" stroke-width="0.5"><title>true ${escapeXml(cm.labels[t])}, predicted ${escapeXml(cm.labels[p])}: ${v}</title></rect>`);
      if (cell >= 18 && v > 0) {
        out.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + fontSize / 3}" font-size="${fontSize}" text-anchor="middle" fill="${share > 0.5 ? '#ffffff' : '#1f2328'}">${v}</text>`);
      }
    });
  });
  cm.labels.forEach((l, p) => {
    const x = left + p * cell + cell / 2;
    out.push(`<text transform="translate(${x + axisFont / 3},${top - 6}) rotate(${angle})" font-size="${axisFont}">${escapeXml(clip(l, 18))}</text>`);
  });
  out.push(`<text x="${left + (n * cell) / 2}" y="${height - 12}" font-size="13" text-anchor="middle">predicted</text>`);
  out.push(`<text transform="translate(16,${top + (n * cell) / 2}) rotate(-90)" font-size="13" text-anchor="middle">true</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** Horizontal bars of precision, recall and F1 per class. */
export function classBarsSvg(classes: readonly ClassScores[]): string {
  const series = [
    { key: 'precision', colour: '#4c78a8' },
    { key: 'recall', colour: '#f58518' },
    { key: 'f1', colour: '#54a24b' },
  ] as const;
  const bar = 9;
  const group = bar * 3 + 10;
  const labelSpace = Math.min(18, Math.max(...classes.map((c) => c.label.length), 4)) * 7 + 12;
  const plot = 420;
  const width = labelSpace + plot + 70;
  const height = 50 + classes.length * group + 20;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
  ];
  series.forEach((s, i) => {
    out.push(`<rect x="${labelSpace + i * 110}" y="10" width="12" height="12" fill="${s.colour}"/><text x="${labelSpace + i * 110 + 18}" y="21" font-size="12">${s.key === 'f1' ? 'F1' : s.key}</text>`);
  });
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const x = labelSpace + t * plot;
    out.push(`<line x1="${x}" y1="36" x2="${x}" y2="${height - 18}" stroke="#d0d7de"/><text x="${x}" y="${height - 4}" font-size="10" text-anchor="middle">${t}</text>`);
  }
  classes.forEach((c, i) => {
    const y = 42 + i * group;
    out.push(`<text x="${labelSpace - 6}" y="${y + group / 2}" font-size="12" text-anchor="end">${escapeXml(clip(c.label, 18))}</text>`);
    series.forEach((s, j) => {
      const v = c[s.key];
      const w = Number.isNaN(v) ? 0 : v * plot;
      out.push(`<rect x="${labelSpace}" y="${y + j * bar}" width="${w.toFixed(1)}" height="${bar - 1}" fill="${s.colour}"><title>${escapeXml(c.label)} ${s.key}: ${formatFixed(v, 4)}</title></rect>`);
    });
    out.push(`<text x="${labelSpace + plot + 6}" y="${y + 2 * bar + 6}" font-size="10" fill="#57606a">n=${c.support}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Options for `reportHtml`. */
export interface ReportHtmlOptions {
  /** Data URIs of mistake thumbnails, keyed by sample source. */
  thumbnails?: Record<string, string>;
  /** File name of the confusion-matrix PNG beside the page, linked from it. */
  confusionPng?: string;
}

function tableRows(rows: Array<{ name: string; s: Omit<ClassScores, 'label'> | AverageScores; strong?: boolean }>): string {
  return rows
    .map(({ name, s, strong }) => {
      const cell = (v: number) => `<td class="num"><span class="bar" style="width:${Number.isNaN(v) ? 0 : (v * 100).toFixed(1)}%"></span><span class="v">${formatFixed(v, 4)}</span></td>`;
      const open = strong ? '<tr class="avg">' : '<tr>';
      return `${open}<th scope="row">${escapeXml(name)}</th>${cell(s.precision)}${cell(s.recall)}${cell(s.f1)}<td class="num">${s.support}</td></tr>`;
    })
    .join('\n');
}

/** The most confused (true, predicted) pairs as a small table, or nothing when there are no errors. */
function confusedTable(cm: ConfusionMatrix): string {
  const pairs = mostConfused(cm, { limit: 10 });
  if (!pairs.length) return '';
  const rows = pairs.map((p) => `<tr><td>${escapeXml(p.actual)}</td><td>${escapeXml(p.predicted)}</td><td class="num">${p.count}</td></tr>`).join('');
  return `<div><h3>Most confused</h3><table class="small"><thead><tr><th>true</th><th>predicted</th><th>count</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** The self-contained HTML page for a report. */
export function reportHtml(report: EvaluationReport, options: ReportHtmlOptions = {}): string {
  const m = report.metrics;
  const cards: Array<[string, string]> = [
    ['accuracy', formatFixed(m.accuracy, 4)],
    ['balanced accuracy', formatFixed(m.balancedAccuracy, 4)],
    ['macro F1', formatFixed(m.averages.macro.f1, 4)],
    // A top-k card only says something when k is below the class count (top-5 of 5 classes is always 1).
    ...report.topK.filter((t) => t.k > 1 && t.k === report.topK.length && t.k < report.counts.confusion.labels.length).map((t): [string, string] => [`top-${t.k} accuracy`, formatFixed(t.accuracy, 4)]),
    ['samples', String(m.samples)],
  ];
  if (report.throughput.seconds > 0) cards.push(['images/s', formatFixed(report.throughput.imagesPerSecond, 1)]);
  const facts = [
    report.model ? ['model', `${report.model.dir} (${report.model.architecture}, ${report.model.inputShape.join('×')}, ${report.model.preprocessing})`] : null,
    ['data', report.data.spec + (report.data.shard ? ` — shard ${report.data.shard.index + 1}/${report.data.shard.count}` : '') + (report.data.mergedShards ? ` — merged from ${report.data.mergedShards.length} shards` : '')],
    report.data.skipped ? ['skipped files', String(report.data.skipped)] : null,
    report.engine ? ['engine', report.engine] : null,
    ['test-time augmentation', report.settings.tta],
    ['zero division', String(report.settings.zeroDivision)],
    report.binary ? ['binary', `positive ${report.binary.label} at threshold ${report.binary.threshold}: precision ${formatFixed(report.binary.precision, 4)}, recall ${formatFixed(report.binary.recall, 4)}, F1 ${formatFixed(report.binary.f1, 4)}`] : null,
    ['created', report.createdAt],
  ].filter((f): f is string[] => f !== null);
  const avgRows = [
    { name: m.microIsAccuracy ? 'micro avg (= accuracy)' : 'micro avg', s: m.averages.micro, strong: true },
    { name: 'macro avg', s: m.averages.macro, strong: true },
    { name: 'weighted avg', s: m.averages.weighted, strong: true },
  ];
  const table = (rows: string) =>
    `<table><thead><tr><th></th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
  const mistakes = report.mistakes
    .map((w) => {
      const thumb = options.thumbnails?.[w.source];
      const img = thumb ? `<img src="${thumb}" alt="${escapeXml(w.source)}">` : '<div class="noimg">no preview</div>';
      return `<figure>${img}<figcaption><b>${escapeXml(w.prediction)}</b> ${formatFixed(w.confidence, 3)}<br>true <b>${escapeXml(w.label)}</b> ${formatFixed(w.trueScore, 3)}<br><code>${escapeXml(w.source)}</code></figcaption></figure>`;
    })
    .join('\n');
  const ml = report.multilabel;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>graft evaluation — ${escapeXml(report.model?.dir ?? report.data.spec)}</title>
<style>
body{font-family:${FONT};margin:24px auto;max-width:1100px;padding:0 16px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #d0d7de;border-radius:8px;padding:8px 14px;min-width:110px}
.card .k{font-size:12px;color:#57606a}.card .v{font-size:22px;font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:3px 14px;font-size:13px;margin:0} dt{color:#57606a} dd{margin:0;word-break:break-all}
table{border-collapse:collapse;font-size:13px;min-width:560px} table.small{min-width:0} h3{font-size:14px;margin:4px 0 8px} th,td{padding:4px 10px;border-bottom:1px solid #eaeef2;text-align:left}
thead th{border-bottom:2px solid #d0d7de} td.num{text-align:right;position:relative;min-width:80px}
td.num .bar{position:absolute;left:0;top:3px;bottom:3px;background:#ddf4ff;z-index:0} td.num .v{position:relative;z-index:1}
tr.avg th,tr.avg td{font-weight:600;background:#f6f8fa}
.charts{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start} .charts svg{max-width:100%;height:auto}
.mistakes{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0;width:150px;font-size:11px}
figure img,.noimg{width:150px;height:150px;object-fit:contain;background:#f6f8fa;border:1px solid #d0d7de;image-rendering:pixelated}
.noimg{display:flex;align-items:center;justify-content:center;color:#8c959f} code{font-size:10px;word-break:break-all;color:#57606a}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px;font-size:13px;margin:6px 0}
</style></head><body>
<h1>Evaluation report</h1>
<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="k">${escapeXml(k)}</div><div class="v">${escapeXml(v)}</div></div>`).join('')}</div>
<dl>${facts.map(([k, v]) => `<dt>${escapeXml(k)}</dt><dd>${escapeXml(v)}</dd>`).join('')}</dl>
${report.warnings.map((w) => `<div class="warn">${escapeXml(w)}</div>`).join('\n')}
<h2>Per-class precision, recall and F1</h2>
${table(tableRows([...m.classes.map((c) => ({ name: c.label, s: c })), ...avgRows]))}
<h2>Confusion matrix</h2>
<div class="charts">${confusionSvg(report.counts.confusion)}
${options.confusionPng ? `<p><a href="${escapeXml(options.confusionPng)}">${escapeXml(options.confusionPng)}</a></p>` : ''}
${confusedTable(report.counts.confusion)}</div>
<h2>Per-class scores</h2>
<div class="charts">${classBarsSvg(m.classes)}</div>
${
  ml
    ? `<h2>Per label at threshold ${ml.threshold} (sigmoid head)</h2><p>subset accuracy ${formatFixed(ml.subsetAccuracy, 4)}, Hamming loss ${formatFixed(ml.hammingLoss, 4)}</p>
${table(tableRows([...ml.classes.map((c) => ({ name: c.label, s: c })), ...(['micro', 'macro', 'weighted', 'samples'] as const).map((k) => ({ name: `${k} avg`, s: ml.averages[k], strong: true }))]))}`
    : ''
}
${report.mistakes.length ? `<h2>Most confidently wrong (${report.mistakes.length})</h2>\n<div class="mistakes">${mistakes}</div>` : ''}
</body></html>
`;
}
