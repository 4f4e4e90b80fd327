/**
 * MobileNet (V1) as Keras Applications builds it: `conv1` then 13 depthwise-separable blocks (`conv_dw_<i>`,
 * `conv_pw_<i>`, each with batch norm and ReLU6), the top a 1x1 conv (`conv_preds`) on the pooled features. One
 * registry entry per width (alpha) Keras ships ImageNet weights for; the bare name is alpha 1.0. `mobilenetV1`
 * also takes Keras's depth multiplier, for which Keras has no ImageNet weights.
 */
import { ArchitectureSpec } from './spec';
import { Net, Sym } from './net';

const BASE = 'https://storage.googleapis.com/tensorflow/keras-applications/mobilenet';

/** Keras's SHA-256 per 224 file (top, no top), keyed by alpha text. */
const HASHES: Record<string, [string, string]> = {
  '1_0': ['006a2d9484fbea625dd4e6518652c101a3eca052671671c56265fc84f2e1181f', '9f9cfd8c925431c06ce96744e1d201575f6a681bf38ae2de38e2ae8f7d7829d3'],
  '7_5': ['811e0307a7e8895a180b81c191033482d99470a0604ea8e88e8d947005067d84', '1da9019b66f05a0256dedfed0f321fcaf8bfa71f9facf3f9117e62820be39aa5'],
  '5_0': ['b4b134ed41de14fd8d6717ab4e88b53e3113194acae392bc41c012ba463906bb', 'df860c59562f4c4af7a2fb2ae90731caef39fd5d03e5fcd6ca46988965f0a4b7'],
  '2_5': ['98d047950e59f478af63681720906940efc8ce8cecb95bce5c7b47394f8bd63d', 'dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf'],
};

/** [pointwise filters, stride] of blocks 1..13. */
const BLOCKS: Array<[number, number]> = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2], [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];
/** Groups for freezing: the blocks between strides (Keras's resolution stages). */
const STAGE_OF_BLOCK = [1, 2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5];

/** Keras `_depthwise_conv_block`. */
function depthwiseBlock(net: Net, x: Sym, a: { filters: number; alpha: number; depthMultiplier: number; stride: number; id: number }): Sym {
  if (a.stride !== 1) x = net.zeroPad(x, [[0, 1], [0, 1]], `conv_pad_${a.id}`);
  x = net.depthwiseConv(x, { kernel: 3, padding: a.stride === 1 ? 'same' : 'valid', depthMultiplier: a.depthMultiplier, strides: a.stride, useBias: false, name: `conv_dw_${a.id}` });
  x = net.bn(x, { name: `conv_dw_${a.id}_bn` });
  x = net.relu(x, { maxValue: 6, name: `conv_dw_${a.id}_relu` });
  x = net.conv(x, { filters: Math.trunc(a.filters * a.alpha), kernel: 1, padding: 'same', useBias: false, name: `conv_pw_${a.id}` });
  x = net.bn(x, { name: `conv_pw_${a.id}_bn` });
  return net.relu(x, { maxValue: 6, name: `conv_pw_${a.id}_relu` });
}

/** Options of `mobilenetV1`. */
export interface MobileNetV1Options {
  /** Width multiplier (Keras `alpha`). */
  alpha: number;
  /** Depthwise channels per input channel (Keras `depth_multiplier`, default 1). */
  depthMultiplier?: number;
  /** Keras's parameter counts with and without top, or null when Keras documents none. */
  params: { top: number; notop: number } | null;
}

/** A MobileNet V1 spec for one width and depth multiplier. */
export function mobilenetV1(o: MobileNetV1Options): ArchitectureSpec {
  const { alpha } = o;
  const depthMultiplier = o.depthMultiplier ?? 1;
  const text = { 1: '1_0', 0.75: '7_5', 0.5: '5_0', 0.25: '2_5' }[alpha];
  const suffix = (alpha === 1 ? '' : `_${alpha}`) + (depthMultiplier === 1 ? '' : `_dm${depthMultiplier}`);
  return {
    name: `mobilenet${suffix}`,
    keras: alpha === 1 && depthMultiplier === 1 ? 'MobileNet' : `MobileNet(alpha=${alpha}${depthMultiplier === 1 ? '' : `, depth_multiplier=${depthMultiplier}`})`,
    defaultInputSize: 224,
    minInputSize: 32,
    preprocessing: 'tf',
    // The 224 files serve every input size: conv weights do not depend on it.
    imagenet:
      text && depthMultiplier === 1
        ? {
            top: { url: `${BASE}/mobilenet_${text}_224_tf.h5`, sha256: HASHES[text][0] },
            notop: { url: `${BASE}/mobilenet_${text}_224_tf_no_top.h5`, sha256: HASHES[text][1] },
          }
        : null,
    params: o.params,
    variantOf: alpha === 1 && depthMultiplier === 1 ? undefined : 'mobilenet',
    defaultHead: () => ({ pooling: 'avg' }),
    trunk(net, input) {
      net.group('stem');
      let x = net.conv(input, { filters: Math.trunc(32 * alpha), kernel: 3, padding: 'same', useBias: false, strides: 2, name: 'conv1' });
      x = net.bn(x, { name: 'conv1_bn' });
      x = net.relu(x, { maxValue: 6, name: 'conv1_relu' });
      BLOCKS.forEach(([filters, stride], i) => {
        if (i === 0 || STAGE_OF_BLOCK[i] !== STAGE_OF_BLOCK[i - 1]) net.group(`stage${STAGE_OF_BLOCK[i]}`);
        x = depthwiseBlock(net, x, { filters, alpha, depthMultiplier, stride, id: i + 1 });
      });
      return x;
    },
    top(net, x, { classes, classifierActivation }) {
      // Keras 3 pools with keepdims=True, which tfjs's GlobalAveragePooling2D lacks; Keras 2 (whose files these are) pooled then reshaped.
      const channels = x.shape[3] as number;
      x = net.globalPool(x, 'avg');
      x = net.reshape(x, [1, 1, channels], 'reshape_1'); // Keras 2's name for this reshape
      x = net.dropout(x, 1e-3, 'dropout');
      x = net.conv(x, { filters: classes, kernel: 1, padding: 'same', name: 'conv_preds' });
      x = net.reshape(x, [classes], 'reshape_2');
      return net.act(x, classifierActivation, 'predictions');
    },
  };
}

// Parameter counts: Keras documents MobileNet 4,253,864, MobileNetV2 3,538,984 and EfficientNetB0 5,330,571, which these
// builders reproduce; the other counts are what the same builders, transcribed from the Keras source, give.
/** The MobileNet V1 architectures, one per Keras ImageNet width. */
export const MOBILENET_SPECS: ArchitectureSpec[] = [
  mobilenetV1({ alpha: 1, params: { top: 4_253_864, notop: 3_228_864 } }),
  mobilenetV1({ alpha: 0.75, params: { top: 2_601_976, notop: 1_832_976 } }),
  mobilenetV1({ alpha: 0.5, params: { top: 1_342_536, notop: 829_536 } }),
  mobilenetV1({ alpha: 0.25, params: { top: 475_544, notop: 218_544 } }),
];
