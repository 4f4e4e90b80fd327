/**
 * Flags several commands share, defined once: `--data`, `--input-size` and `--batch-size` take their wording from
 * the training option table, `--engine` from the engine table's choices. A command adds them with its own default.
 */
import { Option } from 'commander';
import { ENGINE_CHOICES } from '../engine';
import { TRAIN_OPTIONS } from '../train/options';

/** A shared flag from the training option table, with this command's default. */
export function sharedFlag(key: 'data' | 'inputSize' | 'batchSize', o: { default?: string; required?: boolean } = {}): Option {
  const spec = TRAIN_OPTIONS.find((s) => s.key === key)!;
  const option = new Option(spec.flag!, spec.help);
  if (o.default !== undefined) option.default(o.default);
  if (o.required) option.makeOptionMandatory();
  return option;
}

/** `--engine`: what runs a model forward. */
export function engineFlag(): Option {
  // Checked by the engine table (its error lists the valid names), not by commander's choices.
  return new Option('--engine <name>', `what runs the model (${ENGINE_CHOICES.join('|')}): auto takes onnxruntime when it loads, else tfjs, saying why in one line`).default('auto');
}
