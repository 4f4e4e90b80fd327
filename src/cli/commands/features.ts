import * as fs from 'node:fs';
import { engineFlag, sharedFlag } from '../flags';
import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { GraftError, oneOf, positiveInt } from '../../errors';
import { createFeatureExtractor, extractFeatures, FEATURE_POOLINGS } from '../../eval/features';
import { architectureNames, getArchitecture } from '../../models/registry';
import { inputChannels } from '../../models/spec';
import { isModelFolder } from '../../models/classifier';
import { ENGINE_CHOICES, createModelRunner } from '../../engine';
import { globals, useBackend } from '../common';

const FORMATS = ['json', 'csv'] as const;

/** Renders features as CSV: `file,f0,f1,...`, one row per image. */
export function featuresCsv(files: string[], features: Float32Array[]): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const dim = features[0]?.length ?? 0;
  const header = ['file', ...Array.from({ length: dim }, (_, i) => `f${i}`)].join(',');
  return [header, ...files.map((f, i) => [quote(f), ...Array.from(features[i], String)].join(','))].join('\n') + '\n';
}

/** `graft features`: pooled trunk output per image, after the architecture's own preprocessing. */
export function featuresCommand(): Command {
  return new Command('features')
    .description("print each image's pooled trunk features (after the architecture's preprocessing) for similarity search or your own classifier")
    .argument('<images...>', 'image files or folders of images')
    .addOption(new Option('--arch <name>', 'architecture (not needed when --weights is a model folder)').choices(architectureNames()))
    .requiredOption('--weights <w>', 'imagenet, a Keras .h5 file or URL, a graft model folder (its trunk), or none (random)')
    .addOption(new Option('--pooling <mode>', 'global pooling of the trunk output').choices([...FEATURE_POOLINGS]).default('avg'))
    .addOption(sharedFlag('inputSize'))
    .addOption(sharedFlag('batchSize', { default: '16' }))
    .addOption(new Option('--format <format>', 'output format').choices([...FORMATS]).default('json'))
    .addOption(engineFlag())
    .option('--strict', 'stop with an error on an unreadable image (default: skip it and name it)')
    .action(async (images: string[], opts: { arch?: string; weights: string; pooling: string; inputSize?: string; batchSize: string; format: string; engine: string; strict?: boolean }, cmd: Command) => {
      const format = oneOf('--format', opts.format, FORMATS);
      oneOf('--engine', opts.engine, ENGINE_CHOICES);
      const batchSize = positiveInt('--batch-size', opts.batchSize);
      const weights = opts.weights === 'none' ? null : opts.weights;
      const folder = isModelFolder(weights);
      if (!folder && opts.arch === undefined) {
        const dir = weights !== null && fs.existsSync(weights) && fs.statSync(weights).isDirectory();
        throw new GraftError(dir ? `--weights ${weights} is a folder without graft.json, not a graft model folder; pass one graft saved, or --arch with a Keras .h5 file.` : '--arch is required unless --weights is a graft model folder.');
      }
      if (folder && opts.inputSize !== undefined) throw new GraftError('--input-size does not apply to a model folder, whose trunk keeps its input size; drop it.');
      let inputShape: number[] | undefined;
      if (opts.inputSize !== undefined) {
        const size = positiveInt('--input-size', opts.inputSize);
        inputShape = [size, size, inputChannels(getArchitecture(opts.arch))];
      }
      await useBackend(cmd);
      const quiet = globals(cmd).quiet || !process.stderr.isTTY;
      const bar = quiet ? undefined : new SingleBar({ format: 'graft: {task} [{bar}] {value}/{total}', stream: process.stderr, hideCursor: true });
      let downloading = false;
      const extractor = await createFeatureExtractor({
        arch: opts.arch,
        weights,
        inputShape,
        pooling: opts.pooling as 'avg',
        onProgress: bar
          ? (received, total) => {
              if (!downloading) bar.start(total ?? 0, 0, { task: 'downloading weights (bytes)' });
              downloading = true;
              bar.update(received);
            }
          : undefined,
      });
      if (downloading) bar?.stop();
      const runner = await createModelRunner(extractor.model, { engine: opts.engine, log: globals(cmd).quiet ? null : undefined });
      try {
        const { files, features } = await extractFeatures(extractor, images, {
          batchSize,
          run: runner.run,
          strict: opts.strict,
          log: globals(cmd).quiet ? null : undefined,
          onProgress: bar
            ? (done, total) => {
                if (done <= batchSize) bar.start(total, 0, { task: 'features' });
                bar.update(done);
              }
            : undefined,
        });
        bar?.stop();
        process.stdout.write(
          format === 'csv' ? featuresCsv(files, features) : JSON.stringify(files.map((file, i) => ({ file, features: Array.from(features[i]) }))) + '\n',
        );
      } finally {
        await runner.dispose();
        extractor.dispose();
      }
    });
}
