import { Command } from 'commander';
import { finiteNumber, oneOf, positiveInt } from '../../errors';
import { LrFindOptions } from '../../train/lr-find';
import { LR_FIND_TRAIN_KEYS, checkTrainOptions } from '../../train/options';
import { lrFind } from '../../engine/training';
import { globals, useBackend } from '../common';
import { addTrainFlags, trainOptionsFromCli } from './train';
import { checkOutputFile } from '../output-paths';

/** `graft lr-find`: the learning-rate range test; prints the suggestions and writes the loss-versus-rate plot. */
export function lrFindCommand(): Command {
  const cmd = new Command('lr-find')
    .description('learning-rate range test: exponential sweep until the loss diverges; prints suggested rates and writes a plot')
    .option('--config <file>', 'train options JSON (model, data and optimiser settings are used; flags override)')
    .option('--stage <head|all>', 'probe the head stage (trunk frozen; default with pretrained weights) or all layers')
    .option('--start-lr <rate>', 'first rate (default 1e-7)')
    .option('--end-lr <rate>', 'last rate (default 10)')
    .option('--steps <n>', 'rates tried (default 100)')
    .option('--plot <file>', 'PNG to write', 'lr-find.png');
  return addTrainFlags(cmd, LR_FIND_TRAIN_KEYS).action(async (opts: Record<string, unknown>, command: Command) => {
    checkOutputFile('--plot', opts.plot as string);
    const model = checkTrainOptions(trainOptionsFromCli(opts, LR_FIND_TRAIN_KEYS), { names: 'flags', keys: LR_FIND_TRAIN_KEYS });
    const options: LrFindOptions = {
      ...(model as LrFindOptions),
      stage: opts.stage === undefined ? undefined : oneOf('--stage', opts.stage, ['head', 'all'] as const),
      startLr: opts.startLr === undefined ? undefined : finiteNumber('--start-lr', opts.startLr, { min: 0 }),
      endLr: opts.endLr === undefined ? undefined : finiteNumber('--end-lr', opts.endLr, { min: 0 }),
      steps: opts.steps === undefined ? undefined : positiveInt('--steps', opts.steps),
      plot: opts.plot as string,
      log: globals(command).quiet ? null : undefined,
    };
    await useBackend(command);
    const result = await lrFind(options);
    const s = result.suggestions;
    process.stdout.write(
      `lr-find (${result.stage}, ${result.lrs.length} steps up to ${result.lrs[result.lrs.length - 1].toExponential(1)}): ` +
        `suggested --lr ${s.valley.toExponential(1)} (valley); steepest ${s.steepest.toExponential(1)}, minimum/10 ${s.minimum.toExponential(1)}; plot ${opts.plot}\n`,
    );
  });
}
