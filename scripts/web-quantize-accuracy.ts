/**
 * What `graft export --web --quantize` costs in accuracy: exports the model as float32, float16 and uint8, loads each
 * site's model folder (tfjs's own dequantization) and scores a labelled image folder with graft's predict.
 * Run: npm run build && node dist/scripts/web-quantize-accuracy.js [model folder] [test folder]
 * (defaults: out/demo/model from `npm run demo`, and datasets/fashion-mnist-5-9/test). Not a unit test: it needs the
 * demo's model.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend';
import { predict, Prediction } from '../src/eval/predict';
import { exportWebPage } from '../src/web/export-web';
import { PACKAGE_ROOT } from '../src/version';

async function main(): Promise<void> {
  const model = process.argv[2] ?? path.join('out', 'demo', 'model');
  const data = process.argv[3] ?? path.join(PACKAGE_ROOT, 'datasets', 'fashion-mnist-5-9', 'test');
  if (!fs.existsSync(model)) throw new Error(`${model} does not exist; run npm run demo first or pass a model folder`);
  await initBackend({ backend: 'wasm', log: null });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-quantize-'));
  const rows: string[] = [];
  let reference: Prediction[] | undefined;
  try {
    for (const quantize of [undefined, 'float16', 'uint8'] as const) {
      const out = path.join(tmp, quantize ?? 'float32');
      const result = await exportWebPage(model, { out, quantize });
      const preds = await predict({ model: path.join(out, 'model'), inputs: [data], engine: 'tfjs', topK: 100, log: null });
      reference ??= preds;
      const correct = preds.filter((p) => p.prediction === path.basename(path.dirname(p.source))).length;
      const same = preds.filter((p, i) => p.prediction === reference![i].prediction).length;
      let worst = 0;
      preds.forEach((p, i) => {
        for (const t of p.top) worst = Math.max(worst, Math.abs(t.score - reference![i].top.find((r) => r.label === t.label)!.score));
      });
      rows.push(
        `| ${quantize ?? 'none (float32)'} | ${(result.weightBytes.site / 1024).toFixed(0)} KiB | ${((100 * correct) / preds.length).toFixed(1)} % (${correct}/${preds.length}) | ` +
          `${same}/${preds.length} | ${worst.toExponential(1)} |`,
      );
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.stdout.write(
    [
      `model ${model}, images ${data}`,
      '| --quantize | weights | accuracy | same top-1 as float32 | largest score change |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      '',
    ].join('\n'),
  );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
