/**
 * The frozen prefix of a model on onnxruntime: the layers from the input up to a group boundary only run forward
 * while the trainable suffix trains in tfjs, so the prefix is exported on its own and run by onnxruntime, which is
 * several times faster than tfjs wasm for convolutions.
 */
import * as tf from '@tensorflow/tfjs';
import { splitModel } from '../train/split';
import type { PrefixRunner } from '../engine/prefix';
import { OnnxExport, exportOnnx } from './export';
import { createOnnxSession, runSession, warmUp } from './runtime';

/** Options for `createOnnxPrefixRunner`. */
export interface OnnxPrefixOptions {
  /** Intra-op threads (default: one per logical core). */
  threads?: number;
  /** Where notices go (default stderr; null for silence). */
  log?: ((line: string) => void) | null;
}

/** The onnxruntime prefix runner has the shape every prefix engine has. */
export type OnnxPrefixRunner = PrefixRunner;

/**
 * Exports `model` from its input up to the output of `boundaryLayerName` (a layer with a single output, as every
 * group boundary is) and opens an onnxruntime session on it. The weights are read now: re-create the runner after
 * changing prefix weights.
 */
export async function createOnnxPrefixRunner(model: tf.LayersModel, boundaryLayerName: string, options: OnnxPrefixOptions = {}): Promise<OnnxPrefixRunner> {
  // The training split's prefix: it finds the boundary in the model's own graph even when its layers were applied
  // again by an earlier split, and shares the layers (no weights copied).
  const split = splitModel(model, boundaryLayerName);
  let exported: OnnxExport;
  try {
    exported = await exportOnnx(split.prefix);
  } finally {
    split.dispose();
  }
  return openRunner(exported, options);
}

/**
 * Any single-input, single-output tfjs model (a feature extractor, a whole classifier) exported and opened on
 * onnxruntime, with the runner shape of the prefix engines. Weights are read now.
 */
export async function createOnnxModelRunner(model: tf.LayersModel, options: OnnxPrefixOptions = {}): Promise<OnnxPrefixRunner> {
  return openRunner(await exportOnnx(model), options);
}

async function openRunner(exported: OnnxExport, options: OnnxPrefixOptions): Promise<OnnxPrefixRunner> {
  const { bytes, inputs, outputs } = exported;
  const { session, engine } = await createOnnxSession(bytes, options);
  const inputShape = inputs[0].shape.slice(1) as number[];
  const outputShape = outputs[0].shape.slice(1) as number[];
  await warmUp(session, inputShape, `model ${exported.name}`);
  return {
    engine,
    outputShape,
    run: (input, batch) => runSession(session, input, [batch, ...inputShape]),
    async dispose() {
      await session.release();
    },
  };
}
