import * as fs from 'node:fs';
import { Command } from 'commander';
import { GraftError, positiveInt } from '../../errors';
import { exportModelFolderOnnx } from '../../onnx/export';
import { verifyOnnxExport } from '../../onnx/verify';
import { readGraftMeta } from '../../io/graft-json';
import { globals, useBackend } from '../common';
import { checkOutputFile } from '../output-paths';
// Registers the onnxruntime line of `graft doctor`.
import '../../onnx/runtime';

/** `graft export --onnx`: writes a model folder as an ONNX file any ONNX runtime loads. */
export function exportCommand(): Command {
  return new Command('export')
    .description('export a model folder to ONNX (opset 17, NHWC float32 input with a dynamic batch, preprocessing not included)')
    .requiredOption('--onnx <model folder>', 'model folder to export')
    .option('--out <file.onnx>', 'file to write (default <model folder>/model.onnx)')
    .option('--no-fold-bn', 'keep BatchNormalization nodes instead of folding them into the convolutions')
    .option('--verify [images]', 'run tfjs and onnxruntime on a random batch (default 2 images) and report the difference')
    .action(async (opts: { onnx: string; out?: string; foldBn: boolean; verify?: string | true }, cmd: Command) => {
      const quiet = globals(cmd).quiet;
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
