/**
 * Splits a functional model at a single-tensor boundary into a prefix (input -> boundary) and a suffix
 * (boundary -> output) that share the very same layer objects, so training the suffix trains the model. The graph is
 * re-applied from the boundary (branches and adds inside the suffix, e.g. ResNet stages, come along).
 */
import * as tf from '@tensorflow/tfjs';
import { GraftError } from '../errors';

/** The two halves of a split model. */
export interface SplitModel {
  /** Model input -> boundary layer output. */
  prefix: tf.LayersModel;
  /** Boundary layer output -> model output. */
  suffix: tf.LayersModel;
  /** Releases the halves' references to the shared layers (the original model keeps its weights). */
  dispose(): void;
}

type Symbolic = tf.SymbolicTensor & { id: number; sourceLayer: tf.layers.Layer; inputs: Symbolic[]; tensorIndex?: number };

/**
 * Re-applies the layers that compute `outputs`, reading `substitutes` (original tensor id -> new tensor) instead of
 * the original tensors, so the new graph shares every layer with the old one.
 */
function reapply(outputs: Symbolic[], substitutes: Map<number, tf.SymbolicTensor>, boundaryName: string): tf.SymbolicTensor[] {
  const memo = new Map(substitutes);
  const visit = (t: Symbolic): tf.SymbolicTensor => {
    const done = memo.get(t.id);
    if (done) return done;
    const layer = t.sourceLayer;
    if (layer.getClassName() === 'InputLayer' || !t.inputs?.length) {
      throw new GraftError(
        `layer ${boundaryName} does not separate the model: ${layer.name} reaches the model input around it; split at a layer every path passes through (a group boundary).`,
      );
    }
    const ins = t.inputs.map(visit);
    const out = layer.apply(ins.length === 1 ? ins[0] : ins) as tf.SymbolicTensor | tf.SymbolicTensor[];
    const result = Array.isArray(out) ? out[t.tensorIndex ?? 0] : out;
    memo.set(t.id, result);
    return result;
  };
  return outputs.map(visit);
}

/** Splits `model` after layer `boundaryLayerName` (whose output must be the only path from input to output). */
export function splitModel(model: tf.LayersModel, boundaryLayerName: string): SplitModel {
  let boundary: tf.layers.Layer;
  try {
    boundary = model.getLayer(boundaryLayerName);
  } catch {
    throw new GraftError(`cannot split at ${JSON.stringify(boundaryLayerName)}: the model has no such layer; run graft summary to see the layer names.`);
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new GraftError(`cannot split model ${model.name}: it has ${model.inputs.length} inputs and ${model.outputs.length} outputs; graft splits single-input single-output models.`);
  }
  const boundaryOut = outputInModel(model, boundary);
  const modelIn = model.inputs[0] as Symbolic;
  if (boundaryOut.id === (model.outputs[0] as Symbolic).id) throw new GraftError(`cannot split at ${boundaryLayerName}: it is the output layer; choose a layer before the head.`);

  const prefixIn = tf.input({ shape: modelIn.shape.slice(1) as number[], name: `${model.name}_prefix_input`, dtype: modelIn.dtype });
  const [prefixOut] = reapplyPrefix(boundaryOut, modelIn, prefixIn, boundaryLayerName);
  const suffixIn = tf.input({ shape: boundaryOut.shape.slice(1) as number[], name: `${model.name}_suffix_input` });
  const [suffixOut] = reapply([model.outputs[0] as Symbolic], new Map([[boundaryOut.id, suffixIn]]), boundaryLayerName);
  const prefix = tf.model({ inputs: prefixIn, outputs: prefixOut, name: `${model.name}_prefix` });
  const suffix = tf.model({ inputs: suffixIn, outputs: suffixOut, name: `${model.name}_suffix` });
  return {
    prefix,
    suffix,
    // Re-applying a layer raises its reference count; disposing the halves lowers it again without freeing weights.
    dispose: () => {
      prefix.dispose();
      suffix.dispose();
    },
  };
}

/**
 * The tensor `layer` produces inside `model`'s own graph. A layer applied more than once (by an earlier split or a
 * reused trunk) has several outputs, so it is found by walking back from the model output.
 */
function outputInModel(model: tf.LayersModel, layer: tf.layers.Layer): Symbolic {
  const seen = new Set<number>();
  const stack = [...(model.outputs as Symbolic[])];
  let found: Symbolic | undefined;
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    if (t.sourceLayer === layer) {
      if (found && found.id !== t.id) throw new GraftError(`cannot split at ${layer.name}: it is applied more than once in the model; choose another layer.`);
      found = t;
    }
    stack.push(...(t.inputs ?? []));
  }
  if (!found) throw new GraftError(`cannot split at ${layer.name}: it is not on the path from the model input to its output.`);
  return found;
}

/** Re-applies input -> boundary; the walk must not need anything but the model input. */
function reapplyPrefix(boundaryOut: Symbolic, modelIn: Symbolic, newIn: tf.SymbolicTensor, boundaryName: string): tf.SymbolicTensor[] {
  if (boundaryOut.id === modelIn.id) return [newIn];
  return reapply([boundaryOut], new Map([[modelIn.id, newIn]]), boundaryName);
}
