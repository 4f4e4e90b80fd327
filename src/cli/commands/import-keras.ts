import { sharedFlag } from '../flags';
import { Command, Option } from 'commander';
import { positiveInt } from '../../errors';
import { importKeras } from '../../models/import-keras';
import { architectureNames } from '../../models/registry';
import { globals, parseList, useBackend } from '../common';
import { checkModelOut } from '../output-paths';

/** `graft import-keras`: a Keras .h5 weight file becomes a graft model folder. */
export function importKerasCommand(): Command {
  return new Command('import-keras')
    .description('load a Keras 2 .h5 weight file (save_weights or model.save) into an architecture and write a graft model folder')
    .argument('<file.h5>', 'Keras weight file')
    .addOption(new Option('--arch <name>', 'architecture the file was saved from').choices(architectureNames()).makeOptionMandatory())
    .option('--top', 'the file has the classifier top (its class count is read from the file)')
    .addOption(sharedFlag('inputSize'))
    .option('--class-names <a,b,...>', 'class names for the top, in output order', parseList)
    .option('--out <folder>', 'model folder to write (default the file name without .h5)')
    .option('--force', 'write --out even when it holds a model graft did not write')
    .action(async (file: string, opts: { arch: string; top?: boolean; inputSize?: string; classNames?: string[]; out?: string; force?: boolean }, cmd: Command) => {
      if (opts.out) checkModelOut('--out', opts.out, { force: opts.force });
      await useBackend(cmd);
      const result = await importKeras(file, {
        arch: opts.arch,
        includeTop: Boolean(opts.top),
        inputSize: opts.inputSize === undefined ? undefined : positiveInt('--input-size', opts.inputSize),
        classNames: opts.classNames,
        out: opts.out,
      });
      const { byName, byOrder, unused } = result.report;
      if (!globals(cmd).quiet) {
        const ignored = unused.length ? `; ignored file layers ${unused.join(', ')}` : '';
        process.stdout.write(`wrote ${result.dir} (${result.meta.architecture}, input ${result.meta.inputShape.join('x')}, ${byName} layers matched by name, ${byOrder} by order${ignored})\n`);
      }
    });
}
