import {
  addConfusionMatrices,
  addMultilabelCounts,
  addMultilabelSample,
  binaryScores,
  classificationReportDict,
  classificationMetrics,
  confusionMatrix,
  emptyMultilabelCounts,
  formatClassificationReport,
  formatFixed,
  mostConfused,
  multilabelMetrics,
  predictedIndex,
  topKHits,
  zeroDivisionOption,
} from '../src/metrics';
import { GraftError } from '../src/errors';

// Hand-worked case: d is an explicit label absent from the data, c has true samples but is never predicted.
const LABELS = ['a', 'b', 'c', 'd'];
const Y_TRUE = [0, 0, 1, 1, 1, 2];
const Y_PRED = [0, 1, 1, 1, 0, 0];
// tp = [1, 2, 0, 0], predicted = [3, 3, 0, 0], actual = [2, 3, 1, 0]
const cm = confusionMatrix(Y_TRUE, Y_PRED, LABELS);

const close = (got: number[], want: number[]) => {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => (Number.isNaN(want[i]) ? expect(g).toBeNaN() : expect(g).toBeCloseTo(want[i], 12)));
};
const col = (m: ReturnType<typeof classificationMetrics>, k: 'precision' | 'recall' | 'f1') => m.classes.map((c) => c[k]);
const avg = (m: ReturnType<typeof classificationMetrics>, k: 'precision' | 'recall' | 'f1') => [m.averages.micro[k], m.averages.macro[k], m.averages.weighted[k]];

describe('classification metrics match scikit-learn edge cases (hand-worked)', () => {
  test('confusion matrix layout: rows true, columns predicted', () => {
    expect(cm.matrix).toEqual([
      [1, 1, 0, 0],
      [1, 2, 0, 0],
      [1, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
  });

  test("zeroDivision 'warn': ill-defined values are 0 and a warning names the classes", () => {
    const m = classificationMetrics(cm);
    close(col(m, 'precision'), [1 / 3, 2 / 3, 0, 0]);
    close(col(m, 'recall'), [1 / 2, 2 / 3, 0, 0]);
    // c has a true sample and no predictions: F1 = 2tp/(2tp+fp+fn) = 0, defined, whatever zeroDivision says.
    close(col(m, 'f1'), [0.4, 2 / 3, 0, 0]);
    expect(m.classes.map((c) => c.support)).toEqual([2, 3, 1, 0]);
    close(avg(m, 'precision'), [0.5, 1 / 4, 4 / 9]);
    close(avg(m, 'recall'), [0.5, 7 / 24, 0.5]);
    close(avg(m, 'f1'), [0.5, 4 / 15, 7 / 15]);
    expect(m.accuracy).toBe(0.5);
    expect(m.balancedAccuracy).toBeCloseTo(7 / 18, 12); // mean recall of a, b, c; d has no true samples
    expect(m.microIsAccuracy).toBe(true);
    expect(m.warnings).toHaveLength(3);
    expect(m.warnings[0]).toMatch(/^Precision is ill-defined .* no predicted samples: c, d\./);
    expect(m.warnings[1]).toMatch(/^Recall is ill-defined .* no true samples: d\./);
    expect(m.warnings[2]).toMatch(/^F-score is ill-defined .* no true nor predicted samples: d\./);
  });

  test('zeroDivision 0 gives the same numbers without warnings', () => {
    const m = classificationMetrics(cm, { zeroDivision: 0 });
    close(avg(m, 'precision'), [0.5, 1 / 4, 4 / 9]);
    expect(m.warnings).toEqual([]);
  });

  test('zeroDivision 1: ill-defined precision/recall/F1 become 1', () => {
    const m = classificationMetrics(cm, { zeroDivision: 1 });
    close(col(m, 'precision'), [1 / 3, 2 / 3, 1, 1]);
    close(col(m, 'recall'), [1 / 2, 2 / 3, 0, 1]);
    close(col(m, 'f1'), [0.4, 2 / 3, 0, 1]);
    close(avg(m, 'precision'), [0.5, 3 / 4, 11 / 18]);
    close(avg(m, 'recall'), [0.5, 13 / 24, 0.5]);
    close(avg(m, 'f1'), [0.5, 31 / 60, 7 / 15]);
  });

  test("zeroDivision 'nan': NaN per class, skipped by the averages", () => {
    const m = classificationMetrics(cm, { zeroDivision: 'nan' });
    close(col(m, 'precision'), [1 / 3, 2 / 3, NaN, NaN]);
    close(avg(m, 'precision'), [0.5, 0.5, 8 / 15]);
    close(avg(m, 'recall'), [0.5, 7 / 18, 0.5]);
    close(avg(m, 'f1'), [0.5, 16 / 45, 7 / 15]);
  });

  test('explicit label subsets: micro average over the subset, and all-zero support falls back to the plain mean', () => {
    const sub = classificationMetrics(cm, { labels: ['b', 'a'] });
    expect(sub.classes.map((c) => c.label)).toEqual(['b', 'a']);
    close(avg(sub, 'precision').slice(0, 1), [0.5]); // tp 3 / predicted 6
    close(avg(sub, 'recall').slice(0, 1), [3 / 5]); // tp 3 / actual 5
    close(avg(sub, 'f1').slice(0, 1), [6 / 11]);
    expect(sub.microIsAccuracy).toBe(false); // c occurs but is not reported: the row is "micro avg"
    const onlyD = classificationMetrics(cm, { labels: ['d'], zeroDivision: 1 });
    close([onlyD.averages.weighted.precision, onlyD.averages.weighted.f1, onlyD.averages.micro.recall], [1, 1, 1]);
    expect(() => classificationMetrics(cm, { labels: ['e'] })).toThrow(/class "e" is not one of the model's classes \(a, b, c, d\)/);
  });

  test('zeroDivision option parsing rejects typos with the valid values', () => {
    expect(zeroDivisionOption('1')).toBe(1);
    expect(zeroDivisionOption(undefined)).toBe('warn');
    expect(() => zeroDivisionOption('zero')).toThrow(/zeroDivision must be one of warn, 0, 1, nan; received "zero"/);
  });

  test('binary: threshold decides, positive label scored alone', () => {
    const pos = [0.9, 0.6, 0.4, 0.7, 0.2];
    const truth = [1, 1, 1, 0, 0];
    const scores = pos.flatMap((p) => [1 - p, p]);
    const at = (threshold: number) => {
      const pred = truth.map((_, i) => predictedIndex(scores, 2 * i, 2, { positiveIndex: 1, threshold }));
      return binaryScores(classificationMetrics(confusionMatrix(truth, pred, ['neg', 'pos'])), 'pos');
    };
    const half = at(0.5);
    close([half.precision, half.recall, half.f1], [2 / 3, 2 / 3, 2 / 3]);
    const high = at(0.65);
    close([high.precision, high.recall, high.f1], [0.5, 1 / 3, 0.4]);
    expect(() => binaryScores(classificationMetrics(cm), 'x')).toThrow(GraftError);
  });

  test('most confused pairs: largest off-diagonal cells first', () => {
    // Off-diagonal cells of the hand-worked matrix: a->b 1, b->a 1, c->a 1.
    expect(mostConfused(cm)).toEqual([
      { actual: 'a', predicted: 'b', count: 1 },
      { actual: 'b', predicted: 'a', count: 1 },
      { actual: 'c', predicted: 'a', count: 1 },
    ]);
    const skewed = confusionMatrix([0, 0, 0, 1, 2, 2], [1, 1, 0, 2, 0, 1], ['x', 'y', 'z']);
    expect(mostConfused(skewed, { limit: 2 })).toEqual([
      { actual: 'x', predicted: 'y', count: 2 },
      { actual: 'y', predicted: 'z', count: 1 },
    ]);
    expect(mostConfused(skewed, { minCount: 2 })).toHaveLength(1);
  });

  test('argmax picks the first index on ties', () => {
    expect(predictedIndex([0.4, 0.4, 0.2], 0, 3)).toBe(0);
    expect(predictedIndex([0, 0.1, 0.7, 0.2], 1, 3)).toBe(1);
  });

  test('top-k: ties rank the higher class index first, as scikit-learn', () => {
    const scores = [0.2, 0.5, 0.3, 0.4, 0.4, 0.2, 0.1, 0.1, 0.8];
    expect(topKHits(scores, [0, 0, 1], 3, [1, 2, 3])).toEqual([0, 2, 3]);
    expect(topKHits([0.4, 0.4, 0.2], [1], 3, [1])).toEqual([1]);
  });

  test('confusion matrices add: shards score exactly as the whole run', () => {
    const a = confusionMatrix(Y_TRUE.slice(0, 2), Y_PRED.slice(0, 2), LABELS);
    const b = confusionMatrix(Y_TRUE.slice(2), Y_PRED.slice(2), LABELS);
    expect(addConfusionMatrices([a, b])).toEqual(cm);
    expect(classificationMetrics(addConfusionMatrices([b, a]))).toEqual(classificationMetrics(cm));
    expect(() => addConfusionMatrices([a, confusionMatrix([0], [0], ['a', 'b', 'c', 'x'])])).toThrow(/only in the first: d; only in the other: x/);
    expect(() => confusionMatrix([0, 4], [0, 0], LABELS)).toThrow(/true label index 4 is outside the 4 classes/);
  });
});

describe('multi-label (sigmoid heads) at a threshold (hand-worked)', () => {
  const truth = [
    [1, 0, 1],
    [0, 1, 0],
    [0, 0, 0],
    [1, 0, 0],
  ];
  const scores = [
    [0.9, 0.6, 0.2],
    [0.1, 0.7, 0.3],
    [0.1, 0.2, 0.3],
    [0.4, 0.1, 0.8],
  ];
  const counts = emptyMultilabelCounts(['x', 'y', 'z'], 0.5);
  truth.forEach((t, i) => addMultilabelSample(counts, t, scores[i]));

  test('per-label scores, averages, subset accuracy and Hamming loss', () => {
    const m = multilabelMetrics(counts, { zeroDivision: 0 });
    close(m.classes.map((c) => c.precision), [1, 0.5, 0]);
    close(m.classes.map((c) => c.recall), [0.5, 1, 0]);
    close(m.classes.map((c) => c.f1), [2 / 3, 2 / 3, 0]);
    close([m.averages.micro.f1, m.averages.macro.f1, m.averages.weighted.precision, m.averages.weighted.f1], [0.5, 4 / 9, 0.625, 0.5]);
    close([m.averages.samples.precision, m.averages.samples.recall, m.averages.samples.f1], [0.375, 0.375, 0.375]);
    expect(m.subsetAccuracy).toBe(0.5);
    expect(m.hammingLoss).toBeCloseTo(1 / 3, 12);
  });

  test('the samples average follows zeroDivision for samples with no true nor predicted labels', () => {
    close([multilabelMetrics(counts, { zeroDivision: 1 }).averages.samples.f1], [0.625]);
    close([multilabelMetrics(counts, { zeroDivision: 'nan' }).averages.samples.precision], [0.5]);
  });

  test('counts from parts add up to the whole', () => {
    const a = emptyMultilabelCounts(['x', 'y', 'z'], 0.5);
    const b = emptyMultilabelCounts(['x', 'y', 'z'], 0.5);
    truth.forEach((t, i) => addMultilabelSample(i % 2 ? a : b, t, scores[i]));
    expect(multilabelMetrics(addMultilabelCounts([a, b]))).toEqual(multilabelMetrics(counts));
    expect(() => addMultilabelCounts([a, emptyMultilabelCounts(['x', 'y', 'z'], 0.7)])).toThrow(/different thresholds/);
  });
});

describe('text report', () => {
  test("Python's rounding: exact halves go to even", () => {
    expect([0.125, 0.375, 0.625, 0.875, 1 / 3, 0.005, NaN].map((x) => formatFixed(x, 2))).toEqual(['0.12', '0.38', '0.62', '0.88', '0.33', '0.01', 'nan']);
    expect(formatFixed(2.5, 0)).toBe('2');
    expect(formatFixed(3.5, 0)).toBe('4');
  });

  test("the table is scikit-learn's classification_report layout", () => {
    const m = classificationMetrics(confusionMatrix([0, 0, 1, 1], [0, 1, 1, 1], ['cat', 'dog']));
    const expected = [
      '              precision    recall  f1-score   support',
      '',
      '         cat       1.00      0.50      0.67         2',
      '         dog       0.67      1.00      0.80         2',
      '',
      '    accuracy                           0.75         4',
      '   macro avg       0.83      0.75      0.73         4',
      'weighted avg       0.83      0.75      0.73         4',
      '',
    ].join('\n');
    expect(formatClassificationReport(m, { microIsAccuracy: m.microIsAccuracy })).toBe(expected);
    expect(formatClassificationReport(m, { microIsAccuracy: false }).split('\n')[5]).toBe('   micro avg       0.75      0.75      0.75         4');
    // The output_dict form has scikit-learn's keys: an "accuracy" number instead of a micro row.
    const dict = classificationReportDict(m, { microIsAccuracy: true });
    expect(Object.keys(dict)).toEqual(['cat', 'dog', 'accuracy', 'macro avg', 'weighted avg']);
    expect(dict.accuracy).toBe(0.75);
    expect(dict.cat).toEqual({ precision: 1, recall: 0.5, 'f1-score': 2 / 3, support: 2 });
    expect((dict['macro avg'] as { precision: number }).precision).toBeCloseTo(5 / 6, 12);
  });
});
