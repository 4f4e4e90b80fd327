/**
 * The gradient op of a data-parallel training step, as one worker thread computes it on its slice of a batch: the
 * loss, the gradients of the named trainable weights, the outputs, and the state weights (batch-norm moving
 * statistics) after the step. engine/'s worker threads run it; it knows the training math, they know the threads.
 */
import * as tf from '@tensorflow/tfjs';
import { SplitModel } from '../models/split';
import { LossOptions, classificationLoss } from './losses';

/** One slice's request. */
export interface SliceGradientArgs {
  /** The worker's copy of the model. */
  model: tf.LayersModel;
  /** The model split at the frozen prefix's boundary, when there is one: the prefix runs outside the tape. */
  split?: SplitModel;
  /** Looks a weight up by `originalName` (throws naming it when missing). */
  weight(name: string): tf.LayerVariable;
  /** Preprocessed inputs, `batch` rows. */
  x: Float32Array;
  /** Class index per row. */
  labels: Int32Array;
  /** Rows. */
  batch: number;
  /** Weights to differentiate, by `originalName`. */
  trainable: string[];
  /** State weights to report after the step. */
  state: string[];
  /** The loss. */
  loss: LossOptions;
}

/** What one slice sends back. */
export interface SliceGradients {
  /** Mean loss over the slice. */
  loss: number;
  /** Gradient per trainable weight name (zeros for a weight the loss does not reach). */
  grads: Record<string, Float32Array>;
  /** Model outputs, row-major. */
  probs: Float32Array;
  /** State weights after the step. */
  state: Record<string, Float32Array>;
}

/** Computes one slice's loss, gradients, outputs and state (see `SliceGradientArgs`). */
export async function sliceGradients(a: SliceGradientArgs): Promise<SliceGradients> {
  const shape = a.model.inputs[0].shape.slice(1) as number[];
  const variables = a.trainable.map((name) => a.weight(name).read() as tf.Variable);
  let probs: tf.Tensor | undefined;
  const x = tf.tensor(a.x, [a.batch, ...shape]);
  let features: tf.Tensor | undefined;
  try {
    // A frozen prefix runs outside the gradient tape: its activations are freed layer by layer instead of being
    // held for a backward pass that never reaches them (Xception at 299 x 299 would not fit in wasm memory).
    features = a.split ? tf.tidy(() => a.split!.prefix.predict(x) as tf.Tensor) : undefined;
    const trained = a.split ? a.split.suffix : a.model;
    const { value, grads: g } = tf.variableGrads(() => {
      const out = trained.apply(features ?? x, { training: true }) as tf.Tensor;
      probs = tf.keep(out);
      return classificationLoss(out, a.labels, a.loss);
    }, variables);
    try {
      const reply: SliceGradients = { loss: (await value.data())[0], grads: {}, probs: (await probs!.data()) as Float32Array, state: {} };
      for (const [i, name] of a.trainable.entries()) {
        const grad = g[variables[i].name];
        reply.grads[name] = grad ? ((await grad.data()) as Float32Array) : new Float32Array(variables[i].size);
      }
      for (const name of a.state) reply.state[name] = (await a.weight(name).read().data()) as Float32Array;
      return reply;
    } finally {
      tf.dispose([value, ...Object.values(g)]);
    }
  } finally {
    tf.dispose([x, ...(features ? [features] : []), ...(probs ? [probs] : [])]);
  }
}
