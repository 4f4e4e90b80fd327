/**
 * The frozen prefix of a model on onnxruntime: the layers from the input up to a group boundary only run forward
 * while the trainable suffix trains in tfjs, so the prefix is exported on its own and run by onnxruntime, which is
 * several times faster than tfjs wasm for convolutions.
 */
import * as tf from '@tensorflow/tfjs';
import { splitModel } from '../models/split';
import type { Runner } from '../models/runner';
import { OnnxExport, exportOnnx } from '../onnx/export';
import { OnnxSessionOptions, createOnnxSession, sessionRunner, warmUp } from './onnx-runtime';

/** Options for the onnxruntime runners: the session's. */
export type OnnxPrefixOptions = OnnxSessionOptions;

/**
 * Exports `model` from its input up to the output of `boundaryLayerName` (a layer with a single output, as every
 * group boundary is) and opens an onnxruntime session on it. The weights are read now: re-create the runner after
 * changing prefix weights.
 */
export async function createOnnxPrefixRunner(model: tf.LayersModel, boundaryLayerName: string, options: OnnxPrefixOptions = {}): Promise<Runner> {
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
export async function createOnnxModelRunner(model: tf.LayersModel, options: OnnxPrefixOptions = {}): Promise<Runner> {
  return openRunner(await exportOnnx(model), options);
}

async function openRunner(exported: OnnxExport, options: OnnxPrefixOptions): Promise<Runner> {
  const { session, engine } = await createOnnxSession(exported.bytes, options);
  const input = exported.inputs[0].shape.slice(1) as number[];
  await warmUp(session, input, `model ${exported.name}`);
  return sessionRunner(session, engine, { input, output: exported.outputs[0].shape.slice(1) as number[] });
}
