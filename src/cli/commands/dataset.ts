import { Command } from 'commander';
import { positiveInt } from '../../errors';
import { openDataset } from '../../data/dataset';
import { exportFashionMnist, FASHION_MNIST_DIR } from '../../data/fashion-mnist';
import { globals, parseList } from '../common';
import { checkOutputFolder } from '../output-paths';

/** `graft dataset`: make and inspect datasets. */
export function datasetCommand(): Command {
  const dataset = new Command('dataset').description('make sample datasets and check dataset folders');
  dataset
    .command('fashion-mnist')
    .description('write Fashion-MNIST as PNGs in class folders named <label>-<name> (e.g. 5-Sandal), from IDX files')
    .requiredOption('--out <folder>', 'folder to create (must be new or empty)')
    .option('--per-class <n>', 'images per class, the first ones in file order (default: all)')
    .option('--classes <list>', 'comma-separated labels, ranges or names, e.g. 5-9 or 5,7 or Sandal,Bag (default: all ten)', parseList)
    .option('--split <name>', 'IDX split to read: train or test', 'train')
    .option('--idx <folder>', 'folder with the *-idx?-ubyte(.gz) files', FASHION_MNIST_DIR)
    .action(async (opts: { out: string; perClass?: string; classes?: string[]; split: string; idx: string }, cmd: Command) => {
      checkOutputFolder('--out', opts.out);
      const result = await exportFashionMnist({
        out: opts.out,
        perClass: opts.perClass === undefined ? undefined : positiveInt('--per-class', opts.perClass),
        classes: opts.classes,
        split: opts.split as 'train' | 'test',
        idx: opts.idx,
      });
      if (!globals(cmd).quiet) {
        const total = Object.values(result.counts).reduce((a, b) => a + b, 0);
        process.stdout.write(`wrote ${total} images to ${result.out}: ${Object.entries(result.counts).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
      }
    });
  dataset
    .command('check')
    .description('list the classes and image counts of a dataset and every file that would be skipped')
    .argument('<dataset>', 'image folder (one subfolder per class), CSV manifest (path,label) or IDX folder/file')
    .option('--strict', 'exit non-zero when any file or class folder is unusable')
    .option('--json', 'print the result as JSON')
    .action(async (spec: string, opts: { strict?: boolean; json?: boolean }) => {
      // A check is asked for: decode every file, so damage deep in a file is listed too (runs find it at batch time).
      const ds = await openDataset(spec, { strict: opts.strict, verify: 'decode', log: null });
      const counts = ds.classNames.map((name, label) => ({ name, images: ds.samples.filter((s) => s.label === label).length }));
      if (opts.json) {
        process.stdout.write(JSON.stringify({ root: ds.root, kind: ds.kind, classes: counts, skipped: ds.skipped }, null, 2) + '\n');
        return;
      }
      const lines = [`${ds.root} (${ds.kind}): ${ds.samples.length} images in ${ds.classNames.length} classes`];
      for (const c of counts) lines.push(`  ${String(c.images).padStart(7)}  ${c.name}`);
      if (ds.skipped.length) lines.push(`skipped ${ds.skipped.length}:`, ...ds.skipped.map((s) => `  ${s.source}: ${s.reason}`));
      process.stdout.write(lines.join('\n') + '\n');
    });
  return dataset;
}
