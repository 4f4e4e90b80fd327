import * as fs from 'node:fs';
import { sharedFlag } from '../flags';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { GraftError, positiveInt } from '../../errors';
import { loadModelFolder } from '../../io/model-folder';
import { constructModel, defaultInputShape } from '../../models/build';
import { isModelFolder } from '../../models/classifier';
import { architectureNames, getArchitecture } from '../../models/registry';
import { TrainabilityReport, describeTrainable, trainabilityLabel } from '../../train/freeze';
import { useBackend } from '../common';
import { formatCount, textTable } from './models';

/** Formats a summary the way Keras's `model.summary()` reads, plus trainable flags and groups. */
export function formatSummary(title: string, s: TrainabilityReport): string {
  const table = textTable(
    ['layer (type)', 'output shape', 'params', 'trainable', 'group'],
    s.layers.map((l) => [`${l.name} (${l.className})`, `(${['None', ...l.outputShape].join(', ')})`, formatCount(l.params), trainabilityLabel(l), l.group ?? '-']),
    [2],
  );
  const groups = new Map<string, { layers: number; params: number }>();
  for (const l of s.layers) {
    if (!l.group) continue;
    const g = groups.get(l.group) ?? { layers: 0, params: 0 };
    groups.set(l.group, { layers: g.layers + 1, params: g.params + l.params });
  }
  return [
    title,
    table,
    `total params: ${formatCount(s.totalParams)}`,
    `trainable params: ${formatCount(s.trainableParams)}`,
    `non-trainable params: ${formatCount(s.nonTrainableParams)}`,
    `groups: ${[...groups].map(([name, g]) => `${name} (${g.layers} layers, ${formatCount(g.params)} params)`).join(', ')}`,
  ].join('\n');
}

/** `graft summary`: layers, output shapes, parameters, trainable flags and groups of an architecture or a model folder. */
export function summaryCommand(): Command {
  return new Command('summary')
    .description('show layers, output shapes, parameters, trainable flags and groups of an architecture or a model folder')
    .argument('<target>', `architecture (${architectureNames().join(', ')}) or model folder`)
    .addOption(sharedFlag('inputSize'))
    .option('--no-top', 'architecture without its classifier top')
    .option('--json', 'print the summary as JSON')
    .action(async (target: string, opts: { inputSize?: string; top: boolean; json?: boolean }, cmd: Command) => {
      await useBackend(cmd);
      const folder = isModelFolder(target);
      if (!folder && fs.existsSync(target)) throw new GraftError(`${target} is not a graft model folder (no graft.json) nor an architecture name; pass a model folder or one of ${architectureNames().join(', ')}.`);
      if (folder && (opts.inputSize !== undefined || !opts.top)) throw new GraftError('--input-size and --no-top apply to architectures; a model folder keeps its own shape and head.');
      let model: tf.LayersModel;
      let meta;
      if (folder) {
        ({ model, meta } = await loadModelFolder(target));
      } else {
        const spec = getArchitecture(target);
        const [size, , channels] = defaultInputShape(spec);
        const s = opts.inputSize === undefined ? size : positiveInt('--input-size', opts.inputSize);
        // Zero kernels: a summary needs shapes and counts, not random draws (VGG16's top alone is 120M).
        ({ model, meta } = constructModel({ arch: spec.name, includeTop: opts.top, inputShape: [s, s, channels] }, { initializer: 'zeros' }));
      }
      try {
        const summary = describeTrainable(model, meta.groups);
        const title = `${folder ? `model folder ${target}` : target}: ${meta.architecture}, input ${meta.inputShape.join('x')}, preprocessing ${meta.preprocessing}${folder ? `, ${meta.classNames.length} classes` : opts.top ? '' : ', no top'}`;
        process.stdout.write(
          opts.json
            ? JSON.stringify({ architecture: meta.architecture, inputShape: meta.inputShape, preprocessing: meta.preprocessing, groups: meta.groups.map((g) => g.name), ...summary }, null, 2) + '\n'
            : formatSummary(title, summary) + '\n',
        );
      } finally {
        model.dispose();
      }
    });
}
