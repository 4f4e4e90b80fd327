/**
 * `multiplyAdds`: the cost of one image through a model, counted the way papers and the Keras Applications table
 * count it: one per weight use in convolutions and dense layers. Batch norm (folded into the conv at inference),
 * activations, pooling, adds and concatenations are left out; they are memory-bound and small next to the convs.
 */
import * as tf from '@tensorflow/tfjs';
import { BuildModelOptions, resolveBuild } from './build';
import { Net, Sym } from './net';

/** A per-image shape: the dimensions after the batch. */
function perImage(shape: tf.Shape | tf.Shape[]): number[] {
  const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  return s.slice(1).map((d) => d ?? 0);
}

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** Multiply-adds of one application of `layer` (input and output shapes per image). */
function layerMultiplyAdds(layer: tf.layers.Layer, input: number[], output: number[]): number {
  const config = layer.getConfig() as Record<string, unknown>;
  const kernel = () => {
    const k = config.kernelSize as number | number[];
    return typeof k === 'number' ? k * k : product(k);
  };
  switch (layer.getClassName()) {
    case 'Conv2D':
      // Each output value sums kernel x input-channels products.
      return product(output) * kernel() * input[input.length - 1];
    case 'DepthwiseConv2D':
      return product(output) * kernel();
    case 'SeparableConv2D': {
      const depthOut = product(output.slice(0, -1)) * input[input.length - 1] * Number(config.depthMultiplier ?? 1);
      return depthOut * kernel() + depthOut * output[output.length - 1];
    }
    case 'Dense':
      return product(output) * input[input.length - 1];
    default:
      return 0;
  }
}

/** Multiply-adds per image of a built model (every application of every layer; nested models included). */
export function multiplyAdds(model: tf.LayersModel): number {
  let total = 0;
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) {
      total += multiplyAdds(layer);
      continue;
    }
    for (const node of layer.inboundNodes) {
      if (node.inboundLayers.length === 0) continue; // an InputLayer's own node
      total += layerMultiplyAdds(layer, perImage(node.inputShapes), perImage(node.outputShapes));
    }
  }
  return total;
}

/**
 * A Net that applies no layer: each layer only maps its input shapes to its output shape, so no weights are
 * allocated, and the multiply-adds of every application are summed as it goes (the same per-layer count as
 * `multiplyAdds`). Building the weights of the whole registry at its default sizes takes seconds; this takes milliseconds.
 */
class ShapeNet extends Net {
  /** Multiply-adds per image so far. */
  total = 0;

  override apply(layer: tf.layers.Layer, x: Sym | Sym[]): Sym {
    const inputs = Array.isArray(x) ? x : [x];
    const shapes = inputs.map((s) => s.shape);
    const out = layer.computeOutputShape(Array.isArray(x) ? shapes : shapes[0]) as tf.Shape;
    this.total += layerMultiplyAdds(layer, perImage(shapes[0]), perImage(out));
    return new tf.SymbolicTensor('float32', out, layer, inputs, {});
  }
}

/** Multiply-adds per image of an architecture as `buildModel` would build it (default size and top unless told), from shapes alone. */
export function architectureMultiplyAdds(options: BuildModelOptions): number {
  const r = resolveBuild(options);
  const net = new ShapeNet();
  const input = new tf.SymbolicTensor('float32', [null, ...r.inputShape], null as unknown as tf.layers.Layer, [], {}, 'input_1');
  const x = r.spec.trunk(net, input, r.ctx);
  if (r.includeTop) {
    net.group('head');
    r.spec.top(net, x, { classes: r.classes, classifierActivation: r.classifierActivation }, r.ctx);
  }
  // No-top pooling has no multiply-adds.
  return net.total;
}
