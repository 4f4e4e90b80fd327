/**
 * Data-parallel training steps: each batch is split across worker threads (each with its own wasm backend and a
 * copy of the model), their gradients are averaged, the optimiser runs here, and the new weights go back to the
 * workers. tfjs's wasm backend is single-threaded in Node, so this is how a step uses more than one core.
 * Differences from one thread: BatchNormalization layers in training mode see per-slice batch statistics (as PyTorch
 * DDP without SyncBatchNorm), and worker dropout masks are not drawn from the run's seed, so runs with dropout are
 * not bit-reproducible.
 */
import * as tf from '@tensorflow/tfjs';
import { createGradientPool } from './workers';
import { positiveInt } from '../errors';
import { GradientSource } from '../train/loop';
import { LossOptions } from '../train/losses';

/** Weights a training step changes without gradients: moving statistics of BN layers that train. */
function stateWeights(model: tf.LayersModel): tf.LayerVariable[] {
  return model.layers.filter((l) => l.getClassName() === 'BatchNormalization' && l.trainable).flatMap((l) => l.nonTrainableWeights);
}

/** A `FitOptions.gradients` factory that computes each step's gradients on `threads` worker threads. */
export function pooledGradients(threads: number): (model: tf.LayersModel, loss: LossOptions) => Promise<GradientSource> {
  positiveInt('threads', threads);
  return async (model, loss) => {
    const pool = await createGradientPool({ model, threads, loss });
    const state = stateWeights(model);
    return {
      async compute(batch, groups) {
        const trainable = groups.flatMap((g) => g.variables.map((v) => v.originalName));
        const step = await pool.grads({
          x: (await batch.x.data()) as Float32Array,
          labels: batch.labels,
          batch: batch.labels.length,
          trainable,
          state: state.map((w) => w.originalName),
        });
        for (const w of state) {
          (w.read() as tf.Variable).assign(step.state[w.originalName]);
        }
        tf.dispose(Object.values(step.state));
        const probs = tf.tensor2d(step.probs, [batch.labels.length, step.probs.length / batch.labels.length]);
        return { loss: step.loss, probs, grads: step.grads };
      },
      async afterStep(groups) {
        const weights = [...groups.flatMap((g) => g.variables), ...state];
        await pool.setWeights(Object.fromEntries(weights.map((w) => [w.originalName, w.read()])));
      },
      dispose: () => pool.dispose(),
    };
  };
}
