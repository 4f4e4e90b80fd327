import { sharedFlag } from '../flags';
import { Command } from 'commander';
import { positiveInt } from '../../errors';
import { openDataset } from '../../data/dataset';
import { augmentSheet } from '../../data/contact-sheet';
import { AUGMENT_PRESET_NAMES } from '../../data/augment';
import { skippedFilesLine } from '../../data/decode-errors';
import { globals } from '../common';
import { checkOutputFile } from '../output-paths';

/** `graft augment`: a contact sheet showing what an augmentation pipeline does to a dataset. */
export function augmentCommand(): Command {
  return new Command('augment')
    .description('write a contact sheet PNG: each original image beside its augmented variants')
    .addOption(sharedFlag('data', { required: true }))
    .requiredOption('--out <file.png>', 'PNG file to write')
    .option('--n <count>', 'images (rows), spread over the classes', '16')
    .option('--variants <count>', 'augmented variants per image', '6')
    .option('--seed <seed>', 'seed for picking images and drawing augmentations', '0')
    .option('--aug <pipeline>', `preset (${AUGMENT_PRESET_NAMES.join('|')}), inline JSON steps or a JSON file`, 'standard')
    .option('--tile <pixels>', 'side of each tile', '128')
    .action(async (opts: { data: string; out: string; n: string; variants: string; seed: string; aug: string; tile: string }, cmd: Command) => {
      const quiet = globals(cmd).quiet;
      checkOutputFile('--out', opts.out);
      const ds = await openDataset(opts.data, { verify: 'header', log: quiet ? null : undefined });
      const sheet = await augmentSheet(ds, {
        out: opts.out,
        augment: opts.aug,
        n: positiveInt('--n', opts.n),
        variants: positiveInt('--variants', opts.variants),
        seed: opts.seed,
        tile: positiveInt('--tile', opts.tile),
      });
      if (sheet.skipped.length && !quiet) process.stderr.write(`graft: warning: ${skippedFilesLine('', sheet.skipped)}\n`);
      if (!quiet) process.stdout.write(`wrote ${opts.out} (${sheet.width}x${sheet.height}, ${sheet.rows} images)\n`);
    });
}
