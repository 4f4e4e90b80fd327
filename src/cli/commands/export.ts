import * as fs from 'node:fs';
import { Command } from 'commander';
import { GraftError, positiveInt } from '../../errors';
import { exportModelFolderOnnx } from '../../onnx/export';
import { verifyOnnxExport } from '../../engine/onnx-verify';
import { readGraftMeta } from '../../io/graft-json';
import { globals, useBackend } from '../common';
import { exportWebPage } from '../../web/export-web';
import { QUANTIZE_DTYPES } from '../../web/quantize';
import { checkOutputFile } from '../output-paths';

interface ExportCliOptions {
  onnx?: string;
  web?: string;
  out?: string;
  foldBn: boolean;
  verify?: string | true;
  quantize?: string;
}

/**
 * `graft export --onnx`: writes a model folder as an ONNX file any ONNX runtime loads.
 * `graft export --web`: writes a static web page that classifies images with the model in the browser.
 */
export function exportCommand(): Command {
  return new Command('export')
    .description('export a model folder to ONNX (--onnx) or as a static web page that classifies images in the browser (--web)')
    .option('--onnx <model folder>', 'model folder to export as ONNX (opset 17, NHWC float32 input with a dynamic batch, preprocessing not included)')
    .option('--web <model folder>', 'model folder to export as a static web page (with --out <folder>)')
    .option('--out <path>', '--onnx: file to write (default <model folder>/model.onnx); --web: the site folder (required)')
    .option('--no-fold-bn', '--onnx: keep BatchNormalization nodes instead of folding them into the convolutions')
    .option('--verify [images]', '--onnx: run tfjs and onnxruntime on a random batch (default 2 images) and report the difference')
    .option('--quantize <dtype>', `--web: store the weights as ${QUANTIZE_DTYPES.join(' or ')} (tfjs weight quantization)`)
    .action(async (opts: ExportCliOptions, cmd: Command) => {
      const quiet = globals(cmd).quiet;
      if ((opts.onnx === undefined) === (opts.web === undefined)) {
        throw new GraftError('graft export needs exactly one of --onnx <model folder> or --web <model folder>.');
      }
      if (opts.web !== undefined) {
        if (opts.verify !== undefined || !opts.foldBn) throw new GraftError('--verify and --no-fold-bn apply to --onnx only; drop them with --web.');
        if (opts.out === undefined) throw new GraftError('export --web needs --out <folder> for the site, e.g. --out site/.');
        const result = await exportWebPage(opts.web, { out: opts.out, quantize: opts.quantize });
        if (!quiet) process.stdout.write(formatWebExport(result));
        return;
      }
      if (opts.quantize !== undefined) throw new GraftError('--quantize applies to --web only; ONNX export keeps float32 weights.');
      if (!opts.onnx) throw new GraftError('--onnx needs a model folder.');
      const verifyBatch = opts.verify === undefined ? undefined : opts.verify === true ? 2 : positiveInt('--verify', opts.verify);
      if (!fs.existsSync(opts.onnx)) throw new GraftError(`model folder ${opts.onnx} does not exist; pass the folder graft train or graft import-keras wrote.`);
      const meta = readGraftMeta(opts.onnx);
      if (opts.out) checkOutputFile('--out', opts.out);
      const result = await exportModelFolderOnnx(opts.onnx, { out: opts.out, foldBatchNorm: opts.foldBn });
      const mb = (result.bytes.byteLength / 2 ** 20).toFixed(1);
      const input = result.inputs[0];
      if (!quiet) {
        process.stdout.write(
          `wrote ${result.file} (${mb} MiB, opset 17, ${result.foldedBatchNorms} BatchNormalization folded)\n` +
            `input "${input.name}" [batch, ${input.shape.slice(1).join(', ')}] NHWC float32, preprocessed as "${meta.preprocessing}"; ` +
            `output "${result.outputs[0].name}" [batch, ${result.outputs[0].shape.slice(1).join(', ')}]\n`,
        );
      }
      if (verifyBatch !== undefined) {
        await useBackend(cmd);
        const v = await verifyOnnxExport(opts.onnx, result.file, { batch: verifyBatch });
        process.stdout.write(`verify: onnxruntime vs tfjs on ${verifyBatch} random images: max relative error ${v.relativeError.toExponential(2)} (max abs ${v.maxAbsError.toExponential(2)})\n`);
        if (!(v.relativeError <= 1e-4)) throw new GraftError(`the exported graph differs from tfjs by ${v.relativeError.toExponential(2)} relative (over 1e-4); please report this model's layers.`);
      }
    });
}

/** The summary `export --web` prints: the files by group with sizes, and how to view the site. */
function formatWebExport(result: Awaited<ReturnType<typeof exportWebPage>>): string {
  const kib = (n: number) => `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;
  const total = result.files.reduce((n, f) => n + f.bytes, 0);
  const sum = (prefix: string) => result.files.filter((f) => f.path.startsWith(prefix)).reduce((n, f) => n + f.bytes, 0);
  const weights = result.quantize
    ? `weights ${kib(result.weightBytes.site)} as ${result.quantize} (from ${kib(result.weightBytes.original)} float32)`
    : `weights ${kib(result.weightBytes.site)}`;
  return [
    `wrote ${result.out}: ${result.files.length} files, ${kib(total)}`,
    `  model/   ${kib(sum('model/'))} (${weights})`,
    `  tfjs/    ${kib(sum('tfjs/'))} (stock tfjs bundle with the webgl, wasm and cpu backends)`,
    `  page     ${kib(total - sum('model/') - sum('tfjs/'))} (index.html, graft-page.js, graft-pixels.js, style.css)`,
    `view it:   graft serve ${result.out}   (or any static file server; opening index.html as a file cannot load the model)`,
    '',
  ].join('\n');
}
