import * as tf from '@tensorflow/tfjs';

/**
 * Gives every weight of `model` distinct pseudo-random values (small, zero-centred) from a seed, with an inline
 * xorshift: about twice as fast as `randomizeWeights` (onnx-models.ts) and far faster than tfjs's initialisers, which
 * matters for the tests that fill every registry architecture (360M weights). Use `randomizeWeights` where the values
 * must keep activations in range through deep stacks; these only need to differ.
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
