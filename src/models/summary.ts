/** `summarizeModel`: the per-layer table `graft summary` prints (Keras `model.summary()` plus trainable flags and groups). */
import * as tf from '@tensorflow/tfjs';
import { LayerGroup } from '../io/graft-json';

/** One row of a model summary. */
export interface LayerSummary {
  /** Layer name. */
  name: string;
  /** tfjs / Keras class name. */
  className: string;
  /** Output shape without the batch dimension. */
  outputShape: number[];
  /** Parameters (all weights, trainable or not). */
  params: number;
  /** Whether the layer's weights are updated by training (layers without weights report their flag too). */
  trainable: boolean;
  /** Group the layer belongs to, or null (the input layer). */
  group: string | null;
}

/** A model summary. */
export interface ModelSummary {
  /** Layers in model order. */
  layers: LayerSummary[];
  /** All parameters. */
  totalParams: number;
  /** Parameters training updates (Keras: batch-norm moving statistics are not trainable). */
  trainableParams: number;
  /** The rest. */
  nonTrainableParams: number;
}

const size = (shape: readonly (number | null)[]) => shape.reduce<number>((a, b) => a * (b ?? 1), 1);

/** Summarises a model's layers, output shapes, parameters, trainable flags and groups. */
export function summarizeModel(model: tf.LayersModel, groups: LayerGroup[] = []): ModelSummary {
  const groupOf = new Map(groups.flatMap((g) => g.layers.map((l) => [l, g.name] as const)));
  const layers = model.layers.map((l) => {
    const shape = (Array.isArray(l.outputShape[0]) ? l.outputShape[0] : l.outputShape) as (number | null)[];
    return {
      name: l.name,
      className: l.getClassName(),
      outputShape: shape.slice(1) as number[],
      params: l.countParams(),
      trainable: l.trainable,
      group: groupOf.get(l.name) ?? null,
    };
  });
  const totalParams = model.weights.reduce((n, w) => n + size(w.shape), 0);
  const trainableParams = model.trainableWeights.reduce((n, w) => n + size(w.shape), 0);
  return { layers, totalParams, trainableParams, nonTrainableParams: totalParams - trainableParams };
}
