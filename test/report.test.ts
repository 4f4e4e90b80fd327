import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  EvaluationReport,
  addMultilabelSample,
  buildReport,
  confusionMatrix,
  emptyMultilabelCounts,
  formatReportMarkdown,
  formatReportText,
  mergeReports,
  reportHtml,
  validateReport,
} from '../src/metrics';
import { readReportFile, reportPaths } from '../src/eval';
import { tmpDir } from './helpers/tmp';

const Y_TRUE = [0, 0, 1, 1, 2, 2, 0, 1];
const Y_PRED = [0, 1, 1, 0, 2, 0, 0, 0];
const ALL = Y_TRUE.map((_, i) => i);

/** A report over the samples `ids` of Y_TRUE / Y_PRED, classes with awkward names, built from counts only. */
function report(ids: number[], shard: { index: number; count: number } | null, extra: Partial<EvaluationReport['settings']> = {}): EvaluationReport {
  const labels = ['<cat>', 'dog & co', 'fox|wolf'];
  const [yTrue, yPred] = [ids.map((i) => Y_TRUE[i]), ids.map((i) => Y_PRED[i])];
  const ml = emptyMultilabelCounts(labels, 0.5);
  yTrue.forEach((t, i) => addMultilabelSample(ml, labels.map((_, j) => j === t), labels.map((_, j) => (j === yPred[i] ? 0.9 : 0.1))));
  return buildReport({
    model: { dir: 'm', architecture: 'custom', classNames: labels, inputShape: [8, 8, 3], preprocessing: 'unit', outputActivation: 'sigmoid' },
    engine: 'test',
    data: { spec: 'data', samples: yTrue.length, skipped: 0, shard },
    settings: { tta: 'none', topK: 1, mistakes: 3, zeroDivision: 'warn', threshold: 0.5, ...extra },
    throughput: { seconds: 1, imagesPerSecond: yTrue.length },
    counts: {
      confusion: confusionMatrix(yTrue, yPred, labels),
      topK: [{ k: 1, hits: yTrue.filter((t, i) => t === yPred[i]).length }],
      multilabel: ml,
    },
    mistakes: ids
      .filter((i) => Y_TRUE[i] !== Y_PRED[i])
      .map((i) => ({ source: `img${i}.png`, label: labels[Y_TRUE[i]], prediction: labels[Y_PRED[i]], confidence: 0.9, trueScore: 0.1 - i / 100, loss: -Math.log(0.1 - i / 100) })),
  });
}

describe('report formats and merging', () => {
  const whole = report(ALL, null);
  const dir = tmpDir();

  test('merging shards of a multi-label run equals the whole run, mistakes included', () => {
    // Through JSON, as shard reports travel between machines.
    const parts = [0, 1, 2].map((s) => JSON.parse(JSON.stringify(report(ALL.filter((i) => i % 3 === s), { index: s, count: 3 }))));
    const merged = mergeReports(parts);
    expect(merged.counts).toEqual(whole.counts);
    expect(merged.metrics).toEqual(whole.metrics);
    expect(merged.multilabel).toEqual(whole.multilabel);
    expect(merged.mistakes).toEqual(whole.mistakes);
    expect(merged.mistakes).toHaveLength(3);
  });

  test('shards run with different settings, or unrelated files, are refused', () => {
    const a = report(ALL.slice(0, 4), { index: 0, count: 2 });
    const b = report(ALL.slice(4), { index: 1, count: 2 }, { tta: 'flip' });
    expect(() => mergeReports([a, b], { names: ['a.json', 'b.json'] })).toThrow(/b\.json was evaluated with different settings .*"tta":"flip".* than a\.json/);
    expect(() => mergeReports([whole, whole])).toThrow(/are whole-dataset reports, not shards/);
    expect(() => validateReport({ hello: 1 }, 'x.json')).toThrow(/x\.json is not a graft evaluation report/);
    fs.writeFileSync(path.join(dir, 'r.json'), '{"format": "graft-evaluation", ');
    expect(() => readReportFile(path.join(dir, 'r.json'))).toThrow(/r\.json is not valid JSON/);
    expect(() => readReportFile(path.join(dir, 'none.json'))).toThrow(/none\.json does not exist/);
  });

  test('report paths: one base, an extension per format; a folder gets report.*', () => {
    expect(reportPaths('runs/eval.json')).toMatchObject({ json: 'runs/eval.json', html: 'runs/eval.html', png: 'runs/eval.confusion.png', csv: 'runs/eval.predictions.csv' });
    expect(reportPaths('runs/eval').md).toBe('runs/eval.md');
    expect(reportPaths(dir).json).toBe(path.join(dir, 'report.json'));
    expect(reportPaths('new-folder/').text).toBe(path.join('new-folder', 'report.txt'));
  });

  test('text, Markdown and HTML show the same numbers and escape class names', () => {
    const text = formatReportText(whole);
    expect(text).toMatch(/^ {7}<cat> {7}0\.40 {6}0\.67 {6}0\.50 {9}3$/m); // tp 2, predicted 5, actual 3
    expect(text).toMatch(/^ samples avg /m); // multi-label section
    const md = formatReportMarkdown(whole);
    expect(md).toContain('| fox\\|wolf | 1.0000 | 0.5000 | 0.6667 | 2 |');
    const html = reportHtml(whole, { thumbnails: { 'img3.png': 'data:image/png;base64,AAAA' } });
    expect(html).toContain('&lt;cat&gt;');
    expect(html).not.toContain('<cat>');
    expect(html).toContain('dog &amp; co');
    expect(html).toContain('<img src="data:image/png;base64,AAAA"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });
});
