import * as tf from '@tensorflow/tfjs';

/**
 * Gives every weight of `model` distinct pseudo-random values (small, zero-centred) from a seed. Much faster than
 * tfjs's random initialisers on 20M+ weights, which keeps tests that compare two models' weights quick.
 */
export function scrambleWeights(model: tf.LayersModel, seed: number): void {
  let s = seed >>> 0 || 1;
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((w) => {
      const shape = w.shape as number[];
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      const positive = /moving_variance|gamma/.test(w.originalName);
      for (let i = 0; i < data.length; i++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        const u = (s >>> 0) / 4294967296;
        data[i] = positive ? 0.5 + u : (u - 0.5) * 0.2;
      }
      return tf.tensor(data, shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}
