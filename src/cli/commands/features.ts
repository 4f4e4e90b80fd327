import * as fs from 'node:fs';
import { engineFlag, sharedFlag } from '../flags';
import { Command, Option } from 'commander';
import { GraftError, oneOf, positiveInt } from '../../errors';
import { globalThreads, globals, useBackend } from '../common';
import { ENGINE_CHOICES } from '../../models/runner';
import { inputChannels } from '../../models/spec';

const FORMATS = ['json', 'csv'] as const;
/** Pooling choices (the extractor's FEATURE_POOLINGS; spelled out so `--help` does not load tfjs). */
const POOLINGS = ['avg', 'max'] as const;

/** Renders features as CSV: `file,f0,f1,...`, one row per image. */
export function featuresCsv(files: string[], features: Float32Array[]): string {
  const quote = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const dim = features[0]?.length ?? 0;
  const header = ['file', ...Array.from({ length: dim }, (_, i) => `f${i}`)].join(',');
  return [header, ...files.map((f, i) => [quote(f), ...Array.from(features[i], String)].join(','))].join('\n') + '\n';
}

/** How the warning about unreadable images names what was given. */
function rootName(images: string[]): string {
  return images.length === 1 ? images[0] : 'the images given';
}

interface FeaturesCliOptions {
  arch?: string;
  weights: string;
  pooling: string;
  inputSize?: string;
  batchSize: string;
  format: string;
  engine: string;
  out?: string;
  shard?: string;
  resume?: boolean;
  strict?: boolean;
}

/** A progress display: a bar on a terminal, a line every few seconds elsewhere, nothing with --quiet. */
async function progressDisplay(quiet: boolean): Promise<{ start(total: number, task: string): void; update(done: number): void; stop(): void }> {
  if (quiet) return { start: () => undefined, update: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY) {
    const { SingleBar } = await import('cli-progress');
    const bar = new SingleBar({ format: 'graft: {task} [{bar}] {value}/{total} eta {eta_formatted}', stream: process.stderr, hideCursor: true });
    return { start: (total, task) => bar.start(total, 0, { task }), update: (done) => bar.update(done), stop: () => bar.stop() };
  }
  let total = 0;
  let task = '';
  let last = performance.now();
  return {
    start: (t, name) => ((total = t), (task = name)),
    update(done) {
      if (performance.now() - last < 5000 && done < total) return;
      last = performance.now();
      process.stderr.write(`graft: ${task} ${done}/${total}\n`);
    },
    stop: () => undefined,
  };
}

/** `graft features`: pooled trunk output per image, after the architecture's own preprocessing. */
export function featuresCommand(): Command {
  return new Command('features')
    .description("print each image's pooled trunk features (after the architecture's preprocessing) for similarity search or your own classifier")
    .argument('<images...>', 'image files or folders of images')
    .option('--arch <name>', 'architecture (not needed when --weights is a model folder; graft models lists them)')
    .requiredOption('--weights <w>', 'imagenet, a Keras .h5 file or URL, a graft model folder (its trunk), or none (random)')
    .addOption(new Option('--pooling <mode>', 'global pooling of the trunk output').choices([...POOLINGS]).default('avg'))
    .addOption(sharedFlag('inputSize'))
    .addOption(sharedFlag('batchSize', { default: '16' }))
    .addOption(new Option('--format <format>', 'output format on stdout (without --out)').choices([...FORMATS]).default('json'))
    .option('--out <file>', 'stream rows into a file as they are computed: .csv, .jsonl, or .npy (float32, with a .files.txt list of the images beside it)')
    .option('--shard <i/n>', 'only shard i of n (every n-th image, 1 <= i <= n), to split a job across machines')
    .option('--resume', 'keep the rows already in --out (or its .partial) and compute only the missing images')
    .addOption(engineFlag())
    .option('--strict', 'stop with an error on an unreadable image (default: skip it and name it)')
    .action(async (images: string[], opts: FeaturesCliOptions, cmd: Command) => {
      const format = oneOf('--format', opts.format, FORMATS);
      oneOf('--engine', opts.engine, ENGINE_CHOICES);
      const batchSize = positiveInt('--batch-size', opts.batchSize);
      const weights = opts.weights === 'none' ? null : opts.weights;
      const folder = weights !== null && fs.existsSync(`${weights}/graft.json`);
      if (!folder && opts.arch === undefined) {
        const dir = weights !== null && fs.existsSync(weights) && fs.statSync(weights).isDirectory();
        throw new GraftError(dir ? `--weights ${weights} is a folder without graft.json, not a graft model folder; pass one graft saved, or --arch with a Keras .h5 file.` : '--arch is required unless --weights is a graft model folder.');
      }
      if (folder && opts.inputSize !== undefined) throw new GraftError('--input-size does not apply to a model folder, whose trunk keeps its input size; drop it.');
      if (opts.resume && !opts.out) throw new GraftError('--resume needs --out <file> (the file whose rows are kept); add --out or drop --resume.');
      const { parseShard, shardCount } = await import('../../util/shard');
      const shard = opts.shard === undefined ? null : parseShard(opts.shard);
      const { featureFileFormat, openFeatureFile } = await import('../../io/feature-files');
      if (opts.out) featureFileFormat(opts.out);
      let inputShape: number[] | undefined;
      if (opts.inputSize !== undefined) {
        const { architectureNames, getArchitecture } = await import('../../models/registry');
        if (opts.arch !== undefined && !architectureNames().includes(opts.arch)) getArchitecture(opts.arch); // the error listing them
        const size = positiveInt('--input-size', opts.inputSize);
        inputShape = [size, size, inputChannels(getArchitecture(opts.arch))];
      }
      const { quiet } = globals(cmd);
      const progress = await progressDisplay(Boolean(quiet));
      const { noImagesError, streamFeatures, walkImagePaths } = await import('../../eval/feature-stream');
      // The files are counted by one walk that keeps nothing and listed again as rows are computed, so a million
      // images never sit in memory as a list (see --out below); a missing input or an empty folder stops here.
      let found = 0;
      for (const _ of walkImagePaths(images)) found++;
      if (found === 0) throw noImagesError(images);
      const total = shard ? shardCount(found, shard) : found;
      const selected = function* (): Generator<string> {
        let i = 0;
        for (const f of walkImagePaths(images)) if (!shard || i++ % shard.count === shard.index) yield f;
      };
      const { openFeatureRunner } = await import('../../eval/feature-runner');
      let downloading = false;
      const runner = await openFeatureRunner({
        arch: opts.arch,
        weights,
        inputShape,
        pooling: opts.pooling as 'avg',
        engine: opts.engine,
        threads: globalThreads(cmd),
        log: quiet ? null : undefined,
        // tfjs (and its backend) only start when the model has to be built: a cached onnxruntime export needs neither.
        beforeTfjs: () => useBackend(cmd),
        onProgress: (received, total) => {
          if (!downloading) progress.start(total ?? 0, 'downloading weights (bytes)');
          downloading = true;
          progress.update(received);
        },
      });
      if (downloading) progress.stop();
      const log = quiet ? null : undefined;
      try {
        if (opts.out) {
          const out = await openFeatureFile(opts.out, { dim: runner.dim, resume: opts.resume });
          const todo = function* (): Generator<string> {
            for (const f of selected()) if (!out.done.has(f)) yield f;
          };
          progress.start(total, 'features');
          let done = Math.min(out.done.size, total);
          progress.update(done);
          for await (const batch of streamFeatures(runner, todo(), { batchSize, log, strict: opts.strict, root: rootName(images) })) {
            out.write(batch.files, batch.features);
            done += batch.files.length;
            progress.update(done);
          }
          progress.stop();
          await out.close();
          if (!quiet) process.stderr.write(`graft: wrote ${out.rows} rows of ${runner.dim} features to ${opts.out} (${runner.engine})\n`);
          return;
        }
        const files: string[] = [];
        const features: Float32Array[] = [];
        progress.start(total, 'features');
        for await (const batch of streamFeatures(runner, selected(), { batchSize, log, strict: opts.strict, root: rootName(images) })) {
          batch.files.forEach((f, i) => {
            files.push(f);
            features.push(batch.features.slice(i * runner.dim, (i + 1) * runner.dim));
          });
          progress.update(files.length);
        }
        progress.stop();
        process.stdout.write(
          format === 'csv' ? featuresCsv(files, features) : JSON.stringify(files.map((file, i) => ({ file, features: Array.from(features[i]) }))) + '\n',
        );
      } finally {
        await runner.dispose();
      }
    });
}
