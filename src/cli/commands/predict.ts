import { engineFlag, sharedFlag } from '../flags';
import { Command } from 'commander';
import { finiteNumber, oneOf, positiveInt } from '../../errors';
import { writeFileAtomic } from '../../io/atomic';
import { predict, predictionsToCsv, ttaFromFlags } from '../../eval';
import { globalThreads, globals, useBackend } from '../common';
import { checkOutputFile } from '../output-paths';

interface PredictCliOptions {
  model: string;
  topK?: string;
  tta?: boolean;
  ttaCrop?: boolean;
  format: string;
  out?: string;
  batchSize: string;
  threshold: string;
  engine: string;
  strict?: boolean;
}

/** `graft predict`: labels and probabilities for images. */
export function predictCommand(): Command {
  return new Command('predict')
    .description('predict the class of images (files or folders) with a saved model')
    .argument('<inputs...>', 'image files or folders (searched recursively)')
    .requiredOption('--model <folder>', 'model folder (with graft.json)')
    .option('--top-k <k>', 'classes listed per image (default min(5, classes))')
    .option('--tta', 'test-time augmentation: average the scores of the image and its mirror')
    .option('--tta-crop', 'test-time augmentation with a centre crop (87.5%, zoomed back) as a third view')
    .option('--format <f>', 'output format: csv or json', 'csv')
    .option('--out <file>', 'write to this file instead of stdout')
    .addOption(sharedFlag('batchSize', { default: '32' }))
    .option('--threshold <t>', 'sigmoid (multi-label) models: list every class scored above t', '0.5')
    .addOption(engineFlag())
    .option('--strict', 'stop with an error on an unreadable image (default: skip it and name it)')
    .action(async (inputs: string[], opts: PredictCliOptions, cmd: Command) => {
      const format = oneOf('--format', opts.format, ['csv', 'json'] as const);
      if (opts.out) checkOutputFile('--out', opts.out);
      await useBackend(cmd);
      const results = await predict({
        model: opts.model,
        inputs,
        topK: opts.topK === undefined ? undefined : positiveInt('--top-k', opts.topK),
        tta: ttaFromFlags(opts),
        batchSize: positiveInt('--batch-size', opts.batchSize),
        threshold: finiteNumber('--threshold', opts.threshold, { min: 0, max: 1 }),
        engine: opts.engine,
        threads: globalThreads(cmd),
        log: globals(cmd).quiet ? null : undefined,
        strict: opts.strict,
      });
      const text = format === 'json' ? JSON.stringify(results, null, 2) + '\n' : predictionsToCsv(results);
      if (opts.out) await writeFileAtomic(opts.out, text);
      else process.stdout.write(text);
    });
}
