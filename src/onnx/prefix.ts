/**
 * The frozen prefix of a model on onnxruntime: the layers from the input up to a group boundary only run forward
 * while the trainable suffix trains in tfjs, so the prefix is exported on its own and run by onnxruntime, which is
 * several times faster than tfjs wasm for convolutions.
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';
import { exportOnnx } from './export';
import { createOnnxSession, runSession } from './runtime';

/** Options for `createOnnxPrefixRunner`. */
export interface OnnxPrefixOptions {
  /** Intra-op threads (default: one per logical core). */
  threads?: number;
  /** Where notices go (default stderr; null for silence). */
  log?: ((line: string) => void) | null;
}

/** Runs a model's frozen prefix forward. */
export interface OnnxPrefixRunner {
  /** What runs the prefix, e.g. `onnxruntime cpu x2`. */
  readonly engine: string;
  /** Output shape of the boundary layer without the batch dimension ([h, w, c] for feature maps). */
  readonly outputShape: number[];
  /** Runs `batch` preprocessed NHWC images; returns the boundary layer's output (NHWC) for the batch. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  /** Releases the session. */
  dispose(): Promise<void>;
}

/**
 * Exports `model` from its input up to the output of `boundaryLayerName` (a layer with a single output, as every
 * group boundary is) and opens an onnxruntime session on it. The weights are read now: re-create the runner after
 * changing prefix weights.
 */
export async function createOnnxPrefixRunner(model: tf.LayersModel, boundaryLayerName: string, options: OnnxPrefixOptions = {}): Promise<OnnxPrefixRunner> {
  let boundary: tf.layers.Layer;
  try {
    boundary = model.getLayer(boundaryLayerName);
  } catch {
    throw new GraftError(`model ${model.name} has no layer "${boundaryLayerName}" to split at; pass a group boundary layer from its graft.json groups.`);
  }
  if (boundary.inboundNodes.length !== 1 || Array.isArray(boundary.output)) {
    throw new GraftError(`layer "${boundaryLayerName}" is used ${boundary.inboundNodes.length} times or has several outputs, so it is not a clean split point; pick a group boundary.`);
  }
  // A second model over the same layers (no weights copied); it must not be disposed, as that would free them.
  const prefix = tf.model({ inputs: model.inputs, outputs: boundary.output as tf.SymbolicTensor, name: `${model.name}_prefix` });
  const { bytes, outputs } = await exportOnnx(prefix);
  const { session, engine } = await createOnnxSession(bytes, options);
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  const outputShape = outputs[0].shape.slice(1) as number[];
  return {
    engine,
    outputShape,
    run: (input, batch) => runSession(session, input, [batch, ...inputShape]),
    async dispose() {
      await session.release();
    },
  };
}
