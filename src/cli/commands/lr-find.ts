import { Command } from 'commander';
import { LR_FIND_TRAIN_KEYS, lrFind } from '../../train/lr-find';
import { globals, useBackend } from '../common';
import { checkOutputFile } from '../output-paths';
import { readTrainConfig } from './train';

interface LrFindCliOptions {
  config?: string;
  data?: string;
  arch?: string;
  weights?: string;
  inputSize?: string;
  stage?: string;
  startLr?: string;
  endLr?: string;
  steps?: string;
  batchSize?: string;
  optimizer?: string;
  seed?: string;
  trainBn?: boolean;
  plot: string;
}

/** `graft lr-find`: the learning-rate range test; prints the suggestions and writes the loss-versus-rate plot. */
export function lrFindCommand(): Command {
  return new Command('lr-find')
    .description('learning-rate range test: exponential sweep until the loss diverges; prints suggested rates and writes a plot')
    .option('--config <file>', 'train options JSON (model, data and optimiser settings are used; flags override)')
    .option('--data <path>', 'training images (class-per-folder directory, CSV manifest or IDX folder)')
    .option('--arch <name>', 'trunk architecture')
    .option('--weights <w>', 'imagenet, a Keras .h5 file, a graft model folder, or none (default none)')
    .option('--input-size <n>', 'square input size (default: the architecture\'s)')
    .option('--stage <head|all>', 'probe the head stage (trunk frozen; default with pretrained weights) or all layers')
    .option('--start-lr <rate>', 'first rate (default 1e-7)')
    .option('--end-lr <rate>', 'last rate (default 10)')
    .option('--steps <n>', 'rates tried (default 100)')
    .option('--batch-size <n>', 'images per batch (default 32)')
    .option('--optimizer <name>', 'optimiser (default adam)')
    .option('--seed <n>', 'seed (default 0)')
    .option('--train-bn', 'keep BatchNormalization training while the trunk is frozen')
    .option('--plot <file>', 'PNG to write', 'lr-find.png')
    .action(async (opts: LrFindCliOptions, cmd: Command) => {
      checkOutputFile('--plot', opts.plot);
      const file = opts.config ? readTrainConfig(opts.config) : {};
      const flags = Object.fromEntries(
        Object.entries({
          data: opts.data,
          arch: opts.arch,
          weights: opts.weights === 'none' ? null : opts.weights,
          inputSize: opts.inputSize,
          batchSize: opts.batchSize,
          optimizer: opts.optimizer,
          seed: opts.seed,
          trainBn: opts.trainBn,
        }).filter(([, v]) => v !== undefined),
      );
      const merged: Record<string, unknown> = { ...file, ...flags };
      const model = Object.fromEntries(LR_FIND_TRAIN_KEYS.filter((k) => merged[k] !== undefined).map((k) => [k, merged[k]]));
      await useBackend(cmd);
      const result = await lrFind({
        ...(model as unknown as Parameters<typeof lrFind>[0]),
        stage: opts.stage as 'head' | 'all' | undefined,
        startLr: opts.startLr === undefined ? undefined : Number(opts.startLr),
        endLr: opts.endLr === undefined ? undefined : Number(opts.endLr),
        steps: opts.steps === undefined ? undefined : Number(opts.steps),
        plot: opts.plot,
        log: globals(cmd).quiet ? null : undefined,
      });
      const s = result.suggestions;
      process.stdout.write(
        `lr-find (${result.stage}, ${result.lrs.length} steps up to ${result.lrs[result.lrs.length - 1].toExponential(1)}): ` +
          `suggested --lr ${s.valley.toExponential(1)} (valley); steepest ${s.steepest.toExponential(1)}, minimum/10 ${s.minimum.toExponential(1)}; plot ${opts.plot}\n`,
      );
    });
}
