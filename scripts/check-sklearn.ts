/**
 * Cross-checks graft's metrics against scikit-learn on random data (not a unit test: it needs Python).
 * Run: npm run build && node dist/scripts/check-sklearn.js [trials]
 * Compares per-class and averaged precision / recall / F1, accuracy, balanced accuracy, top-k accuracy, the
 * multi-label averages and the classification_report text, for zero_division warn / 0 / 1, with explicit labels
 * that include classes absent from the data. Prints the largest difference and exits 1 above 1e-9.
 */
import { execFileSync } from 'node:child_process';
import {
  addMultilabelSample,
  classificationMetrics,
  confusionMatrix,
  emptyMultilabelCounts,
  classificationReportDict,
  formatClassificationReport,
  multilabelMetrics,
  topKHits,
  ZeroDivision,
} from '../src/metrics';
import { createRng } from '../src/util/rng';

const PY = String.raw`
import json, sys, warnings
import numpy as np
from sklearn.metrics import precision_recall_fscore_support as prfs, accuracy_score, balanced_accuracy_score, top_k_accuracy_score, classification_report
warnings.simplefilter('ignore')
out = []
for t in json.load(sys.stdin):
    yt, yp, n, zd = np.array(t['yTrue']), np.array(t['yPred']), t['classes'], t['zd']
    labels = list(range(n))
    r = {}
    p, rc, f, s = prfs(yt, yp, labels=labels, average=None, zero_division=zd)
    r['perClass'] = [list(map(float, p)), list(map(float, rc)), list(map(float, f)), list(map(int, s))]
    for avg in ['micro', 'macro', 'weighted']:
        r[avg] = list(map(float, prfs(yt, yp, labels=labels, average=avg, zero_division=zd)[:3]))
    r['accuracy'] = float(accuracy_score(yt, yp))
    r['balanced'] = float(balanced_accuracy_score(yt, yp))
    scores = np.array(t['scores']).reshape(len(yt), n)
    r['topk'] = [float(top_k_accuracy_score(yt, scores, k=k, labels=labels)) for k in (2, 3)] if n > 2 else None
    r['text'] = classification_report(yt, yp, labels=labels, target_names=t['names'], zero_division=zd)
    r['dict'] = classification_report(yt, yp, labels=labels, target_names=t['names'], zero_division=zd, output_dict=True)
    mt, ms = np.array(t['mlTrue']), np.array(t['mlScores'])
    mp = (ms > 0.5).astype(int)
    r['ml'] = {avg: list(map(float, prfs(mt, mp, average=avg, zero_division=zd)[:3])) for avg in ['micro', 'macro', 'weighted', 'samples']}
    out.append(r)
json.dump(out, sys.stdout)
`;

const trials = Number(process.argv[2] ?? 200);
const gen = createRng(20261124);
const rng = () => gen.next();
const int = (n: number) => Math.floor(rng() * n);
const cases = Array.from({ length: trials }, (_, t) => {
  const classes = 2 + int(6);
  const n = 1 + int(60);
  // Classes drawn from a prefix so the last ones are often absent from the data, and predictions are skewed so some
  // classes are never predicted: the zero-division paths get exercised.
  const present = 1 + int(classes);
  const yTrue = Array.from({ length: n }, () => int(present));
  const yPred = yTrue.map((y) => (rng() < 0.6 ? y : int(Math.max(1, present - 1))));
  const scores = Array.from({ length: n * classes }, () => Math.round(rng() * 8) / 8); // coarse values: many ties
  const mlTrue = Array.from({ length: n }, () => Array.from({ length: classes }, () => Number(rng() < 0.3)));
  const mlScores = mlTrue.map((row) => row.map((v) => (rng() < 0.7 ? v * 0.5 + rng() * 0.5 : rng())));
  const zd: ZeroDivision = (['warn', 0, 1] as const)[t % 3];
  return { yTrue, yPred, classes, zd, scores, mlTrue, mlScores, names: Array.from({ length: classes }, (_, i) => `class_${i}`) };
});

const results = JSON.parse(execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify(cases), maxBuffer: 1 << 28 }).toString());
let worst = 0;
let tieOnly = 0;
let dictMismatches = 0;

/**
 * scikit-learn before 1.4 computes F1 as 2PR/(P+R), which lands a hair off exact halves that graft (like 1.4+,
 * 2tp/(2tp+fp+fn)) hits exactly, so "0.625" prints 0.62 here and 0.63 there. Accepts a text difference only when
 * every differing number is such a tie.
 */
function onlyTieRounding(ours: string, theirs: string, m: ReturnType<typeof classificationMetrics>): boolean {
  const nums = (t: string) => t.split(/\s+/).filter((w) => /^\d+\.\d+$/.test(w)).map(Number);
  const [a, b] = [nums(ours), nums(theirs)];
  const raw = [...m.classes.flatMap((c) => [c.precision, c.recall, c.f1]), ...Object.values(m.averages).flatMap((v) => [v.precision, v.recall, v.f1])];
  const ties = new Set(raw.filter((v) => Math.abs(((v * 100) % 1) - 0.5) < 1e-9).map((v) => v.toFixed(2)));
  const ok = a.length === b.length && a.every((x, i) => x === b[i] || (Math.abs(x - b[i]) < 0.0100001 && (ties.has(x.toFixed(2)) || ties.has(b[i].toFixed(2)))));
  if (ok) tieOnly++;
  return ok;
}
let textMismatches = 0;
const diff = (a: number[], b: number[]) => a.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b[i]))));
cases.forEach((c, t) => {
  const r = results[t];
  const cm = confusionMatrix(c.yTrue, c.yPred, c.names);
  const m = classificationMetrics(cm, { zeroDivision: c.zd });
  diff(m.classes.map((x) => x.precision), r.perClass[0]);
  diff(m.classes.map((x) => x.recall), r.perClass[1]);
  diff(m.classes.map((x) => x.f1), r.perClass[2]);
  diff(m.classes.map((x) => x.support), r.perClass[3]);
  for (const avg of ['micro', 'macro', 'weighted'] as const) {
    const a = m.averages[avg];
    diff([a.precision, a.recall, a.f1], r[avg]);
  }
  diff([m.accuracy, m.balancedAccuracy], [r.accuracy, r.balanced]);
  // scikit-learn scores two-class top-k by a 0.5 threshold on 1-d scores, a different problem: compared from 3 classes.
  if (r.topk) diff(topKHits(c.scores, c.yTrue, c.classes, [2, 3]).map((h) => h / c.yTrue.length), r.topk);
  const counts = emptyMultilabelCounts(c.names, 0.5);
  c.mlTrue.forEach((row, i) => addMultilabelSample(counts, row, c.mlScores[i]));
  const ml = multilabelMetrics(counts, { zeroDivision: c.zd });
  for (const avg of ['micro', 'macro', 'weighted', 'samples'] as const) {
    const a = ml.averages[avg];
    diff([a.precision, a.recall, a.f1], r.ml[avg]);
  }
  // The output_dict form: same keys, same numbers.
  const dict = classificationReportDict(m, { microIsAccuracy: new Set([...c.yTrue, ...c.yPred]).size === c.classes });
  const keys = (o: object) => Object.keys(o).sort().join('|');
  if (keys(dict) !== keys(r.dict)) dictMismatches++;
  for (const [k, v] of Object.entries(dict)) {
    const s = r.dict[k];
    if (typeof v === 'number') diff([v], [s]);
    else diff([v.precision, v.recall, v['f1-score'], v.support], [s.precision, s.recall, s['f1-score'], s.support]);
  }
  // scikit-learn < 1.4 prints "accuracy" only when the labels equal the classes seen (1.4+: cover them), so the
  // row heading is matched to the installed version's rule; the numbers are what is being compared.
  const seen = new Set([...c.yTrue, ...c.yPred]).size === c.classes;
  const text = formatClassificationReport(m, { microIsAccuracy: seen });
  // scikit-learn 1.2 prints supports as floats (1.0) when no sample is a true positive (bincount of nothing is float64).
  r.text = (r.text as string).replace(/ +(\d+)\.0$/gm, (all, d: string) => d.padStart(all.length));
  if (text !== r.text && !onlyTieRounding(text, r.text, m)) {
    textMismatches++;
    if (textMismatches <= 2) process.stdout.write(`text differs in case ${t}:\n${text}\n--- scikit-learn:\n${r.text}\n`);
  }
});
process.stdout.write(`${trials} random cases: largest difference from scikit-learn ${worst.toExponential(2)}; classification_report text identical in ${trials - textMismatches - tieOnly}/${trials}, differing only by an exact-half F1 rounded to even (pre-1.4 scikit-learn) in ${tieOnly}; output_dict keys identical in ${trials - dictMismatches}/${trials}\n`);
process.exitCode = worst <= 1e-9 && textMismatches === 0 && dictMismatches === 0 ? 0 : 1;
