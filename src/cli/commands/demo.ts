import * as path from 'node:path';
import { Command } from 'commander';
import { runDemo } from '../demo';
import { formatReportText } from '../../metrics';
import { positiveInt } from '../../errors';
import { globals, useBackend } from '../common';
import { checkOutputFolder } from '../output-paths';

interface DemoCliOptions {
  out: string;
  trunk?: string;
  data?: string;
  test?: string;
  headEpochs?: string;
  epochs?: string;
  seed?: string;
}

/** `graft demo`: the README's first command; fine-tunes the bundled trunk on the bundled sample and reports. */
export function demoCommand(): Command {
  return new Command('demo')
    .description('fine-tune the bundled Fashion-MNIST trunk (classes 0-4) on the bundled sample of classes 5-9, then evaluate and write the reports')
    .option('--out <folder>', 'where the model folder, report and pictures go', path.join('out', 'demo'))
    .option('--trunk <folder>', 'trunk model folder (default: the bundled models/fashion-mnist-0-4)')
    .option('--data <folder>', 'training images (default: the bundled datasets/fashion-mnist-5-9/train)')
    .option('--test <folder>', 'held-out images (default: the bundled datasets/fashion-mnist-5-9/test)')
    .option('--head-epochs <n>', 'epochs on the new head with the trunk frozen (default 8)')
    .option('--epochs <n>', 'epochs with everything unfrozen at discriminative rates (default 8)')
    .option('--seed <n>', 'seed (default 0)')
    .action(async (opts: DemoCliOptions, cmd: Command) => {
      checkOutputFolder('--out', opts.out);
      const g = globals(cmd);
      await useBackend(cmd);
      const result = await runDemo({
        out: opts.out,
        trunk: opts.trunk,
        data: opts.data,
        test: opts.test,
        headEpochs: opts.headEpochs === undefined ? undefined : positiveInt('--head-epochs', opts.headEpochs),
        epochs: opts.epochs === undefined ? undefined : positiveInt('--epochs', opts.epochs),
        seed: opts.seed === undefined ? undefined : Number(opts.seed),
        progress: g.quiet ? 'none' : undefined,
        log: g.quiet ? null : undefined,
      });
      const { outputs, report } = result;
      process.stdout.write(`\n${formatReportText(report)}\n`);
      process.stdout.write(
        [
          '',
          `Outputs:`,
          `  model folder     ${outputs.model}`,
          `  training curve   ${outputs.curve}`,
          `  HTML report      ${outputs.html}`,
          `  confusion matrix ${outputs.confusionPng}`,
          `  JSON report      ${outputs.json}`,
          '',
          'Next:',
          `  your own images:   graft train --data <folder with one subfolder per class> --weights ${path.join('models', 'fashion-mnist-0-4')} --out my-model`,
          '  an ImageNet trunk: graft train --data <folder> --arch resnet50 --weights imagenet --out my-model',
          '                     (or --weights <Keras .h5 file>; graft models lists the architectures)',
          `  evaluate:          graft evaluate --model ${outputs.model} --data <folder> --out report.json --format html`,
          `  in a browser:      graft export --web ${outputs.model} --out ${path.join(path.dirname(outputs.model), 'site')} && graft serve ${path.join(path.dirname(outputs.model), 'site')}`,
          '                     (add --quantize uint8 for a 4x smaller model; see "Deploying to the browser" in the README)',
          '',
        ].join('\n'),
      );
    });
}
