/**
 * Pieces the MobileNet and EfficientNet families share, transcribed from Keras Applications: the channel rounding
 * (`_make_divisible` / `_depth` / `round_filters`), the asymmetric padding before strided depthwise convs
 * (`imagenet_utils.correct_pad`) and MobileNetV3's hard sigmoid / hard swish, built from stock tfjs layers.
 */
import { Net, Padding2D, Sym } from './net';

/** Keras's `_make_divisible`: rounds `v` to a multiple of `divisor`, never more than 10% below `v`. */
export function makeDivisible(v: number, divisor = 8, minValue = divisor): number {
  let n = Math.max(minValue, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** Keras's `correct_pad`: the zero padding that makes a strided `valid` conv match TF's `same` on even inputs. */
export function correctPad(x: Sym, kernel: number): Padding2D {
  const [h, w] = x.shape.slice(1, 3) as number[];
  const c = Math.floor(kernel / 2);
  return [[c - (1 - (h % 2)), c], [c - (1 - (w % 2)), c]];
}

/**
 * Keras's MobileNetV3 `hard_sigmoid`, ReLU6(x + 3) / 6. tfjs's own `hardSigmoid` activation is 0.2x + 0.5 (Keras 2's
 * definition), a different function, so this is built like Keras builds it: Rescaling (offset 3), ReLU(max 6),
 * Rescaling (1/6), all stock layers.
 */
export function hardSigmoid(net: Net, x: Sym): Sym {
  x = net.rescale(x, { scale: 1, offset: 3 });
  x = net.relu(x, { maxValue: 6 });
  return net.rescale(x, { scale: 1 / 6 });
}

/** Keras's `hard_swish`, x * hard_sigmoid(x); tfjs has no such activation, so it is a Multiply over `hardSigmoid`. */
export function hardSwish(net: Net, x: Sym): Sym {
  return net.multiply([x, hardSigmoid(net, x)]);
}
